// NormalizedString alignment bookkeeping (see normalized_string.h).
#include "tokenizer/normalized_string.h"

#include <algorithm>

namespace lmserve::tokenizer {

NormalizedString::NormalizedString(std::string_view text, uint32_t input_offset)
    : text_(text), input_begin_(input_offset) {
  align_.resize(text.size());
  // Each byte of a character maps to the whole character, as HF aligns per char.
  size_t i = 0;
  while (i < text.size()) {
    size_t len = 1;
    const auto b = static_cast<unsigned char>(text[i]);
    if (b >= 0xF0) len = 4;
    else if (b >= 0xE0) len = 3;
    else if (b >= 0xC0) len = 2;
    len = std::min(len, text.size() - i);
    const Offsets r{static_cast<uint32_t>(input_offset + i), static_cast<uint32_t>(input_offset + i + len)};
    for (size_t k = 0; k < len; ++k) align_[i + k] = r;
    i += len;
  }
}

Offsets NormalizedString::input_range(size_t begin, size_t end) const {
  if (begin >= end || end > align_.size()) return {input_begin_, input_begin_};
  return {align_[begin].first, align_[end - 1].second};
}

NormalizedString NormalizedString::slice(size_t begin, size_t end) const {
  NormalizedString s;
  s.text_.assign(text_, begin, end - begin);
  s.align_.assign(align_.begin() + static_cast<std::ptrdiff_t>(begin),
                  align_.begin() + static_cast<std::ptrdiff_t>(end));
  s.input_begin_ = begin < end ? align_[begin].first
                   : begin < align_.size() ? align_[begin].first
                   : align_.empty() ? input_begin_ : align_.back().second;
  return s;
}

void NormalizedString::prepend(std::string_view prefix) {
  // HF aligns prepended characters with the first character of the string.
  const Offsets first = align_.empty() ? Offsets{input_begin_, input_begin_} : align_.front();
  text_.insert(0, prefix);
  align_.insert(align_.begin(), prefix.size(), first);
}

void NormalizedString::Builder::append(std::string_view bytes, Offsets input) {
  text_.append(bytes);
  align_.insert(align_.end(), bytes.size(), input);
}

void NormalizedString::Builder::copy(const NormalizedString& source, size_t begin, size_t end) {
  text_.append(source.text_, begin, end - begin);
  align_.insert(align_.end(), source.align_.begin() + static_cast<std::ptrdiff_t>(begin),
                source.align_.begin() + static_cast<std::ptrdiff_t>(end));
}

}  // namespace lmserve::tokenizer
