// Builds the GPT-2 byte table once (see byte_level.h).
#include "tokenizer/byte_level.h"

#include "tokenizer/unicode.h"

namespace lmserve::tokenizer::byte_level {

namespace {

struct Tables {
  std::array<std::string, 256> to_char;
  std::array<int16_t, 512> from_char;  // every mapped code point is below 512
  Tables() {
    from_char.fill(-1);
    // Printable bytes stand for themselves; the rest are shifted to 256 + n in byte order.
    int next = 0;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t cp = printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++);
      to_char[b] = unicode::encode_utf8(cp);
      from_char[cp] = static_cast<int16_t>(b);
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::array<std::string, 256>& byte_to_char() { return tables().to_char; }

int char_to_byte(char32_t cp) { return cp < 512 ? tables().from_char[cp] : -1; }

}  // namespace lmserve::tokenizer::byte_level
