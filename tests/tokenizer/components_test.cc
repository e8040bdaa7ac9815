// Unit tests of normalizers, pre-tokenizers and decoders on hand-written JSON, with the
// semantics HF tokenizers 0.23 gives them.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tokenizer/decoders.h"
#include "tokenizer/normalizers.h"
#include "tokenizer/pre_tokenizers.h"

namespace lmserve::tokenizer {
namespace {

using Strings = std::vector<std::string>;

std::string normalize(const char* json, const std::string& text) {
  auto n = make_normalizer(Json::parse(json), "normalizer");
  NormalizedString s(text, 0);
  n->normalize(s);
  return s.str();
}

std::vector<Split> pre_tokenize_splits(const char* json, const std::string& text) {
  auto p = make_pre_tokenizer(Json::parse(json), "pre_tokenizer");
  std::vector<Split> splits;
  splits.push_back(Split{NormalizedString(text, 0), -1});
  p->pre_tokenize(splits);
  return splits;
}

Strings pre_tokenize(const char* json, const std::string& text) {
  Strings out;
  for (const auto& s : pre_tokenize_splits(json, text)) out.push_back(s.text.str());
  return out;
}

std::string decode(const char* json, Strings tokens) {
  auto d = make_decoder(Json::parse(json), "decoder");
  d->decode_chain(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

// ---- normalizers

TEST(Normalizers, UnicodeForms) {
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "e\xCC\x81"), "\xC3\xA9");              // e + U+0301 -> é
  EXPECT_EQ(normalize(R"({"type":"NFD"})", "\xC3\xA9"), "e\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFKC"})", "\xEF\xAC\x81 \xE2\x91\xA0"), "fi 1");  // ﬁ ①
  EXPECT_EQ(normalize(R"({"type":"NFKD"})", "\xEF\xAC\x81\xC3\xA9"), "fie\xCC\x81");
  EXPECT_EQ(normalize(R"({"type":"NFC"})", "plain ascii"), "plain ascii");
}

TEST(Normalizers, NfkcKeepsAlignmentPerCharacter) {
  auto n = make_normalizer(Json::parse(R"({"type":"NFKC"})"), "normalizer");
  NormalizedString s("a\xEF\xAC\x81" "b", 10);  // a ﬁ b at input bytes 10..15
  n->normalize(s);
  ASSERT_EQ(s.str(), "afib");
  EXPECT_EQ(s.input_range(1, 2), (Offsets{11, 14}));  // 'f' comes from the 3-byte ligature
  EXPECT_EQ(s.input_range(3, 4), (Offsets{14, 15}));
}

TEST(Normalizers, LowercaseUsesFullMapping) {
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "HeLLo \xC3\x89T\xC3\x89 \xCE\xA3"), "hello \xC3\xA9t\xC3\xA9 \xCF\x83");
  // U+0130 lowercases to "i" + U+0307, as Rust's char::to_lowercase.
  EXPECT_EQ(normalize(R"({"type":"Lowercase"})", "\xC4\xB0"), "i\xCC\x87");
}

TEST(Normalizers, StripPrependReplaceSequence) {
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":true,"strip_right":true})", " \t hi there \xE3\x80\x80"), "hi there");
  EXPECT_EQ(normalize(R"({"type":"Strip","strip_left":false,"strip_right":true})", "  hi  "), "  hi");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"_"})", "hi"), "_hi");
  EXPECT_EQ(normalize(R"({"type":"Prepend","prepend":"_"})", ""), "");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":" "},"content":"\u2581"})", "a b  c"),
            "a\xE2\x96\x81" "b\xE2\x96\x81\xE2\x96\x81" "c");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"String":"a.b"},"content":"X"})", "a.b axb"), "X axb");
  EXPECT_EQ(normalize(R"({"type":"Replace","pattern":{"Regex":"\\s+"},"content":" "})", "a \t\n b"), "a b");
  EXPECT_EQ(normalize(R"({"type":"Sequence","normalizers":[{"type":"Lowercase"},{"type":"Prepend","prepend":"#"}]})", "AB"),
            "#ab");
  EXPECT_EQ(normalize(R"({"type":"StripAccents"})", "e\xCC\x81t\xCC\x88"), "et");
}

// ---- pre-tokenizers

