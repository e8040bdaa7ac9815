// Greedy decoding, prompt log-probs, perplexity and pooled embeddings on the fixture
// models against golden.json, driving Model + paged KV cache directly with the sampler,
// scoring and pooling helpers (tolerances of tests/data/models/README.md).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "engine/scoring/scoring.h"
#include "tests/engine/decode_driver.h"

namespace lmserve::engine {
namespace {

constexpr double kLogitTolerance = 1e-3;
constexpr double kLogprobTolerance = 1e-3;
constexpr double kPerplexityRelTolerance = 1e-4;
constexpr double kEmbeddingTolerance = 1e-4;
constexpr double kMinCosine = 0.99999;
constexpr int kRowsPerRead = 8;  // scoring reads a few rows at a time, never [tokens × vocab]

class ScoringConformance : public ::testing::TestWithParam<std::string> {};

// Greedy decoding through sample_next_token (temperature 0), stopping at `eos` if set.
std::vector<int32_t> greedy(test::DecodeDriver& d, const std::vector<int32_t>& prompt, int max_new,
                            std::vector<int32_t> eos, std::vector<std::vector<float>>* step_logits) {
  SamplingParams p;
  p.max_tokens = max_new;
  p.logprobs = 5;
  SequenceRng rng(0, 0);  // unused by greedy
  BlockTable table = d.prefill(prompt, OutputRows::Last);
  std::vector<int32_t> out;
  std::vector<float> scratch(d.vocab());
  for (int step = 0; step < max_new; ++step) {
    const std::vector<float> logits = d.logits(0);
    if (step_logits) step_logits->push_back(logits);
    const GeneratedToken t = sample_next_token(logits, scratch, p, {prompt, out}, eos, rng);
    EXPECT_EQ(t.top.size(), 5u);
    EXPECT_EQ(t.top.at(0).id, t.id);
    out.push_back(t.id);
    if (std::find(eos.begin(), eos.end(), t.id) != eos.end() || step + 1 == max_new) break;
    d.decode({&table}, {t.id});
  }
  return out;
}

TEST_P(ScoringConformance, GreedyContinuations) {
  const std::string model = GetParam();
  const nlohmann::json golden = test::load_golden(model);
  test::DecodeDriver driver(model);
  int eos_stops = 0;
  for (const auto& prompt : golden.at("prompts")) {
    SCOPED_TRACE(model + " prompt " + std::to_string(prompt.at("index").get<int>()));
    const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
    const auto& g = prompt.at("greedy");
    std::vector<std::vector<float>> step_logits;
    const auto out = greedy(driver, tokens, g.at("max_new_tokens").get<int>(), {}, &step_logits);
    ASSERT_EQ(out, g.at("tokens").get<std::vector<int32_t>>());
    const auto& top_ids = g.at("step_top_ids");
    const auto& top_logits = g.at("step_top_logits");
    ASSERT_EQ(step_logits.size(), top_ids.size());
    for (size_t s = 0; s < top_ids.size(); ++s) {
      for (size_t j = 0; j < top_ids[s].size(); ++j) {
        const int id = top_ids[s][j].get<int>();
        EXPECT_NEAR(step_logits[s][id], top_logits[s][j].get<double>(), kLogitTolerance)
            << "step " << s << " id " << id;
      }
    }
    const auto& ge = prompt.at("greedy_eos");
    const int32_t eos = ge.at("eos_token_id").get<int32_t>();
    const auto eos_out = greedy(driver, tokens, ge.at("max_new_tokens").get<int>(), {eos}, nullptr);
    EXPECT_EQ(eos_out, ge.at("tokens").get<std::vector<int32_t>>());
    EXPECT_EQ(!eos_out.empty() && eos_out.back() == eos, ge.at("stopped_at_eos").get<bool>());
    eos_stops += ge.at("stopped_at_eos").get<bool>();
  }
  EXPECT_EQ(driver.pool().num_used(), 0);
  EXPECT_GT(eos_stops, 0);
}

TEST_P(ScoringConformance, PromptLogprobsAndPerplexity) {
  const std::string model = GetParam();
  const nlohmann::json golden = test::load_golden(model);
  test::DecodeDriver driver(model);
  std::vector<float> rows(static_cast<size_t>(kRowsPerRead) * driver.vocab());
  for (const auto& prompt : golden.at("prompts")) {
    SCOPED_TRACE(model + " prompt " + std::to_string(prompt.at("index").get<int>()));
    const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
    const int n = static_cast<int>(tokens.size());
    const auto expected = prompt.at("logprobs").at("token_logprobs").get<std::vector<double>>();
    ASSERT_EQ(static_cast<int>(expected.size()), n - 1);
    BlockTable table = driver.prefill(tokens, OutputRows::All);
    ScoreSummary summary;
    // Row q predicts token q + 1.
    for (int q = 0; q < n - 1; q += kRowsPerRead) {
      const int count = std::min(kRowsPerRead, n - 1 - q);
      driver.model().logits(q, q + count, rows.data());
      for (int i = 0; i < count; ++i) {
        std::vector<TokenLogprob> top;
        const std::span<const float> row(rows.data() + static_cast<size_t>(i) * driver.vocab(), driver.vocab());
        const float lp = score_row(row, tokens[q + i + 1], 3, &top);
        EXPECT_NEAR(lp, expected[q + i], kLogprobTolerance) << "position " << q + i + 1;
        ASSERT_EQ(top.size(), 3u);
        EXPECT_GE(top[0].logprob, lp);
        summary.sum_logprob += lp;
        ++summary.num_scored;
      }
    }
    const auto& ppl = prompt.at("logprobs").at("perplexity");
    if (ppl.is_null()) {
      EXPECT_TRUE(std::isnan(summary.perplexity()));
    } else {
      EXPECT_TRUE(test::close_to(summary.perplexity(), ppl.get<double>(), kPerplexityRelTolerance, 0.0))
          << summary.perplexity() << " vs " << ppl.get<double>();
    }
  }
}

TEST_P(ScoringConformance, SlidingWindowWithAFullWindowEqualsGoldenAndEveryTokenIsScored) {
  const std::string model = GetParam();
  const nlohmann::json golden = test::load_golden(model);
  test::DecodeDriver driver(model);
  const auto& prompt = golden.at("prompts").back();  // the longest prompt
  const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
  const int n = static_cast<int>(tokens.size());
  ASSERT_GT(n, 64);
  auto perplexity = [&](int window, int stride) {
    ScoreSummary summary;
    std::vector<float> row(driver.vocab());
    for (const ScoreWindow& w : plan_score_windows(n, window, stride)) {
      const std::vector<int32_t> part(tokens.begin() + w.begin, tokens.begin() + w.end);
      BlockTable table = driver.prefill(part, OutputRows::All);
      for (int pos = w.score_from; pos < w.end; ++pos) {
        driver.model().logits(pos - 1 - w.begin, pos - w.begin, row.data());
        summary.sum_logprob += score_row(row, tokens[pos], 0, nullptr);
        ++summary.num_scored;
      }
    }
    EXPECT_EQ(summary.num_scored, n - 1);
    return summary.perplexity();
  };
  const double full = perplexity(n, n);
  EXPECT_TRUE(test::close_to(full, prompt.at("logprobs").at("perplexity").get<double>(),
                             kPerplexityRelTolerance, 0.0));
  const double windowed = perplexity(64, 32);
  EXPECT_TRUE(std::isfinite(windowed));
  EXPECT_NE(windowed, full);  // less context changes the numbers
}

TEST_P(ScoringConformance, PooledEmbeddings) {
  const std::string model = GetParam();
  const nlohmann::json golden = test::load_golden(model);
  test::DecodeDriver driver(model);
  const int hidden = driver.hidden();
  for (const auto& prompt : golden.at("prompts")) {
    SCOPED_TRACE(model + " prompt " + std::to_string(prompt.at("index").get<int>()));
    const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
    const int n = static_cast<int>(tokens.size());
    BlockTable table = driver.prefill(tokens, OutputRows::All);
    std::vector<float> states(static_cast<size_t>(n) * hidden);
    driver.model().hidden_states(0, n, states.data());
    const auto& e = prompt.at("embeddings");
    const struct {
      const char* key;
      Pooling pooling;
      bool normalize;
    } variants[] = {{"mean", Pooling::Mean, false},
                    {"last", Pooling::Last, false},
                    {"mean_normalized", Pooling::Mean, true},
                    {"last_normalized", Pooling::Last, true}};
    for (const auto& v : variants) {
      const auto expected = e.at(v.key).get<std::vector<double>>();
      const auto got = pool_hidden_states(states, n, hidden, v.pooling, v.normalize);
      ASSERT_EQ(got.size(), expected.size()) << v.key;
      double dot = 0.0, na = 0.0, nb = 0.0;
      for (int j = 0; j < hidden; ++j) {
        EXPECT_NEAR(got[j], expected[j], kEmbeddingTolerance) << v.key << " component " << j;
        dot += got[j] * expected[j];
        na += double(got[j]) * got[j];
        nb += expected[j] * expected[j];
      }
      EXPECT_GE(dot / std::sqrt(na * nb), kMinCosine) << v.key;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Models, ScoringConformance, ::testing::ValuesIn(test::golden_model_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

}  // namespace
}  // namespace lmserve::engine
