// validate_sampling_params: the one place that rejects contradictory or out-of-range
// decoding parameters, each error naming the parameter at fault.
#include "engine/sampling/params.h"

#include <cmath>
#include <sstream>

namespace lmserve::engine {
namespace {

// Parameters the OpenAI API bounds at 20 alternatives per position.
constexpr int kMaxLogprobs = 20;
// Far above any real use; stops a typo from reserving millions of sequences.
constexpr int kMaxN = 65536;

template <typename... Parts>
[[noreturn]] void fail(const std::string& param, const Parts&... parts) {
  std::ostringstream message;
  (message << ... << parts);
  throw InvalidParameter(param, message.str());
}

void require_finite(const std::string& param, float value) {
  if (!std::isfinite(value)) fail(param, param, " must be a finite number, got ", value);
}

void check_token_id(const std::string& param, int32_t id, int vocab_size) {
  if (id < 0 || id >= vocab_size) {
    fail(param, param, " holds token id ", id, ", outside the vocabulary [0, ", vocab_size, ")");
  }
}

}  // namespace

void validate_sampling_params(const SamplingParams& p, int prompt_len, int max_model_len,
                              int vocab_size) {
  require_finite("temperature", p.temperature);
  if (p.temperature < 0.0f) fail("temperature", "temperature must be >= 0, got ", p.temperature);
  if (p.top_k < 0) fail("top_k", "top_k must be >= 0 (0 = off), got ", p.top_k);
  require_finite("top_p", p.top_p);
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) fail("top_p", "top_p must be in (0, 1], got ", p.top_p);
  require_finite("min_p", p.min_p);
  if (!(p.min_p >= 0.0f && p.min_p <= 1.0f)) fail("min_p", "min_p must be in [0, 1], got ", p.min_p);
  require_finite("typical_p", p.typical_p);
  if (!(p.typical_p > 0.0f && p.typical_p <= 1.0f)) {
    fail("typical_p", "typical_p must be in (0, 1], got ", p.typical_p);
  }
  require_finite("repetition_penalty", p.repetition_penalty);
  if (p.repetition_penalty <= 0.0f) {
    fail("repetition_penalty", "repetition_penalty must be > 0, got ", p.repetition_penalty);
  }
  require_finite("presence_penalty", p.presence_penalty);
  if (p.presence_penalty < -2.0f || p.presence_penalty > 2.0f) {
    fail("presence_penalty", "presence_penalty must be in [-2, 2], got ", p.presence_penalty);
  }
  require_finite("frequency_penalty", p.frequency_penalty);
  if (p.frequency_penalty < -2.0f || p.frequency_penalty > 2.0f) {
    fail("frequency_penalty", "frequency_penalty must be in [-2, 2], got ", p.frequency_penalty);
  }
  for (const auto& [id, bias] : p.logit_bias) {
    check_token_id("logit_bias", id, vocab_size);
    if (!std::isfinite(bias)) fail("logit_bias", "logit_bias for token ", id, " must be finite");
  }

  if (p.n < 1) fail("n", "n must be >= 1, got ", p.n);
  if (p.n > kMaxN) fail("n", "n must be <= ", kMaxN, ", got ", p.n);

  if (p.num_beams < 1) fail("num_beams", "num_beams must be >= 1, got ", p.num_beams);
  if (p.num_beams > 1 && !p.use_beam_search) {
    fail("num_beams", "num_beams is ", p.num_beams, " but beam search is not enabled");
  }
  require_finite("length_penalty", p.length_penalty);
  if (p.no_repeat_ngram_size < 0) {
    fail("no_repeat_ngram_size", "no_repeat_ngram_size must be >= 0, got ", p.no_repeat_ngram_size);
  }
  if (p.use_beam_search) {
    if (p.temperature > 0.0f) {
      fail("temperature", "beam search cannot be combined with sampling (temperature ",
           p.temperature, " > 0)");
    }
    if (p.n > p.num_beams) {
      fail("n", "num_return_sequences (n = ", p.n, ") must be <= num_beams (", p.num_beams, ")");
    }
  }

  if (p.logprobs < -1 || p.logprobs > kMaxLogprobs) {
    fail("logprobs", "logprobs must be in 0..", kMaxLogprobs, " (or unset), got ", p.logprobs);
  }
  if (p.prompt_logprobs < -1 || p.prompt_logprobs > kMaxLogprobs) {
    fail("prompt_logprobs", "prompt_logprobs must be in 0..", kMaxLogprobs, " (or unset), got ",
         p.prompt_logprobs);
  }

  if (p.max_tokens < 0) fail("max_tokens", "max_tokens must be >= 0, got ", p.max_tokens);
  if (p.min_tokens < 0) fail("min_tokens", "min_tokens must be >= 0, got ", p.min_tokens);
  if (p.min_tokens > p.max_tokens) {
    fail("min_tokens", "min_tokens (", p.min_tokens, ") must be <= max_tokens (", p.max_tokens,
         ")");
  }
  for (int32_t id : p.stop_token_ids) check_token_id("stop_token_ids", id, vocab_size);
  if (p.eos_token_ids) {
    for (int32_t id : *p.eos_token_ids) check_token_id("eos_token_ids", id, vocab_size);
  }

  if (prompt_len < 1) fail("prompt", "prompt must hold at least one token");
  if (prompt_len > max_model_len) {
    fail("prompt", "prompt has ", prompt_len, " tokens, more than the context length ",
         max_model_len);
  }
  if (static_cast<int64_t>(prompt_len) + p.max_tokens > max_model_len) {
    fail("max_tokens", "prompt (", prompt_len, " tokens) + max_tokens (", p.max_tokens,
         ") exceeds the context length ", max_model_len);
  }
}

}  // namespace lmserve::engine
