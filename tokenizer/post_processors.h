// Post-processors from tokenizer.json's "post_processor" field: TemplateProcessing,
// ByteLevel (offset trimming) and Sequence. They add BOS/EOS when add_special_tokens is on.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tokenizer/encoding.h"
#include "tokenizer/json_util.h"

namespace lmserve::tokenizer {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual void process(Encoding& encoding, bool add_special_tokens) const = 0;
};

std::unique_ptr<PostProcessor> make_post_processor(const Json& j, const std::string& path);

// A template "[bos] $A [eos]" built from tokenizer_config.json's add_bos_token/add_eos_token.
struct SpecialTokenRef {
  int32_t id;
  std::string token;
};
std::unique_ptr<PostProcessor> make_bos_eos_processor(std::optional<SpecialTokenRef> bos,
                                                      std::optional<SpecialTokenRef> eos);

}  // namespace lmserve::tokenizer
