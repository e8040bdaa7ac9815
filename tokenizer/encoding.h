// Encoding: the result of Tokenizer::encode.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace lmserve::tokenizer {

struct Encoding {
  std::vector<int32_t> ids;
  // Vocabulary string of each id (e.g. "Ġhello", "▁hello", "<0x0A>", "<s>").
  std::vector<std::string> tokens;
  // Byte range [first, second) of each token in the text given to encode(); tokens added by
  // post-processing (BOS/EOS) have {0, 0}.
  std::vector<std::pair<size_t, size_t>> offsets;
  // 1 for tokens inserted by post-processing (template special tokens), 0 otherwise.
  std::vector<uint8_t> special_tokens_mask;

  size_t size() const { return ids.size(); }
};

}  // namespace lmserve::tokenizer
