// Unit tests of engine/scoring: the sliding-window plan (every token but the first
// scored exactly once, with at least window − stride tokens of context), row scoring,
// the perplexity summary and embedding pooling.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "engine/sampling/params.h"
#include "engine/scoring/scoring.h"

namespace lmserve::engine {
namespace {

TEST(PlanScoreWindows, FollowsHuggingFacesStridedRecipe) {
  // 10 tokens, window 4, stride 2: windows at 0, 2, 4, 6.
  const auto plan = plan_score_windows(10, 4, 2);
  ASSERT_EQ(plan.size(), 4u);
  const int expected[4][3] = {{0, 4, 1}, {2, 6, 4}, {4, 8, 6}, {6, 10, 8}};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(plan[i].begin, expected[i][0]) << i;
    EXPECT_EQ(plan[i].end, expected[i][1]) << i;
    EXPECT_EQ(plan[i].score_from, expected[i][2]) << i;
  }
  // Short inputs: one window scoring positions 1..n-1.
  const auto one = plan_score_windows(3, 8, 4);
  ASSERT_EQ(one.size(), 1u);
  EXPECT_EQ(one[0].begin, 0);
  EXPECT_EQ(one[0].end, 3);
  EXPECT_EQ(one[0].score_from, 1);
  EXPECT_TRUE(plan_score_windows(0, 8, 4).empty());
}

TEST(PlanScoreWindows, EveryTokenScoredOnceWithEnoughContext) {
  for (int n : {1, 2, 5, 17, 64, 100}) {
    for (int window : {2, 3, 8, 16}) {
      for (int stride = 1; stride <= window; ++stride) {
        const auto plan = plan_score_windows(n, window, stride);
        std::vector<int> times(n, 0);
        for (size_t i = 0; i < plan.size(); ++i) {
          const ScoreWindow& w = plan[i];
          ASSERT_LE(w.end - w.begin, window);
          ASSERT_GE(w.score_from, w.begin + 1);  // a scored token has context in its window
          ASSERT_LE(w.score_from, w.end);
          if (i > 0) {
            ASSERT_GE(w.score_from - w.begin, std::min(window - stride, w.score_from)) << "context";
            ASSERT_EQ(w.score_from, plan[i - 1].end);
          }
          for (int pos = w.score_from; pos < w.end; ++pos) ++times[pos];
        }
        ASSERT_EQ(plan.back().end, n);
        ASSERT_EQ(times[0], 0);
        for (int pos = 1; pos < n; ++pos) ASSERT_EQ(times[pos], 1) << n << " " << window << " " << stride;
      }
    }
  }
}

TEST(PlanScoreWindows, RejectsBadWindowAndStride) {
  EXPECT_THROW(plan_score_windows(10, 1, 1), InvalidParameter);
  EXPECT_THROW(plan_score_windows(10, 4, 0), InvalidParameter);
  EXPECT_THROW(plan_score_windows(10, 4, 5), InvalidParameter);
  try {
    plan_score_windows(10, 4, 5);
  } catch (const InvalidParameter& e) {
    EXPECT_EQ(e.param(), "stride");
  }
}

TEST(ScoreRow, LogProbOfTheNextTokenAndTopAlternatives) {
  const std::vector<float> logits = {0.0f, 2.0f, 1.0f};
  const double lse = std::log(1.0 + std::exp(2.0) + std::exp(1.0));
  std::vector<TokenLogprob> top;
  const float lp = score_row(logits, 2, 2, &top);
  EXPECT_NEAR(lp, 1.0 - lse, 1e-6);
  ASSERT_EQ(top.size(), 2u);
  EXPECT_EQ(top[0].id, 1);
  EXPECT_EQ(top[1].id, 2);
  EXPECT_NEAR(top[0].logprob, 2.0 - lse, 1e-6);
  EXPECT_NEAR(score_row(logits, 0, 0, nullptr), -lse, 1e-6);
  EXPECT_THROW(score_row(logits, 3, 0, nullptr), std::out_of_range);
  EXPECT_THROW(score_row(logits, -1, 0, nullptr), std::out_of_range);
}

TEST(ScoreSummary, MeanNllAndPerplexity) {
  ScoreSummary s;
  EXPECT_TRUE(std::isnan(s.perplexity()));
  s.sum_logprob = -3.0;
  s.num_scored = 2;
  EXPECT_DOUBLE_EQ(s.mean_nll(), 1.5);
  EXPECT_DOUBLE_EQ(s.perplexity(), std::exp(1.5));
}

TEST(PoolHiddenStates, MeanLastAndNormalization) {
  const std::vector<float> hidden = {1.0f, 2.0f, 3.0f, 6.0f};  // 2 rows × 2
  EXPECT_EQ(pool_hidden_states(hidden, 2, 2, Pooling::Mean, false), (std::vector<float>{2.0f, 4.0f}));
  EXPECT_EQ(pool_hidden_states(hidden, 2, 2, Pooling::Last, false), (std::vector<float>{3.0f, 6.0f}));
  const auto n = pool_hidden_states(hidden, 2, 2, Pooling::Mean, true);
  EXPECT_NEAR(n[0], 2.0 / std::sqrt(20.0), 1e-7);
  EXPECT_NEAR(n[1], 4.0 / std::sqrt(20.0), 1e-7);
  const std::vector<float> zero(4, 0.0f);
  EXPECT_EQ(pool_hidden_states(zero, 2, 2, Pooling::Last, true), (std::vector<float>{0.0f, 0.0f}));
  EXPECT_THROW(pool_hidden_states(hidden, 3, 2, Pooling::Mean, true), std::invalid_argument);
  EXPECT_THROW(pool_hidden_states(hidden, 0, 4, Pooling::Mean, true), std::invalid_argument);
}

}  // namespace
}  // namespace lmserve::engine
