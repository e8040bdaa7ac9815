// Llama-family (llama, mistral, qwen2) tensor names → ModelWeights. Linear weights are
// stored [out, in] already; biases exist where the config says so.
#include <stdexcept>

#include "engine/model/families/loader.h"

namespace lmserve::engine::families {

void load_llama(const SafetensorsCheckpoint& checkpoint, const ModelConfig& c, WeightLoader& load,
                ModelWeights& out) {
  if (c.mlp_bias) {
    // LayerWeights has no gate bias, so such a model cannot be run exactly.
    throw std::runtime_error(c.model_type + " config: mlp_bias true is not supported");
  }
  // LlamaForCausalLM saves "model.layers.0..."; a bare LlamaModel saves "layers.0...".
  const bool prefixed =
      checkpoint.contains("model.embed_tokens.weight") || !checkpoint.contains("embed_tokens.weight");
  load.set_prefix(prefixed ? "model." : "");
  const int64_t H = c.hidden_size, V = c.vocab_size, I = c.intermediate_size;
  const int64_t Q = c.q_dim(), KV = c.kv_dim();
  out.embed_tokens = load.matrix("embed_tokens.weight", {V, H});

  out.layers.resize(static_cast<size_t>(c.num_layers));
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string p = "layers." + std::to_string(i) + ".";
    LayerWeights& l = out.layers[static_cast<size_t>(i)];
    l.attn_norm_weight = load.vector(p + "input_layernorm.weight", H);
    l.q = load.matrix(p + "self_attn.q_proj.weight", {Q, H});
    l.k = load.matrix(p + "self_attn.k_proj.weight", {KV, H});
    l.v = load.matrix(p + "self_attn.v_proj.weight", {KV, H});
    if (c.qkv_bias) {
      l.q_bias = load.vector(p + "self_attn.q_proj.bias", Q);
      l.k_bias = load.vector(p + "self_attn.k_proj.bias", KV);
      l.v_bias = load.vector(p + "self_attn.v_proj.bias", KV);
    }
    l.o = load.matrix(p + "self_attn.o_proj.weight", {H, Q});
    if (c.o_bias) l.o_bias = load.vector(p + "self_attn.o_proj.bias", H);
    l.mlp_norm_weight = load.vector(p + "post_attention_layernorm.weight", H);
    l.gate = load.matrix(p + "mlp.gate_proj.weight", {I, H});
    l.up = load.matrix(p + "mlp.up_proj.weight", {I, H});
    l.down = load.matrix(p + "mlp.down_proj.weight", {H, I});
  }
  out.final_norm_weight = load.vector("norm.weight", H);

  if (c.tie_word_embeddings) {
    out.lm_head = out.embed_tokens;  // owned once, as embed_tokens
  } else {
    load.set_prefix("");  // lm_head sits outside the base model in every layout
    out.lm_head = load.matrix("lm_head.weight", {V, H});
  }
}

}  // namespace lmserve::engine::families
