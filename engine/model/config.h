// ModelConfig: everything the forward pass needs to know about an architecture, read
// from a Hugging Face config.json (+ generation_config.json when present).
//
// Families differ only by configuration here (norm kind, activation, positions, biases);
// the tensor-name mapping of each family lives in engine/model/families/.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace lmserve::engine {

enum class Family { Gpt2, Llama };  // Llama covers llama, mistral, qwen2
enum class Activation { GeluNew, Silu };

// Defaults from generation_config.json; a request's own parameters override them.
struct GenerationDefaults {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> repetition_penalty;
  std::optional<int> max_new_tokens;
};

struct ModelConfig {
  std::string model_type;  // as written in config.json: gpt2, llama, mistral, qwen2
  Family family = Family::Llama;
  int vocab_size = 0;
  int hidden_size = 0;
  int num_layers = 0;
  int num_heads = 0;
  int num_kv_heads = 0;  // == num_heads unless GQA/MQA
  int head_dim = 0;      // hidden_size / num_heads unless config.json says otherwise
  int intermediate_size = 0;
  int max_position_embeddings = 0;
  float norm_eps = 1e-5f;
  kernels::NormKind norm = kernels::NormKind::RmsNorm;
  Activation activation = Activation::Silu;
  bool learned_positions = false;  // GPT-2's wpe; otherwise RoPE
  float rope_theta = 10000.0f;
  // RoPE inverse frequencies [head_dim/2], rope_scaling already applied (llama3,
  // linear). Computed in float32 the way transformers computes them.
  std::vector<float> rope_inv_freq;
  bool tie_word_embeddings = false;
  bool qkv_bias = false;   // GPT-2 and qwen2: true; llama: attention_bias
  bool o_bias = false;     // GPT-2 and llama's attention_bias
  bool mlp_bias = false;
  std::optional<int> sliding_window;  // mistral; max_model_len is capped to it
  std::optional<int> bos_token_id;
  std::vector<int> eos_token_ids;  // config.json and generation_config.json merged
  std::optional<int> pad_token_id;
  kernels::DType torch_dtype = kernels::DType::F32;
  GenerationDefaults generation;

  int kv_dim() const { return num_kv_heads * head_dim; }
  int q_dim() const { return num_heads * head_dim; }
};

// Parses <dir>/config.json and, when present, <dir>/generation_config.json.
// Throws std::runtime_error with a one-line message naming the file and the key
// (missing key, wrong type, unknown model_type, unsupported rope_scaling, ...).
ModelConfig load_model_config(const std::string& dir);
// The same from JSON text (fuzzing and tests). `source` names the file in errors.
ModelConfig parse_model_config(const std::string& config_json, const std::string& source,
                               const std::string* generation_config_json = nullptr);

}  // namespace lmserve::engine
