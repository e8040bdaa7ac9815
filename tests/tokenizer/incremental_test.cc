// IncrementalDetokenizer: prompt context, characters split across tokens, special tokens.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {
namespace {

std::shared_ptr<const Tokenizer> fixture(const std::string& name) {
  return Tokenizer::from_dir(std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/" + name);
}

std::vector<std::string> stream(const std::shared_ptr<const Tokenizer>& tok, const std::vector<int32_t>& ids,
                                std::span<const int32_t> prompt = {}, bool skip = false) {
  IncrementalDetokenizer detok(tok, skip, prompt);
  std::vector<std::string> pieces;
  for (const int32_t id : ids) pieces.push_back(detok.push(id));
  pieces.push_back(detok.flush());
  return pieces;
}

std::string join(const std::vector<std::string>& pieces) {
  std::string s;
  for (const auto& p : pieces) s += p;
  return s;
}

TEST(Incremental, SplitCharacterIsHeldUntilComplete) {
  const auto tok = fixture("gpt2");
  const auto ids = tok->encode("\xE6\xBC\xA2!", false).ids;  // 漢 needs more than one byte-level token
  ASSERT_GT(ids.size(), 2u);
  const auto pieces = stream(tok, ids);
  for (const auto& p : pieces) {
    EXPECT_FALSE(unicode::first_invalid_byte(p));
    EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos);
  }
  EXPECT_EQ(pieces.front(), "");
  EXPECT_EQ(join(pieces), "\xE6\xBC\xA2!");
}

TEST(Incremental, ByteFallbackCharacterIsHeldUntilComplete) {
  const auto tok = fixture("spm_bpe_small");
  const auto ids = tok->encode("a \xF0\x9F\x98\x80 b", false).ids;  // emoji as <0xF0> <0x9F> <0x98> <0x80>
  const auto pieces = stream(tok, ids);
  EXPECT_EQ(join(pieces), tok->decode(ids, false));
  for (const auto& p : pieces) EXPECT_EQ(p.find("\xEF\xBF\xBD"), std::string::npos) << p;
}

TEST(Incremental, PromptContextKeepsTheLeadingSpace) {
  const auto tok = fixture("mistral7b");
  const auto prompt = tok->encode("Hello", true).ids;
  const auto full = tok->encode("Hello world, again", true).ids;
  ASSERT_EQ(std::vector<int32_t>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(prompt.size())), prompt);
  const std::vector<int32_t> generated(full.begin() + static_cast<std::ptrdiff_t>(prompt.size()), full.end());
  // With the prompt as context, "▁world" continues the text with its space ...
  EXPECT_EQ(join(stream(tok, generated, prompt)), " world, again");
  // ... without it, the generated text is decoded on its own (leading space stripped).
  EXPECT_EQ(join(stream(tok, generated)), tok->decode(generated, false));
  EXPECT_EQ(join(stream(tok, generated)), "world, again");
}

TEST(Incremental, SkippedSpecialTokensDoNotEatSpaces) {
  const auto tok = fixture("mistral7b");
  std::vector<int32_t> ids = tok->encode("Hi there", false).ids;
  ids.insert(ids.begin() + 1, 2);  // </s> in the middle
  EXPECT_EQ(join(stream(tok, ids, {}, true)), tok->decode(ids, true));
  EXPECT_EQ(join(stream(tok, ids, {}, false)), tok->decode(ids, false));
}

TEST(Incremental, LongGenerationKeepsABoundedWindow) {
  const auto tok = fixture("qwen3");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "word" + std::to_string(i) + " \xE4\xBD\xA0\xE5\xA5\xBD ";
  const auto ids = tok->encode(text, false).ids;
  EXPECT_EQ(join(stream(tok, ids)), text);
}

}  // namespace
}  // namespace lmserve::tokenizer