TEST(PreTokenizers, SplitBehaviors) {
  const std::string text = "How are  you";
  auto split = [&](const char* behavior, bool invert = false) {
    std::string json = std::string(R"({"type":"Split","pattern":{"String":" "},"behavior":")") + behavior +
                       R"(","invert":)" + (invert ? "true" : "false") + "}";
    return pre_tokenize(json.c_str(), text);
  };
  EXPECT_EQ(split("Removed"), (Strings{"How", "are", "you"}));
  EXPECT_EQ(split("Isolated"), (Strings{"How", " ", "are", " ", " ", "you"}));
  EXPECT_EQ(split("MergedWithPrevious"), (Strings{"How ", "are ", " ", "you"}));
  EXPECT_EQ(split("MergedWithNext"), (Strings{"How", " are", " ", " you"}));
  EXPECT_EQ(split("Contiguous"), (Strings{"How", " ", "are", "  ", "you"}));
  EXPECT_EQ(split("Removed", true), (Strings{" ", " ", " "}));
  EXPECT_EQ(split("Isolated", true), (Strings{"How", " ", "are", " ", " ", "you"}));
}

TEST(PreTokenizers, SplitRegexUsesUnicodeClasses) {
  const char* json = R"({"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Removed","invert":false})";
  // U+3000 and U+0085 are White_Space (Oniguruma's \s), U+180E is not.
  EXPECT_EQ(pre_tokenize(json, "a\xE3\x80\x80" "b\xC2\x85" "c\xE1\xA0\x8E" "d"), (Strings{"a", "b", "c\xE1\xA0\x8E" "d"}));
  const char* word = R"({"type":"Split","pattern":{"Regex":"\\w+"},"behavior":"Isolated","invert":false})";
  // Combining marks are word characters in Oniguruma.
  EXPECT_EQ(pre_tokenize(word, "e\xCC\x81x-y"), (Strings{"e\xCC\x81x", "-", "y"}));
}

TEST(PreTokenizers, Digits) {
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":true})", "Hey 123 friend!"),
            (Strings{"Hey ", "1", "2", "3", " friend!"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Digits","individual_digits":false})", "Hey 123 friend 4\xD9\xA5!"),
            (Strings{"Hey ", "123", " friend ", "4\xD9\xA5", "!"}));
}

TEST(PreTokenizers, Punctuation) {
  EXPECT_EQ(pre_tokenize(R"({"type":"Punctuation","behavior":"Isolated"})", "Hey friend!     How are you?!?"),
            (Strings{"Hey friend", "!", "     How are you", "?", "!", "?"}));
  // ASCII symbols count as punctuation; Unicode punctuation (« ») too.
  EXPECT_EQ(pre_tokenize(R"({"type":"Punctuation"})", "a+b\xC2\xAB" "c"), (Strings{"a", "+", "b", "\xC2\xAB", "c"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"Punctuation","behavior":"MergedWithPrevious"})", "a,b."), (Strings{"a,", "b."}));
}

TEST(PreTokenizers, WhitespaceAndWhitespaceSplit) {
  EXPECT_EQ(pre_tokenize(R"({"type":"Whitespace"})", "Hey, man! How's it\tgoing?"),
            (Strings{"Hey", ",", "man", "!", "How", "'", "s", "it", "going", "?"}));
  EXPECT_EQ(pre_tokenize(R"({"type":"WhitespaceSplit"})", "Hey, man!\u3000ok\n"), (Strings{"Hey,", "man!", "ok"}));
}

TEST(PreTokenizers, Metaspace) {
  const char* always = R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always","split":true})";
  EXPECT_EQ(pre_tokenize(always, "Hey friend!"), (Strings{"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend!"}));
  EXPECT_EQ(pre_tokenize(always, " Hey"), (Strings{"\xE2\x96\x81Hey"}));
  const char* nosplit = R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"never","split":false})";
  EXPECT_EQ(pre_tokenize(nosplit, "a b"), (Strings{"a\xE2\x96\x81" "b"}));
  // "first" prepends only to the piece that starts at input offset 0.
  const char* first = R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"first","split":false})";
  auto p = make_pre_tokenizer(Json::parse(first), "pre_tokenizer");
  std::vector<Split> splits;
  splits.push_back(Split{NormalizedString("a", 0), -1});
  splits.push_back(Split{NormalizedString("<s>", 1), 7});
  splits.push_back(Split{NormalizedString("b", 4), -1});
  p->pre_tokenize(splits);
  ASSERT_EQ(splits.size(), 3u);
  EXPECT_EQ(splits[0].text.str(), "\xE2\x96\x81" "a");
  EXPECT_EQ(splits[1].text.str(), "<s>");
  EXPECT_EQ(splits[2].text.str(), "b");
}

