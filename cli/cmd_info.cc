// `lmserve info --model DIR [--json]`: what a model folder holds — architecture,
// parameter count, dtype, weight memory and KV cache bytes per token — after checking
// the config and that every tensor is present with its shape (no weights are loaded).
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "engine/model/config.h"
#include "engine/model/families/family.h"
#include "engine/model/safetensors.h"

namespace lmserve::cli {
namespace {

struct InfoOptions {
  std::string model;
  bool json = false;
};

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.2f %s", bytes, units[u]);
  return buf;
}

const char* family_summary(const engine::ModelConfig& c) {
  return c.family == engine::Family::Gpt2 ? "GPT-2: LayerNorm, gelu_new MLP, learned positions"
                                          : "Llama family: RMSNorm, SiLU-gated MLP, RoPE";
}

void run_info(const InfoOptions& o) {
  const engine::ModelConfig c = engine::load_model_config(o.model);
  const engine::SafetensorsCheckpoint ckpt = engine::SafetensorsCheckpoint::open(o.model);
  engine::check_model_weights(ckpt, c);
  const engine::ParameterCount params = engine::count_parameters(c);
  const kernels::DType dtype = ckpt.dominant_dtype();
  const int64_t weight_bytes = params.weight_bytes(dtype);
  const int64_t kv_f32 = engine::kv_bytes_per_token(c, 4);
  const int64_t kv_f16 = engine::kv_bytes_per_token(c, 2);

  if (o.json) {
    nlohmann::json out = {{"model", o.model},
                          {"model_type", c.model_type},
                          {"family", c.family == engine::Family::Gpt2 ? "gpt2" : "llama"},
                          {"num_layers", c.num_layers},
                          {"hidden_size", c.hidden_size},
                          {"num_heads", c.num_heads},
                          {"num_kv_heads", c.num_kv_heads},
                          {"head_dim", c.head_dim},
                          {"intermediate_size", c.intermediate_size},
                          {"vocab_size", c.vocab_size},
                          {"max_position_embeddings", c.max_position_embeddings},
                          {"tie_word_embeddings", c.tie_word_embeddings},
                          {"sliding_window", c.sliding_window ? nlohmann::json(*c.sliding_window) : nullptr},
                          {"bos_token_id", c.bos_token_id ? nlohmann::json(*c.bos_token_id) : nullptr},
                          {"eos_token_ids", c.eos_token_ids},
                          {"parameters", params.total()},
                          {"dtype", kernels::dtype_name(dtype)},
                          {"checkpoint_bytes", ckpt.total_bytes()},
                          {"weight_bytes", weight_bytes},
                          {"kv_bytes_per_token", kv_f32},
                          {"kv_bytes_per_token_f16", kv_f16}};
    if (c.family == engine::Family::Llama) out["rope_theta"] = c.rope_theta;
    std::printf("%s\n", out.dump().c_str());
    return;
  }
  std::printf("model:             %s\n", o.model.c_str());
  std::printf("architecture:      %s (%s)\n", c.model_type.c_str(), family_summary(c));
  std::printf("layers:            %d\n", c.num_layers);
  std::printf("hidden size:       %d\n", c.hidden_size);
  std::printf("attention heads:   %d (%d KV heads, head_dim %d)\n", c.num_heads, c.num_kv_heads, c.head_dim);
  std::printf("intermediate size: %d\n", c.intermediate_size);
  std::printf("vocab size:        %d\n", c.vocab_size);
  std::printf("max positions:     %d%s\n", c.max_position_embeddings,
              c.sliding_window ? (" (sliding window " + std::to_string(*c.sliding_window) + ")").c_str() : "");
  std::printf("tied embeddings:   %s\n", c.tie_word_embeddings ? "yes" : "no");
  std::printf("parameters:        %lld (%.2f M)\n", static_cast<long long>(params.total()), params.total() / 1e6);
  std::printf("weights dtype:     %s (checkpoint tensors: %s)\n", kernels::dtype_name(dtype),
              human_bytes(static_cast<double>(ckpt.total_bytes())).c_str());
  std::printf("weight memory:     %s (matrices %s, norms and biases F32)\n",
              human_bytes(static_cast<double>(weight_bytes)).c_str(), kernels::dtype_name(dtype));
  std::printf("KV cache:          %lld bytes/token in f32, %lld in f16\n", static_cast<long long>(kv_f32),
              static_cast<long long>(kv_f16));
}

void register_info(CLI::App& app) {
  auto options = std::make_shared<InfoOptions>();
  CLI::App* cmd = app.add_subcommand("info", "Describe a model folder: architecture, parameters, dtype, memory");
  cmd->add_option("--model", options->model, "Hugging Face model folder")->required();
  cmd->add_flag("--json", options->json, "Print one JSON object");
  cmd->callback([options] { run_info(*options); });
}

LMSERVE_COMMAND(register_info);

}  // namespace
}  // namespace lmserve::cli
