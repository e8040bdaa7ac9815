// Internal to engine/sampling: the filter pipeline behind filtered_distribution, with
// the choice to skip the final sort when only a draw is needed (a draw is an inverse
// CDF over any fixed order, and sorting a 150k vocabulary per token is not free), and
// a draw that skips building the distribution altogether.
#pragma once

#include <span>
#include <vector>

#include "engine/sampling/sampler.h"

namespace lmserve::engine::detail {

// temperature → top-k → top-p → min-p → typical-p → softmax over the kept tokens.
// sorted: most probable first (ties: lower id); otherwise a deterministic order that
// depends only on the inputs. Throws InvalidParameter when temperature <= 0 and
// std::runtime_error when every token is masked (-inf or NaN).
SparseDistribution filter_distribution(std::span<const float> processed_logits,
                                       const SamplingParams& params, bool sorted);

// Log-probs of the distribution a token was drawn from; k = how many alternatives.
struct ProcessedLogprobs {
  int k = 0;
  float logprob = 0.0f;
  std::vector<TokenLogprob> top;  // most probable first, ties by lower id
};

// The same filters, then one inverse-CDF draw over the kept tokens (in the unsorted
// order above), without building the distribution. Per-thread buffers are reused, so a
// sampling step allocates nothing once warm. The drawn token depends only on the logits,
// the filters and `uniform`, never on whether `processed` log-probs are asked for.
int32_t sample_filtered(std::span<const float> processed_logits, const SamplingParams& params,
                        double uniform, ProcessedLogprobs* processed = nullptr);

}  // namespace lmserve::engine::detail