TEST(PreTokenizers, ByteLevel) {
  const char* gpt2 = R"({"type":"ByteLevel","add_prefix_space":false,"trim_offsets":true,"use_regex":true})";
  EXPECT_EQ(pre_tokenize(gpt2, "Hello my friend, it's 2024!\n"),
            (Strings{"Hello", "\xC4\xA0my", "\xC4\xA0" "friend", ",", "\xC4\xA0it", "'s", "\xC4\xA0" "2024", "!", "\xC4\x8A"}));
  const char* prefix = R"({"type":"ByteLevel","add_prefix_space":true,"use_regex":false})";
  EXPECT_EQ(pre_tokenize(prefix, "hi you"), (Strings{"\xC4\xA0hi\xC4\xA0you"}));
  // Multi-byte characters become one byte character per byte, all aligned to the character.
  const auto splits = pre_tokenize_splits(R"({"type":"ByteLevel","add_prefix_space":false})", "\xC3\xA9");
  ASSERT_EQ(splits.size(), 1u);
  EXPECT_EQ(splits[0].text.str(), "\xC3\x83\xC2\xA9");  // Ã ©
  EXPECT_EQ(splits[0].text.input_range(2, 4), (Offsets{0, 2}));
}

TEST(PreTokenizers, SequenceAppliesInOrder) {
  const char* json = R"({"type":"Sequence","pretokenizers":[{"type":"WhitespaceSplit"},{"type":"Digits","individual_digits":true}]})";
  EXPECT_EQ(pre_tokenize(json, "ab12 c3"), (Strings{"ab", "1", "2", "c", "3"}));
}

// ---- decoders

TEST(Decoders, ByteLevelJoinsBytesLossily) {
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"Hello", "\xC4\xA0world"}), "Hello world");
  // æ ¼ stand for bytes E6 BC: an incomplete character reads as one U+FFFD; ¢ (A2) completes 漢.
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"\xC3\xA6", "\xC2\xBC"}), "\xEF\xBF\xBD");
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"\xC3\xA6", "\xC2\xBC", "\xC2\xA2"}), "\xE6\xBC\xA2");
  // Ģ stands for byte 0x80 (a non-printable byte shifted to U+0100 + n).
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"\xC3\xA6", "\xC2\xBC", "\xC4\xA2"}), "\xE6\xBC\x80");
  // A token with a character outside the byte table is taken verbatim.
  EXPECT_EQ(decode(R"({"type":"ByteLevel"})", {"\xE2\x96\x81x", "\xC4\xA0y"}), "\xE2\x96\x81x y");
}

TEST(Decoders, ByteFallbackAndFuse) {
  EXPECT_EQ(decode(R"({"type":"ByteFallback"})", {"<0x61>", "b", "<0xE6>", "<0xBC>", "<0xA2>"}), "ab\xE6\xBC\xA2");
  // An invalid byte group becomes one U+FFFD per byte.
  EXPECT_EQ(decode(R"({"type":"ByteFallback"})", {"<0xE6>", "<0xBC>", "x"}), "\xEF\xBF\xBD\xEF\xBF\xBDx");
  EXPECT_EQ(decode(R"({"type":"ByteFallback"})", {"<0x6>", "<0xZZ>"}), "<0x6><0xZZ>");
  auto fuse = make_decoder(Json::parse(R"({"type":"Fuse"})"), "decoder");
  Strings tokens{"a", "b", "c"};
  fuse->decode_chain(tokens);
  EXPECT_EQ(tokens, Strings{"abc"});
}

TEST(Decoders, StripReplaceMetaspaceSequence) {
  EXPECT_EQ(decode(R"({"type":"Strip","content":" ","start":1,"stop":0})", {"  a", " b"}), " ab");
  EXPECT_EQ(decode(R"({"type":"Strip","content":"x","start":0,"stop":2})", {"axxx"}), "ax");
  EXPECT_EQ(decode(R"({"type":"Replace","pattern":{"String":"\u2581"},"content":" "})", {"\xE2\x96\x81" "a\xE2\x96\x81"}), " a ");
  EXPECT_EQ(decode(R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"always"})",
                   {"\xE2\x96\x81Hey", "\xE2\x96\x81" "friend"}),
            "Hey friend");
  EXPECT_EQ(decode(R"({"type":"Metaspace","replacement":"\u2581","prepend_scheme":"never"})", {"\xE2\x96\x81Hey"}), " Hey");
  const char* llama = R"({"type":"Sequence","decoders":[{"type":"Replace","pattern":{"String":"\u2581"},"content":" "},
      {"type":"ByteFallback"},{"type":"Fuse"},{"type":"Strip","content":" ","start":1,"stop":0}]})";
  EXPECT_EQ(decode(llama, {"\xE2\x96\x81Hi", "<0x21>", "\xE2\x96\x81you"}), "Hi! you");
}

}  // namespace
}  // namespace lmserve::tokenizer
