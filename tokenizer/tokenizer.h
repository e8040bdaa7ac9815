// Public API of the tokenizer: loads a Hugging Face tokenizer.json (+ tokenizer_config.json)
// and encodes/decodes exactly as HF tokenizers 0.23 does for the supported components.
//
//   auto tok = lmserve::tokenizer::Tokenizer::from_dir("/models/qwen3");
//   Encoding e = tok->encode("Hello", /*add_special_tokens=*/true);
//   std::string text = tok->decode(e.ids, /*skip_special_tokens=*/false);
//
// A Tokenizer is immutable after loading: every method is const and safe to call from any
// number of threads at once. Errors are std::runtime_error with a one-line message.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/encoding.h"

namespace lmserve::tokenizer {

class AddedVocabulary;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;

class Tokenizer {
 public:
  // Reads DIR/tokenizer.json and, when present, DIR/tokenizer_config.json.
  static std::shared_ptr<const Tokenizer> from_dir(const std::string& dir);
  // `source` names the JSON in error messages ("<source>: model.merges[12]: ...").
  // `config_json` is the text of tokenizer_config.json, or empty.
  static std::shared_ptr<const Tokenizer> from_json(const std::string& json_text, const std::string& source,
                                                    const std::string& config_json = "");

  ~Tokenizer();
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // Throws std::runtime_error("invalid UTF-8 at byte N") on ill-formed input.
  Encoding encode(std::string_view text, bool add_special_tokens) const;
  std::vector<int32_t> encode_ids(std::string_view text, bool add_special_tokens) const {
    return encode(text, add_special_tokens).ids;
  }

  // Throws std::runtime_error naming the first id that is not in the vocabulary.
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // Vocabulary string of an id (added tokens included); throws for an unknown id.
  std::string id_to_token(int32_t id) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  // One past the largest id of the model vocabulary and the added tokens (the logits width a
  // model needs at least).
  size_t vocab_size() const { return vocab_size_; }
  bool contains_id(int32_t id) const;
  // True for added tokens flagged "special" (dropped by skip_special_tokens).
  bool is_special(int32_t id) const;

  // From tokenizer_config.json's bos_token / eos_token (string or {"content": ...}).
  std::optional<int32_t> bos_id() const { return bos_id_; }
  std::optional<int32_t> eos_id() const { return eos_id_; }
  // How many leading decoded characters a decoder may strip (streaming keeps that much context).
  size_t decoder_leading_chars_affected() const;

 private:
  Tokenizer();
  // Token strings of `ids` for the decoder; throws on unknown ids.
  std::vector<std::string> token_strings(std::span<const int32_t> ids, bool skip_special_tokens) const;

  std::unique_ptr<AddedVocabulary> added_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  size_t vocab_size_ = 0;
  std::optional<int32_t> bos_id_, eos_id_;
};

// Streaming detokenization: push ids one at a time, get back only text that is final.
// Pieces never end inside a UTF-8 character, never carry a U+FFFD that stands for a
// character still being completed, and follow the same leading-space rules as a full
// decode; the concatenation of every push() and flush() equals decode(all pushed ids).
// With prompt ids, the text continues the prompt (e.g. a SentencePiece "▁Hi" after a prompt
// yields " Hi", not "Hi"), and the prompt's own text is not emitted.
class IncrementalDetokenizer {
 public:
  IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens,
                         std::span<const int32_t> prompt_ids = {});
  // Text completed by this id (possibly empty). Throws for an id outside the vocabulary.
  std::string push(int32_t id);
  // Whatever is still held back (e.g. an incomplete character at the end, as U+FFFD).
  std::string flush();

 private:
  std::string decode_window(size_t begin, size_t end) const;

  std::shared_ptr<const Tokenizer> tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // prompt context tail, then generated ids
  size_t prefix_offset_ = 0;  // window start: context decoded but not emitted
  size_t read_offset_ = 0;    // ids before this have been emitted
  std::string prefix_text_;   // decode of [prefix_offset_, read_offset_)
  std::vector<size_t> boundaries_;  // earlier read offsets after prefix_offset_
  size_t min_context_chars_ = 1;
};

}  // namespace lmserve::tokenizer
