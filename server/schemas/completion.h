// The /v1/completions request: OpenAI's fields plus vLLM's extensions, parsed and
// validated into engine terms (engine::SamplingParams, token ids). Everything that can
// be rejected is rejected here, before the engine sees the request.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "engine/model/config.h"
#include "engine/sampling/params.h"
#include "server/text.h"

namespace lmserve::server {

struct CompletionPrompt {
  std::vector<int32_t> ids;
  std::string text;  // as given, or decoded from the ids (for echo)
};

struct CompletionRequest {
  std::vector<CompletionPrompt> prompts;
  engine::SamplingParams params;  // params.n = sequences the engine generates per prompt
  int n = 1;                      // choices returned per prompt
  int best_of = 1;                // sequences generated per prompt (>= n)
  bool stream = false;
  bool include_usage = false;
  bool echo = false;
  std::optional<int> logprobs;  // legacy logprobs: top-K per token
  bool score_only = false;      // echo + max_tokens 0: score the prompt, generate nothing
  TextCodec::StreamOptions text;
  bool add_special_tokens = true;
};

struct CompletionLimits {
  int max_model_len = 0;
  int vocab_size = 0;
  const engine::ModelConfig* model = nullptr;  // generation_config.json defaults
};

// Throws ApiError (400) naming the field; engine::InvalidParameter from the engine's own
// validation is rethrown as is (the router maps it to 400).
CompletionRequest parse_completion_request(const nlohmann::json& body, const TextCodec& text,
                                           const CompletionLimits& limits);

}  // namespace lmserve::server
