// GPT-2 (GPT2LMHeadModel) tensor names → ModelWeights.
// Conv1D weights are stored [in, out] and transposed at load; the fused c_attn becomes
// one [3H, H] matrix whose row ranges are q, k and v. lm_head is always wte.
#include "engine/model/families/loader.h"

namespace lmserve::engine::families {

void load_gpt2(const SafetensorsCheckpoint& checkpoint, const ModelConfig& c, WeightLoader& load,
               ModelWeights& out) {
  // GPT2LMHeadModel saves "transformer.h.0..."; a bare GPT2Model (and some hub
  // checkpoints) saves "h.0..." without the prefix.
  load.set_prefix(checkpoint.contains("transformer.wte.weight") || !checkpoint.contains("wte.weight")
                      ? "transformer."
                      : "");
  const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
  out.embed_tokens = load.matrix("wte.weight", {V, H});
  out.embed_positions = load.matrix("wpe.weight", {c.max_position_embeddings, H});
  out.lm_head = out.embed_tokens;

  out.layers.resize(static_cast<size_t>(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = "h." + std::to_string(i) + ".";
    LayerWeights& l = out.layers[static_cast<size_t>(i)];
    l.attn_norm_weight = load.vector(p + "ln_1.weight", H);
    l.attn_norm_bias = load.vector(p + "ln_1.bias", H);

    const kernels::WeightMatrix qkv = load.matrix(p + "attn.c_attn.weight", {H, 3 * H}, true);
    l.q = row_range(qkv, 0, H);
    l.k = row_range(qkv, H, H);
    l.v = row_range(qkv, 2 * H, H);
    const float* qkv_bias = load.vector(p + "attn.c_attn.bias", 3 * H);
    l.q_bias = qkv_bias;
    l.k_bias = qkv_bias + H;
    l.v_bias = qkv_bias + 2 * H;

    l.o = load.matrix(p + "attn.c_proj.weight", {H, H}, true);
    l.o_bias = load.vector(p + "attn.c_proj.bias", H);
    l.mlp_norm_weight = load.vector(p + "ln_2.weight", H);
    l.mlp_norm_bias = load.vector(p + "ln_2.bias", H);
    l.up = load.matrix(p + "mlp.c_fc.weight", {H, I}, true);
    l.up_bias = load.vector(p + "mlp.c_fc.bias", I);
    l.down = load.matrix(p + "mlp.c_proj.weight", {I, H}, true);
    l.down_bias = load.vector(p + "mlp.c_proj.bias", H);
  }
  out.final_norm_weight = load.vector("ln_f.weight", H);
  out.final_norm_bias = load.vector("ln_f.bias", H);
}

}  // namespace lmserve::engine::families
