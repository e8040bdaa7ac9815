// libFuzzer target: config.json (+ generation_config.json) parsing. Input: the
// config text, optionally followed by a NUL byte and generation_config.json text.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "engine/model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const char* text = reinterpret_cast<const char*>(data);
  const void* nul = std::memchr(text, '\0', size);
  const size_t config_len = nul ? static_cast<size_t>(static_cast<const char*>(nul) - text) : size;
  const std::string config(text, config_len);
  try {
    lmserve::engine::ModelConfig c;
    if (nul) {
      const std::string generation(text + config_len + 1, size - config_len - 1);
      c = lmserve::engine::parse_model_config(config, "fuzz/config.json", &generation);
    } else {
      c = lmserve::engine::parse_model_config(config, "fuzz/config.json");
    }
    // What the parser promises to the forward pass.
    if (c.hidden_size <= 0 || c.num_layers <= 0 || c.num_heads <= 0 || c.num_kv_heads <= 0 ||
        c.head_dim <= 0 || c.num_heads % c.num_kv_heads != 0 || c.vocab_size <= 0 ||
        c.intermediate_size <= 0 || !(c.norm_eps > 0))
      __builtin_trap();
    if (c.family == lmserve::engine::Family::Llama &&
        c.rope_inv_freq.size() != static_cast<size_t>(c.head_dim / 2))
      __builtin_trap();
  } catch (const std::runtime_error&) {
  }
  return 0;
}
