// Unit tests of the BPE model, added tokens, post-processing and the Tokenizer API on small
// hand-written tokenizer.json documents.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/tokenizer.h"

namespace lmserve::tokenizer {
namespace {

using Ids = std::vector<int32_t>;
using Strings = std::vector<std::string>;

// Vocabulary of single letters a..z (ids 0..25) plus `extra` tokens from id 26 on.
Json letters_vocab(const Strings& extra) {
  Json vocab = Json::object();
  for (int c = 0; c < 26; ++c) vocab[std::string(1, static_cast<char>('a' + c))] = c;
  int next = 26;
  for (const auto& t : extra) vocab[t] = next++;
  return vocab;
}

Json bpe_model(Json vocab, Json merges) {
  return Json{{"type", "BPE"}, {"vocab", std::move(vocab)}, {"merges", std::move(merges)}, {"dropout", nullptr},
              {"unk_token", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}};
}

std::shared_ptr<const Tokenizer> make(Json model, Json extra = Json::object(), const std::string& config = "") {
  Json j = {{"version", "1.0"}, {"model", std::move(model)}, {"added_tokens", Json::array()}};
  for (auto it = extra.begin(); it != extra.end(); ++it) j[it.key()] = it.value();
  return Tokenizer::from_json(j.dump(), "test.json", config);
}

Ids ids(const std::shared_ptr<const Tokenizer>& t, const std::string& text, bool special = false) {
  return t->encode(text, special).ids;
}

TEST(Bpe, MergesApplyLowestRankFirst) {
  // "a b" (rank 1) loses to "b c" (rank 0): abc -> a + bc, and no merge joins a + bc.
  auto t = make(bpe_model(letters_vocab({"ab", "bc"}), {"b c", "a b"}));
  EXPECT_EQ(ids(t, "abc"), (Ids{0, 27}));
  auto t2 = make(bpe_model(letters_vocab({"ab", "bc", "abc"}), Json::array({Json::array({"a", "b"}), Json::array({"ab", "c"})})));
  EXPECT_EQ(ids(t2, "abc"), (Ids{28}));
  EXPECT_EQ(ids(t2, "abcab"), (Ids{28, 26}));
}

TEST(Bpe, UnknownCharactersWithAndWithoutFuse) {
  Json model = bpe_model(letters_vocab({"<unk>"}), Json::array());
  model["unk_token"] = "<unk>";
  EXPECT_EQ(ids(make(model), "a\xC3\xA9\xC3\xA9" "b"), (Ids{0, 26, 26, 1}));
  model["fuse_unk"] = true;
  EXPECT_EQ(ids(make(model), "a\xC3\xA9\xC3\xA9" "b"), (Ids{0, 26, 1}));
  // Without unk_token an unknown character is dropped, as in HF.
  EXPECT_EQ(ids(make(bpe_model(letters_vocab({}), Json::array())), "a?b"), (Ids{0, 1}));
}

TEST(Bpe, ByteFallback) {
  Json model = bpe_model(letters_vocab({"<unk>", "<0xC3>", "<0xA9>", "<0x3F>"}), Json::array());
  model["unk_token"] = "<unk>";
  model["byte_fallback"] = true;
  const auto t = make(model);
  EXPECT_EQ(ids(t, "a\xC3\xA9?"), (Ids{0, 27, 28, 29}));
  // A character whose bytes are not all in the vocabulary falls back to unk.
  EXPECT_EQ(ids(t, "\xC3\xA8"), (Ids{26}));
  const Encoding e = t->encode("\xC3\xA9", false);
  EXPECT_EQ(e.tokens, (Strings{"<0xC3>", "<0xA9>"}));
}

TEST(Bpe, ContinuingSubwordPrefixAndEndOfWordSuffix) {
  Json vocab = letters_vocab({"##b", "##c", "ab", "abc"});
  Json model = bpe_model(vocab, {"a ##b", "ab ##c"});
  model["continuing_subword_prefix"] = "##";
  EXPECT_EQ(ids(make(model), "abc"), (Ids{29}));
  EXPECT_EQ(ids(make(model), "ba"), (Ids{1}));  // "##a" is not in the vocabulary: dropped
  Json suffix_model = bpe_model(letters_vocab({"b</w>", "ab</w>"}), {"a b</w>"});
  suffix_model["end_of_word_suffix"] = "</w>";
  EXPECT_EQ(ids(make(suffix_model), "ab"), (Ids{27}));
}

TEST(Bpe, IgnoreMergesTakesWholeWordsFromTheVocabulary) {
  Json model = bpe_model(letters_vocab({"abc", "ab"}), {"a b"});
  EXPECT_EQ(ids(make(model), "abc"), (Ids{27, 2}));
  model["ignore_merges"] = true;
  EXPECT_EQ(ids(make(model), "abc"), (Ids{26}));
  EXPECT_EQ(ids(make(model), "abcab"), (Ids{27, 2, 27}));
}

Json added(int id, const std::string& content, bool special, bool normalized, bool lstrip = false, bool rstrip = false,
           bool single_word = false) {
  return {{"id", id}, {"content", content}, {"special", special}, {"normalized", normalized},
          {"lstrip", lstrip}, {"rstrip", rstrip}, {"single_word", single_word}};
}

std::shared_ptr<const Tokenizer> added_tokens_tokenizer() {
  Json vocab = letters_vocab({" "});  // ' ' = 26
  Json extra = {{"normalizer", {{"type", "Lowercase"}}},
                {"added_tokens", Json::array({added(30, "<mask>", true, false, true, false),
                                              added(31, "hello", false, true, false, false, true),
                                              added(32, "[R]", true, false, false, true)})}};
  return make(bpe_model(vocab, Json::array()), extra);
}

TEST(AddedTokens, LstripAndRstripAbsorbWhitespace) {
  const auto t = added_tokens_tokenizer();
  EXPECT_EQ(ids(t, "a <mask>b"), (Ids{0, 30, 1}));
  EXPECT_EQ(ids(t, "a[R]  b"), (Ids{0, 32, 1}));
  const Encoding e = t->encode("a  <mask>", false);
  ASSERT_EQ(e.ids, (Ids{0, 30}));
  EXPECT_EQ(e.offsets[1], (std::pair<size_t, size_t>{1, 9}));  // the stripped spaces belong to the token
}

TEST(AddedTokens, SingleWordAndNormalizedMatching) {
  const auto t = added_tokens_tokenizer();
  EXPECT_EQ(ids(t, "hello a"), (Ids{31, 26, 0}));
  EXPECT_EQ(ids(t, "hellos"), (Ids{7, 4, 11, 11, 14, 18}));  // not a whole word
  EXPECT_EQ(ids(t, "HELLO"), (Ids{31}));                      // normalized token matches lowercased text
  EXPECT_EQ(ids(t, "<MASK>").size(), 4u);                     // non-normalized token needs the exact text
  EXPECT_EQ(t->id_to_token(30), "<mask>");
  EXPECT_EQ(t->token_to_id("hello"), 31);
  EXPECT_TRUE(t->is_special(30));
  EXPECT_FALSE(t->is_special(31));
  EXPECT_EQ(t->vocab_size(), 33u);
}

TEST(PostProcessing, TemplateAddsSpecialTokensOnlyWhenAsked) {
  Json extra = {{"added_tokens", Json::array({added(26, "<s>", true, false), added(27, "</s>", true, false)})},
                {"post_processor",
                 {{"type", "TemplateProcessing"},
                  {"single", Json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                                          {{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}}})},
                  {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {26}}, {"tokens", {"<s>"}}}},
                                      {"</s>", {{"id", "</s>"}, {"ids", {27}}, {"tokens", {"</s>"}}}}}}}}};
  const auto t = make(bpe_model(letters_vocab({"<s>", "</s>"}), Json::array()), extra);
  const Encoding e = t->encode("ab", true);
  EXPECT_EQ(e.ids, (Ids{26, 0, 1, 27}));
  EXPECT_EQ(e.special_tokens_mask, (std::vector<uint8_t>{1, 0, 0, 1}));
  EXPECT_EQ(e.offsets[0], (std::pair<size_t, size_t>{0, 0}));
  EXPECT_EQ(ids(t, "ab", false), (Ids{0, 1}));
  EXPECT_EQ(t->decode(e.ids, true), "a b");  // no decoder: tokens joined by spaces, as HF
  EXPECT_EQ(t->decode(e.ids, false), "<s> a b </s>");
}

