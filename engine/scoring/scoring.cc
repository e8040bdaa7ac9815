// Scoring (prompt log-probs, sliding-window perplexity) and embedding pooling over
// model outputs that the caller fetches a few rows at a time.
#include "engine/scoring/scoring.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/sampling/params.h"
#include "engine/sampling/sampler.h"

namespace lmserve::engine {

// Hugging Face's strided perplexity recipe: windows start at 0, stride, 2·stride, ...;
// each scores the tokens after the previous window's end, so every token but the first
// is scored once with at least window − stride tokens of context. One departure: with
// stride == window HF leaves each window's first token unscored (it has no context in
// its window); here the next window then starts one token earlier so that it is scored.
std::vector<ScoreWindow> plan_score_windows(int num_tokens, int window, int stride) {
  if (window < 2) {
    throw InvalidParameter("window", "window must be >= 2, got " + std::to_string(window));
  }
  if (stride < 1 || stride > window) {
    throw InvalidParameter("stride", "stride must be in [1, window = " + std::to_string(window) +
                                         "], got " + std::to_string(stride));
  }
  std::vector<ScoreWindow> plan;
  if (num_tokens <= 0) return plan;
  int begin = 0;
  int scored_until = 1;  // token 0 has no context and is never scored
  while (true) {
    const int end = std::min(begin + window, num_tokens);
    plan.push_back(ScoreWindow{begin, end, std::min(std::max(scored_until, begin + 1), end)});
    if (end == num_tokens) break;
    scored_until = end;
    begin = std::min(begin + stride, end - 1);
  }
  return plan;
}

double ScoreSummary::perplexity() const {
  if (num_scored == 0) return std::numeric_limits<double>::quiet_NaN();
  return std::exp(mean_nll());
}

float score_row(std::span<const float> logits, int32_t next_token, int k,
                std::vector<TokenLogprob>* top) {
  if (next_token < 0 || static_cast<size_t>(next_token) >= logits.size()) {
    throw std::out_of_range("score_row: token id " + std::to_string(next_token) +
                            " is outside the vocabulary [0, " + std::to_string(logits.size()) +
                            ")");
  }
  const float lse = log_sum_exp(logits);
  if (top) *top = top_logprobs(logits, k, lse);
  return logits[next_token] - lse;
}

std::vector<float> pool_hidden_states(std::span<const float> hidden, int num_rows, int hidden_size,
                                      Pooling pooling, bool normalize) {
  if (num_rows < 1 || hidden_size < 1 ||
      hidden.size() != static_cast<size_t>(num_rows) * static_cast<size_t>(hidden_size)) {
    throw std::invalid_argument("pool_hidden_states: expected " + std::to_string(num_rows) + " x " +
                                std::to_string(hidden_size) + " floats, got " +
                                std::to_string(hidden.size()));
  }
  std::vector<double> acc(hidden_size, 0.0);
  if (pooling == Pooling::Last) {
    const float* last = hidden.data() + static_cast<size_t>(num_rows - 1) * hidden_size;
    for (int j = 0; j < hidden_size; ++j) acc[j] = last[j];
  } else {
    for (int r = 0; r < num_rows; ++r) {
      const float* row = hidden.data() + static_cast<size_t>(r) * hidden_size;
      for (int j = 0; j < hidden_size; ++j) acc[j] += row[j];
    }
    for (double& x : acc) x /= num_rows;
  }
  if (normalize) {
    double norm = 0.0;
    for (double x : acc) norm += x * x;
    norm = std::sqrt(norm);
    if (norm > 0.0) {
      for (double& x : acc) x /= norm;
    }
  }
  return std::vector<float>(acc.begin(), acc.end());
}

}  // namespace lmserve::engine
