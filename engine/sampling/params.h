// SamplingParams: every per-request decoding parameter, validated in one place
// (validate_sampling_params), whose errors the server turns into HTTP 400 and the CLI
// into a one-line message. Text-level options (stop strings) live in engine/text.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace lmserve::engine {

struct ModelConfig;

struct SamplingParams {
  // How many sequences to return. With beam search: num_return_sequences (<= num_beams).
  int n = 1;
  // Sampling: temperature 0 means greedy (argmax; filters and seed are then unused).
  // Filters apply in this order: temperature, top-k, top-p, min-p (typical-p after
  // min-p); at least one token always survives.
  float temperature = 0.0f;
  int top_k = 0;  // 0 = off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float typical_p = 1.0f;
  float repetition_penalty = 1.0f;  // HF: over prompt and output tokens
  float presence_penalty = 0.0f;    // OpenAI: over output tokens
  float frequency_penalty = 0.0f;   // OpenAI: over output tokens
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;

  // Beam search (Hugging Face generate() semantics), in the engine. num_beams > 1
  // requires use_beam_search; max_tokens/min_tokens are max_new_tokens/min_new_tokens.
  bool use_beam_search = false;
  int num_beams = 1;
  float length_penalty = 1.0f;
  bool early_stopping = false;
  int no_repeat_ngram_size = 0;

  // Stopping.
  int max_tokens = 16;
  int min_tokens = 0;
  bool ignore_eos = false;
  std::vector<int32_t> stop_token_ids;
  // EOS ids; empty means the model's (config.json + generation_config.json).
  std::optional<std::vector<int32_t>> eos_token_ids;

  // Log-probabilities of generated tokens: -1 = none, K in 0..20 = the sampled token's
  // plus the top K. By default computed from the unmodified model logits
  // (log_softmax); processed_logprobs = after temperature/penalties/filters.
  int logprobs = -1;
  bool processed_logprobs = false;
  // Prompt log-probabilities: -1 = none, K = each prompt token's plus the top K.
  int prompt_logprobs = -1;
};

class InvalidParameter : public std::invalid_argument {
 public:
  InvalidParameter(std::string param, const std::string& message)
      : std::invalid_argument(message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// Throws InvalidParameter naming the parameter ("temperature must be >= 0, got -1").
// prompt_len is checked against the context: prompt_len + max_tokens <= max_model_len.
void validate_sampling_params(const SamplingParams& params, int prompt_len, int max_model_len,
                              int vocab_size);

}  // namespace lmserve::engine
