// UTF-8 decoding/validation and the Unicode character properties the tokenizer needs.
// Properties come from utf8proc's category tables; nothing here hard-codes Unicode data
// beyond the few definitions Rust's `char` methods use (which HF tokenizers relies on).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lmserve::tokenizer::unicode {

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for invalid lead bytes).
inline size_t sequence_length(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead >> 5) == 0x6) return 2;
  if ((lead >> 4) == 0xE) return 3;
  if ((lead >> 3) == 0x1E) return 4;
  return 1;
}

// Decodes the code point at s[i] of a string already known to be valid UTF-8; sets `len`.
inline char32_t decode_at(std::string_view s, size_t i, size_t& len) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  len = sequence_length(b0);
  switch (len) {
    case 1: return b0;
    case 2: return (char32_t(b0 & 0x1F) << 6) | (static_cast<unsigned char>(s[i + 1]) & 0x3F);
    case 3:
      return (char32_t(b0 & 0x0F) << 12) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 6) |
             (static_cast<unsigned char>(s[i + 2]) & 0x3F);
    default:
      return (char32_t(b0 & 0x07) << 18) | (char32_t(static_cast<unsigned char>(s[i + 1]) & 0x3F) << 12) |
             (char32_t(static_cast<unsigned char>(s[i + 2]) & 0x3F) << 6) |
             (static_cast<unsigned char>(s[i + 3]) & 0x3F);
  }
}

void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(char32_t cp);

// Byte offset of the first ill-formed sequence, or nullopt when `s` is valid UTF-8.
std::optional<size_t> first_invalid_byte(std::string_view s);

// Length of the longest prefix of `s` that ends on a complete character (or on an invalid
// sequence that no later byte could complete). Used to hold back a split character.
size_t complete_prefix_length(std::string_view s);

// Appends `bytes` to `out`, replacing each maximal ill-formed subpart by U+FFFD, exactly as
// Rust's String::from_utf8_lossy does.
void append_lossy(std::string& out, std::string_view bytes);

// Rust char::is_whitespace (the Unicode White_Space property).
bool is_whitespace(char32_t cp);
// Rust char::is_alphanumeric, approximated as general categories L* and N*.
bool is_alphanumeric(char32_t cp);
// Rust char::is_numeric: categories Nd, Nl, No.
bool is_numeric(char32_t cp);
// HF's punctuation test: ASCII punctuation or categories Pc, Pd, Pe, Pf, Pi, Po, Ps.
bool is_punctuation(char32_t cp);
// Rust char::to_lowercase (full mapping; only U+0130 lowercases to two characters).
void append_lowercase(std::string& out, char32_t cp);

enum class NormalForm { NFC, NFD, NFKC, NFKD };
// Normalizes valid UTF-8 text with utf8proc.
std::string normalize(std::string_view text, NormalForm form);

// Splits valid UTF-8 text into extended grapheme clusters; calls fn(begin, end) for each.
template <typename Fn>
void for_each_grapheme(std::string_view text, Fn&& fn);
bool grapheme_break(char32_t previous, char32_t next, int32_t& state);

template <typename Fn>
void for_each_grapheme(std::string_view text, Fn&& fn) {
  size_t begin = 0, i = 0, len = 0;
  int32_t state = 0;
  char32_t previous = 0;
  while (i < text.size()) {
    const char32_t cp = decode_at(text, i, len);
    if (i > 0 && grapheme_break(previous, cp, state)) {
      fn(begin, i);
      begin = i;
    }
    previous = cp;
    i += len;
  }
  if (i > begin) fn(begin, i);
}

}  // namespace lmserve::tokenizer::unicode
