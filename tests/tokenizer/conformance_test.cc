// Conformance: every case of tests/data/tokenizers/*/public_cases.jsonl must match the ids,
// tokens and decoded texts HF tokenizers 0.23.2 produced, and streaming decode one id at a
// time must reproduce the full decode without ever emitting a partial UTF-8 character.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {
namespace {

struct Case {
  size_t line;
  std::string text;
  bool add_special_tokens;
  std::vector<int32_t> ids;
  std::vector<std::string> tokens;
  std::string decoded, decoded_skip_special;
};

std::vector<Case> load_cases(const std::string& dir) {
  std::ifstream in(dir + "/public_cases.jsonl");
  EXPECT_TRUE(in) << dir;
  std::vector<Case> cases;
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    const auto j = nlohmann::json::parse(line);
    cases.push_back({n, j.at("text").get<std::string>(), j.at("add_special_tokens").get<bool>(),
                     j.at("ids").get<std::vector<int32_t>>(), j.at("tokens").get<std::vector<std::string>>(),
                     j.at("decoded").get<std::string>(), j.at("decoded_skip_special").get<std::string>()});
  }
  return cases;
}

std::string show(const std::vector<int32_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size() && i < 40; ++i) {
    if (i) s += ',';
    s += std::to_string(v[i]);
  }
  return "[" + s + (v.size() > 40 ? ",...]" : "]");
}

class Conformance : public ::testing::TestWithParam<std::string> {};

TEST_P(Conformance, PublicCasesMatchReference) {
  const std::string dir = std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/" + GetParam();
  const auto tok = Tokenizer::from_dir(dir);
  const auto cases = load_cases(dir);
  ASSERT_GT(cases.size(), 100u);
  size_t failures = 0;
  for (const Case& c : cases) {
    const Encoding e = tok->encode(c.text, c.add_special_tokens);
    const std::string decoded = tok->decode(c.ids, false);
    const std::string decoded_skip = tok->decode(c.ids, true);
    const bool ok = e.ids == c.ids && e.tokens == c.tokens && decoded == c.decoded && decoded_skip == c.decoded_skip_special;
    if (!ok && ++failures <= 10) {
      ADD_FAILURE() << GetParam() << " line " << c.line << " text=" << nlohmann::json(c.text).dump()
                    << " add_special=" << c.add_special_tokens << "\n  got      " << show(e.ids) << "\n  expected "
                    << show(c.ids) << "\n  decoded " << nlohmann::json(decoded).dump() << " vs "
                    << nlohmann::json(c.decoded).dump() << "\n  skip " << nlohmann::json(decoded_skip).dump()
                    << " vs " << nlohmann::json(c.decoded_skip_special).dump();
    }
    ASSERT_EQ(e.offsets.size(), e.ids.size());
    for (const auto& [b, end] : e.offsets) ASSERT_TRUE(b <= end && end <= c.text.size());
  }
  EXPECT_EQ(failures, 0u) << "of " << cases.size() << " cases";
}

TEST_P(Conformance, IncrementalDecodeMatchesFullDecode) {
  const std::string dir = std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/" + GetParam();
  const auto tok = Tokenizer::from_dir(dir);
  size_t failures = 0;
  for (const Case& c : load_cases(dir)) {
    for (const bool skip : {false, true}) {
      IncrementalDetokenizer detok(tok, skip);
      std::string streamed;
      bool pieces_ok = true;
      for (const int32_t id : c.ids) {
        const std::string piece = detok.push(id);
        // Every piece is valid UTF-8 on its own: no character is split across pieces.
        pieces_ok = pieces_ok && !unicode::first_invalid_byte(piece);
        streamed += piece;
      }
      streamed += detok.flush();
      const std::string expected = skip ? c.decoded_skip_special : c.decoded;
      if ((streamed != expected || !pieces_ok) && ++failures <= 10) {
        ADD_FAILURE() << GetParam() << " line " << c.line << " skip=" << skip << " streamed "
                      << nlohmann::json(streamed).dump() << " expected " << nlohmann::json(expected).dump()
                      << " pieces_ok=" << pieces_ok;
      }
    }
  }
  EXPECT_EQ(failures, 0u);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, Conformance, ::testing::Values("gpt2", "qwen3", "mistral7b", "spm_bpe_small"));

}  // namespace
}  // namespace lmserve::tokenizer
