// NormalizedString: a piece of the input after normalization, with every byte aligned to the
// byte range of the input it came from, so token offsets can point into the caller's text.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lmserve::tokenizer {

// Absolute byte range [first, second) in the text given to encode().
using Offsets = std::pair<uint32_t, uint32_t>;

class NormalizedString {
 public:
  NormalizedString() = default;
  // Identity alignment: `text` occupies input bytes [input_offset, input_offset + size).
  NormalizedString(std::string_view text, uint32_t input_offset);

  const std::string& str() const { return text_; }
  size_t size() const { return text_.size(); }
  bool empty() const { return text_.empty(); }
  // Where this piece starts in the input (kept for empty pieces too).
  uint32_t input_begin() const { return input_begin_; }
  // Input range covered by normalized bytes [begin, end) (begin < end).
  Offsets input_range(size_t begin, size_t end) const;

  NormalizedString slice(size_t begin, size_t end) const;
  void prepend(std::string_view prefix);

  // Rebuilds the string: the callback receives a Builder that appends new bytes aligned to
  // an input range; helpers below cover the common per-character rewrites.
  class Builder {
   public:
    void append(std::string_view bytes, Offsets input);
    // Copies source bytes [begin, end) with their own alignment.
    void copy(const NormalizedString& source, size_t begin, size_t end);

   private:
    friend class NormalizedString;
    std::string text_;
    std::vector<Offsets> align_;
  };
  template <typename Fn>
  void rebuild(Fn&& fn) {
    Builder b;
    b.text_.reserve(text_.size());
    b.align_.reserve(text_.size());
    fn(b);
    text_ = std::move(b.text_);
    align_ = std::move(b.align_);
  }

  // Input range of the character whose bytes are [begin, end).
  Offsets char_range(size_t begin, size_t end) const { return input_range(begin, end); }

 private:
  std::string text_;
  std::vector<Offsets> align_;  // one entry per byte of text_
  uint32_t input_begin_ = 0;
};

}  // namespace lmserve::tokenizer
