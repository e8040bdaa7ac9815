// Internal to engine/sampling: the filter pipeline behind filtered_distribution, with
// the choice to skip the final sort when only a draw is needed (a draw is an inverse
// CDF over any fixed order, and sorting a 150k vocabulary per token is not free).
#pragma once

#include <span>

#include "engine/sampling/sampler.h"

namespace lmserve::engine::detail {

// temperature → top-k → top-p → min-p → typical-p → softmax over the kept tokens.
// sorted: most probable first (ties: lower id); otherwise a deterministic order that
// depends only on the inputs. Throws InvalidParameter when temperature <= 0 and
// std::runtime_error when every token is masked (-inf or NaN).
SparseDistribution filter_distribution(std::span<const float> processed_logits,
                                       const SamplingParams& params, bool sorted);

}  // namespace lmserve::engine::detail
