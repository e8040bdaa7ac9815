// Turning a checkpoint into ModelWeights on a backend: one file per family maps the
// Hugging Face tensor names (gpt2.cc, llama.cc); this header is what the rest of the
// engine calls.
#pragma once

#include <cstdint>

#include "engine/model/config.h"
#include "engine/model/safetensors.h"
#include "engine/model/weights.h"
#include "kernels/backend.h"

namespace lmserve::engine {

// Loads every tensor the family needs, checking presence and shape first; matrices are
// held in `matrix_dtype` (normally the checkpoint's stored dtype), vectors in float32.
// Throws std::runtime_error("<file>: ... tensor <name> ...") on a missing or misshaped
// tensor; whatever was already loaded is released before the throw.
ModelWeights load_model_weights(const SafetensorsCheckpoint& checkpoint, const ModelConfig& config,
                                kernels::Backend& backend, kernels::DType matrix_dtype);

// The same checks (every tensor present with its shape) without loading anything:
// `lmserve info` validates a folder this way. Throws as load_model_weights does.
void check_model_weights(const SafetensorsCheckpoint& checkpoint, const ModelConfig& config);

// Releases owned_matrices / owned_vectors and clears `weights`.
void release_model_weights(ModelWeights& weights, kernels::Backend& backend);

// Parameter counts from the config alone (what the family's loader would load; a tied
// lm_head counts once). Matrices include the embedding tables.
struct ParameterCount {
  int64_t matrix_elements = 0;
  int64_t vector_elements = 0;
  int64_t total() const { return matrix_elements + vector_elements; }
  // Bytes the backend holds: matrices in `matrix_dtype`, vectors in float32.
  int64_t weight_bytes(kernels::DType matrix_dtype) const {
    return matrix_elements * static_cast<int64_t>(kernels::dtype_size(matrix_dtype)) +
           vector_elements * 4;
  }
};
ParameterCount count_parameters(const ModelConfig& config);

// Bytes one token's keys and values take in the cache, all layers.
inline int64_t kv_bytes_per_token(const ModelConfig& config, size_t element_bytes) {
  return 2LL * config.num_layers * config.kv_dim() * static_cast<int64_t>(element_bytes);
}

}  // namespace lmserve::engine
