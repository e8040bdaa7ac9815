// Normalizers from tokenizer.json's "normalizer" field: NFC, NFD, NFKC, NFKD, Lowercase,
// Prepend, Replace, Strip, StripAccents and Sequence.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/json_util.h"
#include "tokenizer/normalized_string.h"
#include "tokenizer/regex.h"

namespace lmserve::tokenizer {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual void normalize(NormalizedString& s) const = 0;
};

// Builds a normalizer from its JSON object at `path`; unsupported types throw LoadError.
std::unique_ptr<Normalizer> make_normalizer(const Json& j, const std::string& path);

// Compiles HF's pattern object {"String": literal} or {"Regex": pattern} (Replace, Split).
Regex make_pattern(const Json& j, const std::string& path);

}  // namespace lmserve::tokenizer
