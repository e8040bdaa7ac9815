// Bad input never crashes: invalid UTF-8, unknown ids, malformed or unsupported
// tokenizer.json all give one-line errors that say where the problem is.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tokenizer/tokenizer.h"

namespace lmserve::tokenizer {
namespace {

// A valid minimal tokenizer.json with `patch` merged over it (JSON merge-patch).
std::string tokenizer_json(const std::string& patch) {
  nlohmann::json j = nlohmann::json::parse(R"({
    "version": "1.0", "added_tokens": [],
    "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}})");
  j.merge_patch(nlohmann::json::parse(patch));
  return j.dump();
}

std::string load_error(const std::string& json_text) {
  try {
    Tokenizer::from_json(json_text, "tokenizer.json");
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    return message;
  }
  ADD_FAILURE() << "no error for " << json_text;
  return "";
}

TEST(Errors, InvalidUtf8NamesTheByteOffset) {
  const auto t = Tokenizer::from_json(tokenizer_json("{}"), "tokenizer.json");
  auto message = [&](const std::string& text) {
    try {
      t->encode(text, false);
    } catch (const std::runtime_error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("ab\xFF"), "encode: invalid UTF-8 at byte 2");
  EXPECT_EQ(message("a\xE2\x82"), "encode: invalid UTF-8 at byte 1");      // truncated
  EXPECT_EQ(message("ab\xED\xA0\x80"), "encode: invalid UTF-8 at byte 2"); // surrogate
  EXPECT_EQ(message("\xC0\xAF"), "encode: invalid UTF-8 at byte 0");       // overlong
  EXPECT_EQ(t->encode("", true).ids.size(), 0u);
}

TEST(Errors, DecodeOfUnknownIdNamesTheId) {
  const auto t = Tokenizer::from_json(tokenizer_json("{}"), "tokenizer.json");
  const std::vector<int32_t> bad{0, 7};
  EXPECT_THROW(
      {
        try {
          t->decode(bad, false);
        } catch (const std::runtime_error& e) {
          EXPECT_NE(std::string(e.what()).find("id 7 "), std::string::npos) << e.what();
          throw;
        }
      },
      std::runtime_error);
  const std::vector<int32_t> negative{-1};
  EXPECT_THROW(t->decode(negative, true), std::runtime_error);
  EXPECT_THROW(t->id_to_token(3), std::runtime_error);
  IncrementalDetokenizer detok(t, false);
  EXPECT_THROW(detok.push(99), std::runtime_error);
}

TEST(Errors, MalformedJsonNamesThePath) {
  EXPECT_NE(load_error("{\"model\": ").find("tokenizer.json: invalid JSON"), std::string::npos);
  EXPECT_EQ(load_error("[]"), "tokenizer.json: (root): expected an object");
  EXPECT_EQ(load_error(R"({"version": "1.0"})"), "tokenizer.json: model: missing");
  EXPECT_EQ(load_error(tokenizer_json(R"({"model": {"merges": ["a b", "a zz"]}})")),
            "tokenizer.json: model.merges[1]: token \"zz\" is not in the vocabulary");
  EXPECT_EQ(load_error(tokenizer_json(R"({"model": {"merges": ["a b", "ab"]}})")),
            "tokenizer.json: model.merges[1]: expected \"<left> <right>\", got \"ab\"");
  EXPECT_EQ(load_error(tokenizer_json(R"({"model": {"vocab": {"a": "x"}}})")),
            "tokenizer.json: model.vocab.a: expected an integer");
  EXPECT_EQ(load_error(tokenizer_json(R"({"added_tokens": [{"id": 5}]})")),
            "tokenizer.json: added_tokens[0].content: missing");
  EXPECT_EQ(load_error(tokenizer_json(R"({"pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(a"}, "behavior": "Isolated"}})"))
                .rfind("tokenizer.json: pre_tokenizer.pattern.Regex: regex does not compile", 0),
            0u);
  EXPECT_EQ(load_error(tokenizer_json(R"({"pre_tokenizer": {"type": "Split", "pattern": {"String": " "}, "behavior": "Sideways"}})")),
            "tokenizer.json: pre_tokenizer.behavior: unsupported split behavior \"Sideways\"");
  EXPECT_EQ(load_error(tokenizer_json(R"({"decoder": {"type": "Strip", "content": "ab", "start": 1, "stop": 0}})")),
            "tokenizer.json: decoder.content: expected a single character, got \"ab\"");
}

TEST(Errors, UnsupportedComponentsAreNamed) {
  EXPECT_EQ(load_error(tokenizer_json(R"({"model": {"type": "WordPiece"}})")),
            "tokenizer.json: model.type: unsupported model \"WordPiece\" (only BPE is supported)");
  EXPECT_EQ(load_error(tokenizer_json(R"({"model": {"dropout": 0.1}})")),
            "tokenizer.json: model.dropout: unsupported option: BPE dropout is non-deterministic");
  EXPECT_EQ(load_error(tokenizer_json(R"({"normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Precompiled"}]}})")),
            "tokenizer.json: normalizer.normalizers[1].type: unsupported normalizer \"Precompiled\"");
  EXPECT_EQ(load_error(tokenizer_json(R"({"pre_tokenizer": {"type": "UnicodeScripts"}})")),
            "tokenizer.json: pre_tokenizer.type: unsupported pre-tokenizer \"UnicodeScripts\"");
  EXPECT_EQ(load_error(tokenizer_json(R"({"post_processor": {"type": "BertProcessing"}})")),
            "tokenizer.json: post_processor.type: unsupported post-processor \"BertProcessing\"");
  EXPECT_EQ(load_error(tokenizer_json(R"({"decoder": {"type": "CTC"}})")),
            "tokenizer.json: decoder.type: unsupported decoder \"CTC\"");
  EXPECT_EQ(load_error(tokenizer_json(R"({"pre_tokenizer": {"type": "Metaspace", "replacement": "_", "prepend_scheme": "sometimes"}})")),
            "tokenizer.json: pre_tokenizer.prepend_scheme: unsupported prepend_scheme \"sometimes\"");
}

TEST(Errors, MissingFilesAndBadConfig) {
  EXPECT_THROW(Tokenizer::from_dir("/nonexistent/model"), std::runtime_error);
  try {
    Tokenizer::from_json(tokenizer_json("{}"), "tokenizer.json", R"({"bos_token": "<nope>"})");
    ADD_FAILURE() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "tokenizer_config.json: bos_token: token \"<nope>\" is not in the vocabulary");
  }
}

}  // namespace
}  // namespace lmserve::tokenizer
