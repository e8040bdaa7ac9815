// TextStream: incremental detokenization with stop-string matching and hold-back.
#include "engine/text/text_stream.h"

#include <algorithm>

namespace lmserve::text {

size_t stop_prefix_overlap(std::string_view text, std::span<const std::string> stops) {
  size_t best = 0;
  for (const std::string& s : stops) {
    if (s.empty()) continue;
    const size_t longest = std::min(s.size() - 1, text.size());
    for (size_t len = longest; len > best; --len) {
      if (text.substr(text.size() - len) == std::string_view(s).substr(0, len)) {
        best = len;
        break;
      }
    }
  }
  return best;
}

TextStream::TextStream(std::shared_ptr<const tokenizer::Tokenizer> tokenizer,
                       std::span<const int32_t> prompt, StopOptions options)
    : detokenizer_(std::move(tokenizer), options.skip_special_tokens, prompt),
      options_(std::move(options)) {
  std::erase_if(options_.stop, [](const std::string& s) { return s.empty(); });
}

TextDelta TextStream::push(int32_t id) {
  if (stopped_ || finished_) return {};
  ++num_ids_;
  pending_ += detokenizer_.push(id);
  return release(false);
}

TextDelta TextStream::finish() {
  if (stopped_ || finished_) return {};
  finished_ = true;
  pending_ += detokenizer_.flush();
  return release(true);
}

TextDelta TextStream::release(bool final) {
  TextDelta delta;
  // Earliest match wins; at equal positions the longer stop string (it contains the other).
  size_t match_pos = std::string::npos;
  const std::string* match = nullptr;
  for (const std::string& s : options_.stop) {
    const size_t pos = pending_.find(s);
    if (pos == std::string::npos) continue;
    if (pos < match_pos || (pos == match_pos && s.size() > match->size())) {
      match_pos = pos;
      match = &s;
    }
  }
  if (match) {
    const size_t end = match_pos + (options_.include_stop_str_in_output ? match->size() : 0);
    delta.text = pending_.substr(0, end);
    delta.stop = *match;
    pending_.clear();
    stopped_ = true;
  } else {
    const size_t hold = final ? 0 : stop_prefix_overlap(pending_, options_.stop);
    delta.text = pending_.substr(0, pending_.size() - hold);
    pending_.erase(0, pending_.size() - hold);
  }
  text_ += delta.text;
  return delta;
}

}  // namespace lmserve::text
