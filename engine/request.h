// The messages that cross the engine boundary: one Request in, a stream of
// RequestOutput out (vLLM's EngineCoreRequest / EngineCoreOutput shape). Token ids
// only: text, stop strings and response formatting belong to the callers.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/sampling/params.h"

namespace lmserve::engine {

using Clock = std::chrono::steady_clock;

enum class RequestKind : uint8_t {
  Generate,  // decode new tokens (greedy, sampling or beam search)
  Score,     // log-probabilities of the prompt's tokens (perplexity), nothing generated
  Embed,     // pooled final hidden states of the prompt
};

enum class Pooling : uint8_t { Mean, Last };

struct ScoreOptions {
  int top_logprobs = 0;  // alternatives per position, 0..20
  // Sliding window for texts longer than the context: each token is scored once with
  // up to window - stride tokens of context. 0 = the model's max length.
  int window = 0;
  int stride = 0;  // 0 = window / 2
};

struct EmbedOptions {
  Pooling pooling = Pooling::Mean;
  bool normalize = true;
};

enum class FinishReason : uint8_t { None, Length, Stop, Abort };
const char* finish_reason_name(FinishReason r);  // "length", "stop", "abort"; None → ""

struct TokenLogprob {
  int32_t id = 0;
  float logprob = 0.0f;
};

struct GeneratedToken {
  int32_t id = 0;
  float logprob = 0.0f;           // filled when logprobs >= 0
  std::vector<TokenLogprob> top;  // top K alternatives, most likely first
};

// New tokens of one returned sequence since the previous output.
struct SequenceOutput {
  int index = 0;  // 0..n-1; for beam search the rank, best first
  std::vector<GeneratedToken> new_tokens;
  FinishReason finish_reason = FinishReason::None;
  // The matched stop token when a stop_token_ids entry or EOS ended it.
  std::optional<int32_t> stop_token;
  float cumulative_logprob = 0.0f;
  std::optional<float> beam_score;  // beam search: sum_logprobs / len ** length_penalty
};

// Prompt scoring results (RequestKind::Score, or prompt_logprobs on Generate).
struct PromptLogprobs {
  // Entry i is log p(prompt[i] | prompt[<i]); entry 0 is empty (no context).
  std::vector<std::optional<float>> token_logprobs;
  std::vector<std::vector<TokenLogprob>> top;  // per position; empty at 0
};

struct RequestTiming {
  Clock::time_point arrival{};
  Clock::time_point first_scheduled{};
  Clock::time_point first_token{};
  Clock::time_point finished{};
};

struct RequestOutput {
  std::string request_id;
  std::vector<SequenceOutput> sequences;  // only the sequences with news
  std::optional<PromptLogprobs> prompt_logprobs;  // sent once
  std::vector<float> embedding;                   // Embed: sent once with finished
  bool finished = false;
  std::optional<std::string> error;  // set with finished when the engine could not serve it
  int num_prompt_tokens = 0;
  int num_generated_tokens = 0;  // total over all sequences so far
  RequestTiming timing;
};

struct Request {
  std::string id;
  RequestKind kind = RequestKind::Generate;
  std::vector<int32_t> prompt;
  SamplingParams params;
  ScoreOptions score;
  EmbedOptions embed;
  // Stream outputs per step (true) or only one final output (false).
  bool stream = true;
  // Called on the engine thread; must be quick and must not call back into the engine
  // except through thread-safe Engine methods (abort, stop_sequence).
  std::function<void(RequestOutput&&)> on_output;
};

}  // namespace lmserve::engine