TEST(PostProcessing, TokenizerConfigFlagsApplyWithoutPostProcessor) {
  Json extra = {{"added_tokens", Json::array({added(26, "<s>", true, false), added(27, "</s>", true, false)})}};
  const std::string config = R"({"bos_token":"<s>","eos_token":{"content":"</s>"},"add_bos_token":true,"add_eos_token":true})";
  const auto t = make(bpe_model(letters_vocab({"<s>", "</s>"}), Json::array()), extra, config);
  EXPECT_EQ(ids(t, "a", true), (Ids{26, 0, 27}));
  EXPECT_EQ(ids(t, "a", false), (Ids{0}));
  EXPECT_EQ(t->bos_id(), 26);
  EXPECT_EQ(t->eos_id(), 27);
}

TEST(Encoding, OffsetsPointIntoTheInput) {
  Json extra = {{"pre_tokenizer", {{"type", "WhitespaceSplit"}}}, {"normalizer", {{"type", "NFKC"}}}};
  const auto t = make(bpe_model(letters_vocab({"ab"}), {"a b"}), extra);
  const Encoding e = t->encode("ab  \xEF\xAC\x81x", false);  // ﬁ -> f i
  EXPECT_EQ(e.ids, (Ids{26, 5, 8, 23}));
  EXPECT_EQ(e.tokens, (Strings{"ab", "f", "i", "x"}));
  const std::vector<std::pair<size_t, size_t>> expected{{0, 2}, {4, 7}, {4, 7}, {7, 8}};
  EXPECT_EQ(e.offsets, expected);
}

TEST(Fixtures, BosEosFromTokenizerConfig) {
  const auto mistral = Tokenizer::from_dir(std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/mistral7b");
  EXPECT_EQ(mistral->bos_id(), 1);
  EXPECT_EQ(mistral->eos_id(), 2);
  EXPECT_EQ(mistral->vocab_size(), 32000u);
  EXPECT_TRUE(mistral->is_special(1));
  const auto gpt2 = Tokenizer::from_dir(std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/gpt2");
  EXPECT_EQ(gpt2->eos_id(), 50256);
  EXPECT_EQ(gpt2->vocab_size(), 50257u);
  const Encoding e = gpt2->encode("Hello world", false);
  EXPECT_EQ(e.offsets, (std::vector<std::pair<size_t, size_t>>{{0, 5}, {5, 11}}));
}

}  // namespace
}  // namespace lmserve::tokenizer
