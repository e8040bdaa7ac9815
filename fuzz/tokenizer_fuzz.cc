// libFuzzer target: encode and decode arbitrary input with each fixture tokenizer. Errors
// (invalid UTF-8, unknown ids) must be exceptions, never crashes; streaming decode of an
// encoding must equal its full decode.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

using lmserve::tokenizer::IncrementalDetokenizer;
using lmserve::tokenizer::Tokenizer;

const std::vector<std::shared_ptr<const Tokenizer>>& fixtures() {
  static const auto all = [] {
    std::vector<std::shared_ptr<const Tokenizer>> v;
    for (const char* name : {"gpt2", "qwen3", "mistral7b", "spm_bpe_small"}) {
      v.push_back(Tokenizer::from_dir(std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/" + name));
    }
    return v;
  }();
  return all;
}

void check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& tokenizers = fixtures();
  const uint8_t control = data[0];
  const Tokenizer& tok = *tokenizers[control % tokenizers.size()];
  const auto shared = tokenizers[control % tokenizers.size()];
  const std::string raw(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool add_special = control & 4;

  // Mostly feed valid UTF-8 (repairing the bytes) so the whole pipeline runs.
  std::string text;
  if (control & 8) text = raw;
  else lmserve::tokenizer::unicode::append_lossy(text, raw);

  try {
    const auto e = tok.encode(text, add_special);
    check(e.ids.size() == e.tokens.size() && e.ids.size() == e.offsets.size());
    for (const auto& [b, end] : e.offsets) check(b <= end && end <= text.size());
    const std::string decoded = tok.decode(e.ids, false);
    check(!lmserve::tokenizer::unicode::first_invalid_byte(decoded));
    IncrementalDetokenizer detok(shared, false);
    std::string streamed;
    for (const int32_t id : e.ids) {
      const std::string piece = detok.push(id);
      check(!lmserve::tokenizer::unicode::first_invalid_byte(piece));
      streamed += piece;
    }
    streamed += detok.flush();
    check(streamed == decoded);
  } catch (const std::runtime_error&) {
    check(control & 8);  // only raw (possibly invalid) bytes may be rejected
  }

  // The same bytes read as token ids (some out of the vocabulary).
  std::vector<int32_t> ids;
  for (size_t i = 1; i + 1 < size; i += 2) {
    ids.push_back(static_cast<int32_t>((data[i] | (data[i + 1] << 8)) * 3 % (tok.vocab_size() + 16)) - 8);
  }
  try {
    const std::string decoded = tok.decode(ids, control & 16);
    check(!lmserve::tokenizer::unicode::first_invalid_byte(decoded));
    IncrementalDetokenizer detok(shared, control & 16, std::span<const int32_t>(ids).first(ids.size() / 3));
    for (size_t i = ids.size() / 3; i < ids.size(); ++i) detok.push(ids[i]);
    detok.flush();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
