// Log-softmax helpers over one row of logits: the log-sum-exp (float64 accumulation, so
// a 150k vocabulary loses no precision) and the K most likely tokens in one pass with a
// K-sized heap instead of a sort of the whole row.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/sampling/sampler.h"

namespace lmserve::engine {

float log_sum_exp(std::span<const float> logits) {
  float max = -std::numeric_limits<float>::infinity();
  for (float x : logits) {
    if (x > max) max = x;  // NaN never compares greater: skipped
  }
  if (!std::isfinite(max)) return max;  // empty/all -inf → -inf; any +inf → +inf
  double sum = 0.0;
  for (float x : logits) {
    if (x > -std::numeric_limits<float>::infinity()) sum += std::exp(static_cast<double>(x) - max);
  }
  return static_cast<float>(max + std::log(sum));
}

std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k, float lse) {
  std::vector<TokenLogprob> top;
  if (k <= 0 || logits.empty()) return top;
  const size_t want = std::min(static_cast<size_t>(k), logits.size());
  // "a before b" = a is more likely (higher logit; lower id on ties).
  auto better = [](const TokenLogprob& a, const TokenLogprob& b) {
    return a.logprob > b.logprob || (a.logprob == b.logprob && a.id < b.id);
  };
  top.reserve(want + 1);
  // Min-heap by `better`: the front is the worst of the current top.
  for (size_t i = 0; i < logits.size(); ++i) {
    float x = logits[i];
    if (std::isnan(x)) continue;
    TokenLogprob candidate{static_cast<int32_t>(i), x};
    if (top.size() < want) {
      top.push_back(candidate);
      std::push_heap(top.begin(), top.end(), better);
    } else if (better(candidate, top.front())) {
      std::pop_heap(top.begin(), top.end(), better);
      top.back() = candidate;
      std::push_heap(top.begin(), top.end(), better);
    }
  }
  std::sort(top.begin(), top.end(), better);
  for (TokenLogprob& t : top) t.logprob -= lse;
  return top;
}

}  // namespace lmserve::engine
