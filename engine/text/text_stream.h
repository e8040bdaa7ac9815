// TextStream: the text of one returned sequence as its token ids arrive — incremental
// detokenization plus stop strings. Text that may still turn out to be the start of a
// stop string is held back until resolved; a matched stop string ends the sequence (the
// caller then calls Engine::stop_sequence) and is cut from the text unless
// include_stop_str_in_output. Used by the CLI and by the server's responses and SSE.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace lmserve::text {

struct StopOptions {
  std::vector<std::string> stop;  // stop strings; empty strings are ignored
  bool include_stop_str_in_output = false;
  bool skip_special_tokens = true;
};

struct TextDelta {
  std::string text;                  // newly final text (never ends inside a UTF-8 character)
  std::optional<std::string> stop;   // the stop string that matched at this id
  bool stopped() const { return stop.has_value(); }
};

class TextStream {
 public:
  // `prompt` gives the detokenizer its context (leading spaces of the first new token).
  TextStream(std::shared_ptr<const tokenizer::Tokenizer> tokenizer, std::span<const int32_t> prompt,
             StopOptions options);

  // Adds one generated id. After a stop string matched, further ids are ignored.
  TextDelta push(int32_t id);
  // The sequence ended (length, EOS, abort): releases everything held back.
  TextDelta finish();

  bool stopped() const { return stopped_; }
  // Everything returned so far, concatenated.
  const std::string& text() const { return text_; }
  // Generated ids pushed before and including the one that completed the stop string.
  int num_ids() const { return num_ids_; }

 private:
  // Moves `pending_` text out, cutting at a stop string or holding back a possible prefix.
  TextDelta release(bool final);

  tokenizer::IncrementalDetokenizer detokenizer_;
  StopOptions options_;
  std::string pending_;  // decoded, not yet returned
  std::string text_;
  bool stopped_ = false;
  bool finished_ = false;
  int num_ids_ = 0;
};

// Length of the longest suffix of `text` that is a proper prefix of some stop string
// (text that must be held back because the next token may complete the stop string).
size_t stop_prefix_overlap(std::string_view text, std::span<const std::string> stops);

}  // namespace lmserve::text
