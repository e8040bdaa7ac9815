// TextStream: stop strings on detokenized text, hold-back of possible stop prefixes,
// include_stop_str_in_output, and equality with a full decode when nothing stops.
#include "engine/text/text_stream.h"

#include <gtest/gtest.h>

namespace lmserve::text {
namespace {

std::shared_ptr<const tokenizer::Tokenizer> gpt2() {
  static auto tok = tokenizer::Tokenizer::from_dir(std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/gpt2");
  return tok;
}

struct Fed {
  std::string text;
  std::vector<std::string> pieces;
  std::optional<std::string> stop;
  int ids_used = 0;
};

Fed feed(const std::string& generated, StopOptions options, bool finish = true) {
  auto tok = gpt2();
  const std::vector<int32_t> prompt = tok->encode_ids("Once upon a time", false);
  TextStream stream(tok, prompt, std::move(options));
  Fed out;
  for (int32_t id : tok->encode_ids(generated, false)) {
    TextDelta d = stream.push(id);
    out.pieces.push_back(d.text);
    out.text += d.text;
    if (d.stopped()) {
      out.stop = d.stop;
      break;
    }
  }
  if (finish) out.text += stream.finish().text;
  EXPECT_EQ(out.text, stream.text());
  out.ids_used = stream.num_ids();
  return out;
}

TEST(TextStream, WithoutStopStringsTheTextIsTheFullDecode) {
  const std::string s = " there was a café — naïve 🙂 ok";
  Fed f = feed(s, {});
  EXPECT_EQ(f.text, s);
  EXPECT_FALSE(f.stop);
}

TEST(TextStream, StopStringIsCutAndReported) {
  Fed f = feed(" there was a king. The end of it all", {.stop = {"The end"}});
  ASSERT_TRUE(f.stop);
  EXPECT_EQ(*f.stop, "The end");
  EXPECT_EQ(f.text, " there was a king. ");
  // Ids after the one that completed the stop string were not consumed.
  EXPECT_LT(f.ids_used, static_cast<int>(gpt2()->encode_ids(" there was a king. The end of it all", false).size()));
}

TEST(TextStream, IncludeStopStringInOutput) {
  Fed f = feed(" there was a king. The end of it all", {.stop = {"end"}, .include_stop_str_in_output = true});
  EXPECT_EQ(f.text, " there was a king. The end");
}

TEST(TextStream, EarliestOfSeveralStopStringsWins) {
  Fed f = feed(" alpha beta gamma", {.stop = {"gamma", "beta", "zeta"}});
  ASSERT_TRUE(f.stop);
  EXPECT_EQ(*f.stop, "beta");
  EXPECT_EQ(f.text, " alpha ");
}

TEST(TextStream, HoldsBackAPossibleStopPrefixUntilResolved) {
  auto tok = gpt2();
  TextStream stream(tok, {}, {.stop = {" world peace"}});
  std::string shown;
  for (int32_t id : tok->encode_ids("hello world", false)) shown += stream.push(id).text;
  EXPECT_EQ(shown, "hello");  // " world" may still become " world peace"
  for (int32_t id : tok->encode_ids(" order", false)) shown += stream.push(id).text;
  EXPECT_EQ(shown, "hello world order");
  EXPECT_FALSE(stream.stopped());
}

TEST(TextStream, FinishReleasesHeldText) {
  Fed f = feed(" the wor", {.stop = {"world"}});
  EXPECT_FALSE(f.stop);
  EXPECT_EQ(f.text, " the wor");
}

TEST(TextStream, StopStringAcrossTokensAndMultibyteCharacters) {
  Fed f = feed(" price: 5€ and more", {.stop = {"€ and"}});
  ASSERT_TRUE(f.stop);
  EXPECT_EQ(f.text, " price: 5");
}

TEST(TextStream, PrefixOverlapLength) {
  const std::vector<std::string> stops = {"abc", "xyz"};
  EXPECT_EQ(stop_prefix_overlap("..ab", stops), 2u);
  EXPECT_EQ(stop_prefix_overlap("..a", stops), 1u);
  EXPECT_EQ(stop_prefix_overlap("..abc", stops), 0u);  // a full match is not a prefix
  EXPECT_EQ(stop_prefix_overlap("", stops), 0u);
  EXPECT_EQ(stop_prefix_overlap("xy", stops), 2u);
}

}  // namespace
}  // namespace lmserve::text
