// Decoders from tokenizer.json's "decoder" field: ByteLevel, Metaspace, ByteFallback, Fuse,
// Strip, Replace and Sequence. Each rewrites the list of token strings (HF decode_chain);
// the decoded text is their concatenation.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_util.h"

namespace lmserve::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
  // How many leading characters of the decoded text the decoder may still remove (Strip's
  // `start`): a streaming decoder keeps more context than that before the new text.
  virtual size_t leading_chars_affected() const { return 0; }
};

std::unique_ptr<Decoder> make_decoder(const Json& j, const std::string& path);

}  // namespace lmserve::tokenizer
