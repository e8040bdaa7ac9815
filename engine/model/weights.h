// The weights of a decoder-only transformer, as the backend holds them.
// Shapes use H = hidden_size, Q = num_heads·head_dim, KV = num_kv_heads·head_dim,
// I = intermediate_size, V = vocab_size. Matrices are [out, in] (y = x·Wᵀ); GPT-2's
// Conv1D weights are transposed into that layout at load (its fused c_attn becomes
// three row ranges of one matrix). A pointer is null where the
// family has no such tensor (e.g. biases in Llama).
#pragma once

#include <vector>

#include "kernels/backend.h"

namespace lmserve::engine {

struct LayerWeights {
  const float* attn_norm_weight = nullptr;  // [H]
  const float* attn_norm_bias = nullptr;    // [H] LayerNorm only
  kernels::WeightMatrix q;  // [Q, H]
  kernels::WeightMatrix k;  // [KV, H]
  kernels::WeightMatrix v;  // [KV, H]
  const float* q_bias = nullptr;
  const float* k_bias = nullptr;
  const float* v_bias = nullptr;
  kernels::WeightMatrix o;          // [H, Q]
  const float* o_bias = nullptr;    // [H]
  const float* mlp_norm_weight = nullptr;
  const float* mlp_norm_bias = nullptr;
  // SiLU-gated MLP: gate [I, H], up [I, H]. GPT-2: up = c_fc [I, H], gate empty.
  kernels::WeightMatrix gate;
  kernels::WeightMatrix up;
  const float* up_bias = nullptr;  // GPT-2 c_fc bias [I]
  kernels::WeightMatrix down;      // [H, I]
  const float* down_bias = nullptr;
};

struct ModelWeights {
  kernels::WeightMatrix embed_tokens;  // [V, H]
  kernels::WeightMatrix embed_positions;  // [max_positions, H], GPT-2 only
  std::vector<LayerWeights> layers;
  const float* final_norm_weight = nullptr;
  const float* final_norm_bias = nullptr;
  kernels::WeightMatrix lm_head;  // [V, H]; == embed_tokens when tied

  // What the backend allocated for these weights (views such as GPT-2's q/k/v, which
  // are row ranges of one transposed c_attn matrix, are not listed twice).
  std::vector<kernels::WeightMatrix> owned_matrices;
  std::vector<const float*> owned_vectors;
};

}  // namespace lmserve::engine
