// Encoding and decoding from 8 threads at once give the same results as one thread; meant to
// run under ThreadSanitizer too (-DLMSERVE_SANITIZE=thread).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lmserve::tokenizer {
namespace {

std::vector<std::string> fixture_texts(const std::string& dir, size_t limit) {
  std::ifstream in(dir + "/public_cases.jsonl");
  std::vector<std::string> texts;
  std::string line;
  while (texts.size() < limit && std::getline(in, line)) {
    texts.push_back(nlohmann::json::parse(line).at("text").get<std::string>());
  }
  return texts;
}

void check_threads(const std::string& name) {
  const std::string dir = std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/" + name;
  const auto tok = Tokenizer::from_dir(dir);
  const auto texts = fixture_texts(dir, 120);
  ASSERT_FALSE(texts.empty());
  std::vector<std::vector<int32_t>> expected;
  for (const auto& t : texts) expected.push_back(tok->encode(t, true).ids);

  constexpr int kThreads = 8;
  std::vector<int> mismatches(kThreads, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      // Each thread walks the texts from a different starting point.
      for (size_t n = 0; n < texts.size(); ++n) {
        const size_t i = (n + static_cast<size_t>(k) * 17) % texts.size();
        const auto ids = tok->encode(texts[i], true).ids;
        if (ids != expected[i]) ++mismatches[static_cast<size_t>(k)];
        if (tok->decode(ids, false) != tok->decode(expected[i], false)) ++mismatches[static_cast<size_t>(k)];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int k = 0; k < kThreads; ++k) EXPECT_EQ(mismatches[static_cast<size_t>(k)], 0) << name << " thread " << k;
}

TEST(Threads, Gpt2EncodesConsistentlyFromEightThreads) { check_threads("gpt2"); }
TEST(Threads, SentencePieceStyleEncodesConsistentlyFromEightThreads) { check_threads("spm_bpe_small"); }

}  // namespace
}  // namespace lmserve::tokenizer
