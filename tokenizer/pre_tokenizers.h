// Pre-tokenizers from tokenizer.json's "pre_tokenizer" field: ByteLevel, Split, Metaspace,
// Digits, Punctuation, Whitespace, WhitespaceSplit, CharDelimiterSplit, BertPreTokenizer and
// Sequence, with HF tokenizers' semantics.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizer/json_util.h"
#include "tokenizer/split.h"

namespace lmserve::tokenizer {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Splits (and may rewrite) every split that is not an added token.
  virtual void pre_tokenize(std::vector<Split>& splits) const = 0;
};

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const Json& j, const std::string& path);

// Rewrites every byte of non-added splits as its GPT-2 byte character (ByteLevel's last step).
void byte_level_transform(std::vector<Split>& splits);

}  // namespace lmserve::tokenizer
