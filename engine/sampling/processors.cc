// The logits processors that run before temperature: logit_bias, the repetition penalty
// (Hugging Face), presence/frequency penalties (OpenAI), min_tokens masking and the
// no-repeat-n-gram ban. Each edits one row in place and ignores token ids outside it,
// so a bad id in a history can never write out of bounds.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/sampling/sampler.h"

namespace lmserve::engine {
namespace {

constexpr float kMasked = -std::numeric_limits<float>::infinity();

bool in_row(std::span<float> logits, int32_t id) {
  return id >= 0 && static_cast<size_t>(id) < logits.size();
}

// HF RepetitionPenaltyLogitsProcessor: every distinct token seen once, whatever its count.
void apply_repetition_penalty(std::span<float> logits, float penalty, const TokenHistory& h) {
  std::vector<int32_t> seen(h.prompt.begin(), h.prompt.end());
  seen.insert(seen.end(), h.output.begin(), h.output.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int32_t id : seen) {
    if (!in_row(logits, id)) continue;
    float& x = logits[id];
    x = x < 0.0f ? x * penalty : x / penalty;
  }
}

// OpenAI: logit -= presence · [count > 0] + frequency · count, over output tokens only.
void apply_presence_frequency(std::span<float> logits, float presence, float frequency,
                              std::span<const int32_t> output) {
  std::vector<int32_t> sorted(output.begin(), output.end());
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size();) {
    size_t j = i;
    while (j < sorted.size() && sorted[j] == sorted[i]) ++j;
    if (in_row(logits, sorted[i])) {
      logits[sorted[i]] -= presence + frequency * static_cast<float>(j - i);
    }
    i = j;
  }
}

// HF NoRepeatNGramLogitsProcessor over prompt + output: a token that would complete an
// n-gram already present in the sequence is banned.
void apply_no_repeat_ngram(std::span<float> logits, int n, const TokenHistory& h) {
  const size_t len = h.prompt.size() + h.output.size();
  if (len + 1 < static_cast<size_t>(n)) return;
  auto at = [&](size_t i) { return i < h.prompt.size() ? h.prompt[i] : h.output[i - h.prompt.size()]; };
  const size_t prefix_len = static_cast<size_t>(n) - 1;
  const size_t prefix_start = len - prefix_len;
  for (size_t start = 0; start + prefix_len < len; ++start) {
    bool match = true;
    for (size_t k = 0; k < prefix_len && match; ++k) match = at(start + k) == at(prefix_start + k);
    if (match) {
      int32_t banned = at(start + prefix_len);
      if (in_row(logits, banned)) logits[banned] = kMasked;
    }
  }
}

}  // namespace

void apply_logits_processors(std::span<float> logits, const SamplingParams& params,
                             const TokenHistory& history, std::span<const int32_t> eos_ids) {
  for (const auto& [id, bias] : params.logit_bias) {
    if (in_row(logits, id)) logits[id] += bias;
  }
  if (params.repetition_penalty != 1.0f) {
    apply_repetition_penalty(logits, params.repetition_penalty, history);
  }
  if (params.presence_penalty != 0.0f || params.frequency_penalty != 0.0f) {
    apply_presence_frequency(logits, params.presence_penalty, params.frequency_penalty,
                             history.output);
  }
  if (static_cast<int64_t>(history.output.size()) < params.min_tokens) {
    for (int32_t id : eos_ids) {
      if (in_row(logits, id)) logits[id] = kMasked;
    }
    for (int32_t id : params.stop_token_ids) {
      if (in_row(logits, id)) logits[id] = kMasked;
    }
  }
  if (params.no_repeat_ngram_size > 0) {
    apply_no_repeat_ngram(logits, params.no_repeat_ngram_size, history);
  }
}

}  // namespace lmserve::engine
