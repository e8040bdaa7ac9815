// libFuzzer target: safetensors header validation. The input is laid out like a
// .safetensors file (8-byte little-endian length, then header text); the data-section
// size is what follows the header, so offsets both inside and outside it get exercised.
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>

#include "engine/model/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  uint64_t declared = 0;
  for (int i = 7; i >= 0; --i) declared = (declared << 8) | data[i];
  const size_t header_len = static_cast<size_t>(declared % (size - 8 + 1));
  const std::string header(reinterpret_cast<const char*>(data) + 8, header_len);
  const size_t data_size = size - 8 - header_len;
  try {
    std::map<std::string, std::string> unsupported;
    const auto tensors = lmserve::engine::parse_safetensors_header(header, data_size, "fuzz", &unsupported);
    for (const auto& [name, info] : tensors) {
      // What the parser promises: ranges inside the data section, size = shape·dtype.
      if (info.end > data_size || info.begin > info.end) __builtin_trap();
      size_t bytes = lmserve::kernels::dtype_size(info.dtype);
      for (int64_t d : info.shape) bytes *= static_cast<size_t>(d);
      if (bytes != info.end - info.begin) __builtin_trap();
    }
  } catch (const std::runtime_error&) {
  }
  return 0;
}
