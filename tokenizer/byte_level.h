// GPT-2's reversible byte <-> printable-character table (HF `bytes_char`), shared by the
// ByteLevel pre-tokenizer and decoder.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace lmserve::tokenizer::byte_level {

// UTF-8 encoding of the character that stands for each byte.
const std::array<std::string, 256>& byte_to_char();
// Byte that code point `cp` stands for, or -1 when `cp` is not in the table.
int char_to_byte(char32_t cp);

}  // namespace lmserve::tokenizer::byte_level
