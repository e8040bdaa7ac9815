// IncrementalDetokenizer (declared in tokenizer.h): decodes a sliding window of ids and emits
// the text the newest ids add beyond the window's already-emitted context.
#include <algorithm>
#include <stdexcept>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace lmserve::tokenizer {

namespace {

constexpr std::string_view kReplacementChar = "\xEF\xBF\xBD";

size_t count_chars(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

IncrementalDetokenizer::IncrementalDetokenizer(std::shared_ptr<const Tokenizer> tokenizer, bool skip_special_tokens,
                                               std::span<const int32_t> prompt_ids)
    : tokenizer_(std::move(tokenizer)), skip_special_(skip_special_tokens) {
  if (!tokenizer_) throw std::invalid_argument("IncrementalDetokenizer: null tokenizer");
  // The window's context must hold more characters than a decoder may strip from the front,
  // or stripping would reach into new text.
  min_context_chars_ = tokenizer_->decoder_leading_chars_affected() + 1;
  if (prompt_ids.empty()) return;
  size_t begin = prompt_ids.size() - std::min<size_t>(prompt_ids.size(), 4);
  while (true) {
    const std::string context = tokenizer_->decode(prompt_ids.subspan(begin), skip_special_);
    if (begin == 0 || count_chars(context) >= min_context_chars_ + 4) break;
    begin = begin > 8 ? begin - 8 : 0;
  }
  ids_.assign(prompt_ids.begin() + static_cast<std::ptrdiff_t>(begin), prompt_ids.end());
  read_offset_ = ids_.size();
  prefix_text_ = decode_window(0, read_offset_);
}

std::string IncrementalDetokenizer::decode_window(size_t begin, size_t end) const {
  return tokenizer_->decode(std::span<const int32_t>(ids_).subspan(begin, end - begin), skip_special_);
}

std::string IncrementalDetokenizer::push(int32_t id) {
  if (!tokenizer_->contains_id(id)) {
    throw std::runtime_error("detokenize: token id " + std::to_string(id) + " is not in the vocabulary (size " +
                             std::to_string(tokenizer_->vocab_size()) + ")");
  }
  ids_.push_back(id);
  const std::string text = decode_window(prefix_offset_, ids_.size());
  if (text.size() <= prefix_text_.size() || text.compare(0, prefix_text_.size(), prefix_text_) != 0) return {};
  // A trailing U+FFFD may be a character whose remaining bytes are still to come.
  if (ends_with(text, kReplacementChar)) return {};
  std::string piece = text.substr(prefix_text_.size());
  // Slide the window start to the latest emission boundary (a clean cut: the text before it
  // was complete) whose ids still decode to enough characters on their own.
  boundaries_.push_back(read_offset_);
  size_t start = prefix_offset_;
  std::string context = text;
  for (auto it = boundaries_.rbegin(); it != boundaries_.rend(); ++it) {
    std::string candidate = decode_window(*it, ids_.size());
    if (count_chars(candidate) >= min_context_chars_) {
      start = *it;
      context = std::move(candidate);
      break;
    }
  }
  std::erase_if(boundaries_, [start](size_t b) { return b <= start; });
  prefix_offset_ = start;
  prefix_text_ = std::move(context);
  read_offset_ = ids_.size();
  return piece;
}

std::string IncrementalDetokenizer::flush() {
  const std::string text = decode_window(prefix_offset_, ids_.size());
  std::string piece;
  if (text.size() > prefix_text_.size() && text.compare(0, prefix_text_.size(), prefix_text_) == 0) {
    piece = text.substr(prefix_text_.size());
  }
  prefix_text_ = text;
  read_offset_ = ids_.size();
  return piece;
}

}  // namespace lmserve::tokenizer
