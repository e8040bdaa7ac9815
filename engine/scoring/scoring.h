// Scoring and pooling helpers over model outputs: prompt log-probabilities taken a few
// rows at a time (never a [tokens × vocab] matrix), the sliding-window plan for texts
// longer than the context, perplexity, and embedding pooling.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/request.h"

namespace lmserve::engine {

// A window of the sliding-window plan: run tokens [begin, end) as one fresh sequence
// and score positions [score_from, end) of it (each token is scored exactly once; token
// 0 is never scored). Hugging Face's perplexity recipe with stride.
struct ScoreWindow {
  int begin = 0;
  int end = 0;
  int score_from = 0;
};
// window >= 2, 1 <= stride <= window. Throws InvalidParameter otherwise.
std::vector<ScoreWindow> plan_score_windows(int num_tokens, int window, int stride);

// Accumulates log p(token | context) for scored positions.
struct ScoreSummary {
  double sum_logprob = 0.0;
  int num_scored = 0;
  double mean_nll() const { return num_scored ? -sum_logprob / num_scored : 0.0; }
  double perplexity() const;  // exp(mean_nll); NaN when nothing was scored
};

// Given logits of the row predicting `next_token`, returns its log-prob and fills `top`
// with the K most likely alternatives (K = 0: none).
float score_row(std::span<const float> logits, int32_t next_token, int k,
                std::vector<TokenLogprob>* top);

// Pools hidden states [num_rows, hidden] (row-major) into one vector.
std::vector<float> pool_hidden_states(std::span<const float> hidden, int num_rows, int hidden_size,
                                      Pooling pooling, bool normalize);

}  // namespace lmserve::engine
