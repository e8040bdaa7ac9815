// TextCodec: the server's view of the tokenizer (lmserve_tokenizer) and of per-sequence
// streaming text (lmserve_text: incremental detokenization + stop strings with
// hold-back). Routes use only this header, so the text libraries' APIs meet the server
// in one file (text.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace lmserve::server {

// The text of one generated sequence as it grows, token by token.
class SequenceText {
 public:
  virtual ~SequenceText() = default;
  struct Delta {
    std::string text;      // text that is now final (complete UTF-8, not a possible stop prefix)
    bool stopped = false;  // a stop string matched; `text` ends where the output ends
    std::string matched;   // the stop string that matched
  };
  // One generated token.
  virtual Delta add(int32_t token) = 0;
  // The sequence ended without a stop string: release the held-back text.
  virtual std::string finish() = 0;
};

class TextCodec {
 public:
  virtual ~TextCodec() = default;
  // Reads <dir>/tokenizer.json (+ tokenizer_config.json). Throws std::runtime_error.
  static std::unique_ptr<TextCodec> load(const std::string& model_dir);

  virtual std::vector<int32_t> encode(const std::string& text, bool add_special_tokens) const = 0;
  // Throws std::invalid_argument naming an id outside the vocabulary.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;
  // One token's text as shown in logprobs: the token decoded alone (a token holding part
  // of a multi-byte character decodes to U+FFFD, as in vLLM).
  virtual std::string token_text(int32_t id) const = 0;
  virtual int vocab_size() const = 0;

  struct StreamOptions {
    std::vector<std::string> stop;
    bool include_stop_str_in_output = false;
    bool skip_special_tokens = true;
  };
  // `prompt` gives the detokenizer its left context (leading-space rules).
  virtual std::unique_ptr<SequenceText> start_sequence(std::span<const int32_t> prompt,
                                                       const StreamOptions& options) const = 0;
};

}  // namespace lmserve::server
