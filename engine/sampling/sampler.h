// Turning one row of logits into the next token of one sequence.
//
// The pipeline, applied to a float32 copy of the row: logit_bias → repetition penalty
// (HF: over prompt and output tokens; logit > 0 ? logit / p : logit · p) → presence and
// frequency penalties (OpenAI: over output tokens) → min_tokens (EOS/stop ids masked) →
// no_repeat_ngram (beam search) → temperature → top-k → top-p → min-p → typical-p →
// softmax → draw. temperature == 0 is greedy: argmax of the processed logits (ties: the
// lowest id).
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "engine/request.h"
#include "engine/sampling/params.h"

namespace lmserve::engine {

// Per-sequence random stream. Seeded requests derive it from (seed, sequence index) only,
// so a seeded request gives the same tokens whatever else is in the batch or whatever
// the thread count; unseeded ones draw their seed from std::random_device.
class SequenceRng {
 public:
  SequenceRng(std::optional<uint64_t> seed, int sequence_index);
  // Uniform in [0, 1).
  double uniform();

 private:
  std::mt19937_64 engine_;
};

// What the processors need to know about a sequence's history.
struct TokenHistory {
  std::span<const int32_t> prompt;
  std::span<const int32_t> output;
};

// Applies everything before temperature (bias, penalties, min_tokens masking of
// `eos_ids`) in place.
void apply_logits_processors(std::span<float> logits, const SamplingParams& params,
                             const TokenHistory& history, std::span<const int32_t> eos_ids);

// The filtered distribution after temperature, top-k, top-p, min-p, typical-p:
// kept token ids with their probabilities, most probable first. Requires temperature > 0.
struct SparseDistribution {
  std::vector<int32_t> ids;
  std::vector<float> probs;
};
SparseDistribution filtered_distribution(std::span<const float> processed_logits,
                                         const SamplingParams& params);

// Draws from a distribution with one uniform number (inverse CDF over `ids` order).
int32_t draw(const SparseDistribution& dist, double uniform);

// Log-softmax helpers over one row, in float32 with a float64 log-sum-exp for accuracy.
float log_sum_exp(std::span<const float> logits);
// The K most likely tokens with their log-probs, most likely first; ties by lower id.
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k, float lse);

// One decision for a sequence: the chosen token, its log-prob (always filled, so callers
// can keep a cumulative log-prob) and the top K when params.logprobs > 0. Log-probs are
// log_softmax of the raw logits unless params.processed_logprobs (then: of the
// distribution actually sampled from, after penalties, temperature and filters).
// `raw` is not modified; `scratch` is a work buffer of the same size. `eos_ids` are
// masked (with params.stop_token_ids) until params.min_tokens tokens were generated.
GeneratedToken sample_next_token(std::span<const float> raw, std::span<float> scratch,
                                 const SamplingParams& params, const TokenHistory& history,
                                 std::span<const int32_t> eos_ids, SequenceRng& rng);

}  // namespace lmserve::engine
