// Family dispatch, release, and the config-only parameter count.
#include "engine/model/families/family.h"

#include "engine/model/families/loader.h"

namespace lmserve::engine {

ModelWeights load_model_weights(const SafetensorsCheckpoint& checkpoint, const ModelConfig& config,
                                kernels::Backend& backend, kernels::DType matrix_dtype) {
  ModelWeights weights;
  families::WeightLoader loader(checkpoint, backend, matrix_dtype, weights);
  try {
    switch (config.family) {
      case Family::Gpt2: families::load_gpt2(checkpoint, config, loader, weights); break;
      case Family::Llama: families::load_llama(checkpoint, config, loader, weights); break;
    }
  } catch (...) {
    release_model_weights(weights, backend);
    throw;
  }
  return weights;
}

void release_model_weights(ModelWeights& weights, kernels::Backend& backend) {
  for (const kernels::WeightMatrix& m : weights.owned_matrices) backend.release_weight(m);
  for (const float* v : weights.owned_vectors) backend.release(const_cast<float*>(v));
  weights = ModelWeights{};
}

ParameterCount count_parameters(const ModelConfig& c) {
  const int64_t H = c.hidden_size, V = c.vocab_size, L = c.num_layers, I = c.intermediate_size;
  const int64_t Q = c.q_dim(), KV = c.kv_dim();
  ParameterCount p;
  if (c.family == Family::Gpt2) {
    p.matrix_elements = V * H + int64_t{c.max_position_embeddings} * H +
                        L * (3 * H * H + H * H + 2 * H * I);
    p.vector_elements = L * (2 * H + 3 * H + H + 2 * H + I + H) + 2 * H;
    return p;
  }
  p.matrix_elements = V * H * (c.tie_word_embeddings ? 1 : 2) +
                      L * (Q * H + 2 * KV * H + H * Q + 3 * I * H);
  int64_t per_layer_vectors = 2 * H;
  if (c.qkv_bias) per_layer_vectors += Q + 2 * KV;
  if (c.o_bias) per_layer_vectors += H;
  if (c.mlp_bias) per_layer_vectors += 2 * I + H;
  p.vector_elements = L * per_layer_vectors + H;
  return p;
}

}  // namespace lmserve::engine
