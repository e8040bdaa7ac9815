// PCRE2 (UTF + UCP, JIT when available) wrapper with the match iteration HF tokenizers uses.
// Patterns written for Oniguruma (what HF compiles them with) are translated so that \s, \S,
// \w and \W keep Oniguruma's Unicode meaning.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/normalized_string.h"

namespace lmserve::tokenizer {

// A [begin, end) byte range of the searched text and whether it is a match (true) or the
// gap between matches (false). Together the ranges cover the whole text.
struct MatchRange {
  size_t begin;
  size_t end;
  bool is_match;
};

class Regex {
 public:
  // Throws std::runtime_error("<where>: ...") when the pattern does not compile.
  static Regex from_pattern(const std::string& pattern, const std::string& where);
  static Regex literal(const std::string& text, const std::string& where);

  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;
  ~Regex();

  // Matches and gaps in order, like HF's Pattern::find_matches for a regex; thread-safe.
  std::vector<MatchRange> find_matches(std::string_view text) const;

  struct Impl;  // compiled PCRE2 code (regex.cc)

 private:
  explicit Regex(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Oniguruma-compatible rewrite of \s \S \w \W (exposed for tests).
std::string translate_oniguruma_classes(const std::string& pattern);

}  // namespace lmserve::tokenizer
