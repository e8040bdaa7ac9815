// Unit tests of engine/sampling: each logits processor and filter on small hand-made
// rows, log-prob helpers, greedy choice and seeded reproducibility (validation: sampling_params_test).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "engine/sampling/params.h"
#include "engine/sampling/sampler.h"
#include "tests/engine/chi_square.h"

namespace lmserve::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// ---- processors ----

TEST(LogitsProcessors, LogitBiasAddsAndIgnoresOutOfRangeIds) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f};
  SamplingParams p;
  p.logit_bias = {{0, 10.0f}, {2, -1.5f}, {7, 100.0f}};
  apply_logits_processors(logits, p, {}, {});
  EXPECT_EQ(logits, (std::vector<float>{11.0f, 2.0f, 1.5f}));
}

TEST(LogitsProcessors, RepetitionPenaltyIsHuggingFaceOverPromptAndOutputOnce) {
  std::vector<float> logits = {2.0f, -2.0f, 4.0f, 1.0f};
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  const std::vector<int32_t> prompt = {0, 0, 1};
  const std::vector<int32_t> output = {2, 2, 2};
  apply_logits_processors(logits, p, {prompt, output}, {});
  // Positive logits divided, negative multiplied, each token once whatever its count.
  EXPECT_EQ(logits, (std::vector<float>{1.0f, -4.0f, 2.0f, 1.0f}));
}

TEST(LogitsProcessors, PresenceAndFrequencyAreOpenAiOverOutputOnly) {
  std::vector<float> logits = {0.0f, 0.0f, 0.0f, 0.0f};
  SamplingParams p;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  const std::vector<int32_t> prompt = {3, 3, 3};
  const std::vector<int32_t> output = {1, 2, 2, 2};
  apply_logits_processors(logits, p, {prompt, output}, {});
  EXPECT_FLOAT_EQ(logits[0], 0.0f);
  EXPECT_FLOAT_EQ(logits[1], -(0.5f + 0.25f));
  EXPECT_FLOAT_EQ(logits[2], -(0.5f + 0.75f));
  EXPECT_FLOAT_EQ(logits[3], 0.0f);  // prompt tokens are not penalized
}

TEST(LogitsProcessors, MinTokensMasksEosAndStopIdsUntilReached) {
  SamplingParams p;
  p.min_tokens = 2;
  p.stop_token_ids = {1};
  const std::vector<int32_t> eos = {3};
  const std::vector<int32_t> one = {0};
  std::vector<float> logits = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_logits_processors(logits, p, {{}, one}, eos);
  EXPECT_EQ(logits[1], kNegInf);
  EXPECT_EQ(logits[3], kNegInf);
  EXPECT_EQ(logits[0], 1.0f);
  const std::vector<int32_t> two = {0, 2};
  std::vector<float> later = {1.0f, 1.0f, 1.0f, 1.0f};
  apply_logits_processors(later, p, {{}, two}, eos);
  EXPECT_EQ(later, (std::vector<float>{1.0f, 1.0f, 1.0f, 1.0f}));
}

TEST(LogitsProcessors, NoRepeatNgramBansCompletionsOverPromptAndOutput) {
  SamplingParams p;
  p.no_repeat_ngram_size = 3;
  // Sequence 5 6 7 5 | 6: the 2-gram (5, 6) was followed by 7 → 7 is banned.
  const std::vector<int32_t> prompt = {5, 6, 7, 5};
  const std::vector<int32_t> output = {6};
  std::vector<float> logits(10, 0.0f);
  apply_logits_processors(logits, p, {prompt, output}, {});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(logits[i], i == 7 ? kNegInf : 0.0f) << i;
  // Bigrams: every token that followed the last token before is banned.
  p.no_repeat_ngram_size = 2;
  std::vector<float> row(10, 0.0f);
  const std::vector<int32_t> seq = {1, 2, 1, 3, 1};
  apply_logits_processors(row, p, {seq, {}}, {});
  for (int i = 0; i < 10; ++i) EXPECT_EQ(row[i], (i == 2 || i == 3) ? kNegInf : 0.0f) << i;
}

// ---- filters ----

std::vector<float> logits_of_probs(const std::vector<double>& probs) {
  std::vector<float> l;
  for (double q : probs) l.push_back(static_cast<float>(std::log(q)));
  return l;
}

SamplingParams sampling(float t) {
  SamplingParams p;
  p.temperature = t;
  return p;
}

TEST(FilteredDistribution, TemperatureScalesBeforeSoftmax) {
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  const auto d = filtered_distribution(logits, sampling(0.5f));
  ASSERT_EQ(d.ids, (std::vector<int32_t>{2, 1, 0}));
  const double z = std::exp(0.0) + std::exp(2.0) + std::exp(4.0);
  EXPECT_NEAR(d.probs[0], std::exp(4.0) / z, 1e-6);
  EXPECT_NEAR(d.probs[2], 1.0 / z, 1e-6);
}

TEST(FilteredDistribution, TopKKeepsTiesWithTheKthValue) {
  const std::vector<float> logits = {1.0f, 3.0f, 2.0f, 2.0f, 0.5f};
  SamplingParams p = sampling(1.0f);
  p.top_k = 2;
  const auto d = filtered_distribution(logits, p);
  EXPECT_EQ(d.ids, (std::vector<int32_t>{1, 2, 3}));  // 2 and 3 tie at the 2nd value
  p.top_k = 1;
  EXPECT_EQ(filtered_distribution(logits, p).ids, (std::vector<int32_t>{1}));
}

TEST(FilteredDistribution, TopPKeepsSmallestSetReachingTheMass) {
  const auto logits = logits_of_probs({0.1, 0.5, 0.25, 0.15});
  SamplingParams p = sampling(1.0f);
  p.top_p = 0.7f;  // 0.5 + 0.25 = 0.75 >= 0.7
  EXPECT_EQ(filtered_distribution(logits, p).ids, (std::vector<int32_t>{1, 2}));
  p.top_p = 0.8f;  // needs 0.15 too
  const auto d = filtered_distribution(logits, p);
  EXPECT_EQ(d.ids, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_NEAR(d.probs[0], 0.5 / 0.9, 1e-6);
  p.top_p = 0.01f;  // the most probable token always stays
  EXPECT_EQ(filtered_distribution(logits, p).ids, (std::vector<int32_t>{1}));
}

TEST(FilteredDistribution, TopPOnALargeVocabularyMatchesAFullSort) {
  // Wider than the first partial-sort head, so the head has to grow.
  std::vector<float> logits(50000);
  uint64_t x = 88172645463325252ull;
  for (float& l : logits) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    l = static_cast<float>((x >> 11) * 0x1.0p-53) * 0.5f;
  }
  SamplingParams p = sampling(1.0f);
  p.top_p = 0.9f;
  const auto d = filtered_distribution(logits, p);
  std::vector<std::pair<float, int32_t>> all;
  for (size_t i = 0; i < logits.size(); ++i) all.push_back({-logits[i], static_cast<int32_t>(i)});
  std::sort(all.begin(), all.end());
  double total = 0.0;
  for (float l : logits) total += std::exp(double(l));
  size_t keep = 0;
  for (double before = 0.0; keep < all.size() && before < 0.9 * total; ++keep) {
    before += std::exp(double(-all[keep].first));
  }
  ASSERT_GT(keep, 1024u);
  ASSERT_EQ(d.ids.size(), keep);
  for (size_t i = 0; i < keep; ++i) ASSERT_EQ(d.ids[i], all[i].second) << i;
}

TEST(FilteredDistribution, MinPDropsTokensBelowTheScaledMaximum) {
  const auto logits = logits_of_probs({0.5, 0.2, 0.04, 0.26});
  SamplingParams p = sampling(1.0f);
  p.min_p = 0.1f;  // threshold 0.05: token 2 goes
  const auto d = filtered_distribution(logits, p);
  EXPECT_EQ(d.ids, (std::vector<int32_t>{0, 3, 1}));
  EXPECT_NEAR(d.probs[0], 0.5 / 0.96, 1e-6);
}

TEST(FilteredDistribution, FiltersApplyInOrderTemperatureTopKTopPMinP) {
  // After top-k = 3 the renormalized distribution decides top-p.
  const auto logits = logits_of_probs({0.4, 0.3, 0.2, 0.1});
  SamplingParams p = sampling(1.0f);
  p.top_k = 3;
  p.top_p = 0.75f;  // on {0.4, 0.3, 0.2}/0.9: 0.444 + 0.333 = 0.778 >= 0.75
  EXPECT_EQ(filtered_distribution(logits, p).ids, (std::vector<int32_t>{0, 1}));
}

TEST(FilteredDistribution, TypicalPKeepsTokensClosestToTheEntropy) {
  const std::vector<double> probs = {0.4, 0.3, 0.2, 0.1};
  double entropy = 0.0;
  for (double q : probs) entropy -= q * std::log(q);
  // |−log p − H| per token; the mass is accumulated in increasing order of it.
  std::vector<std::pair<double, int>> shifted;
  for (int i = 0; i < 4; ++i) shifted.push_back({std::abs(-std::log(probs[i]) - entropy), i});
  std::sort(shifted.begin(), shifted.end());
  SamplingParams p = sampling(1.0f);
  p.typical_p = 0.5f;
  const auto d = filtered_distribution(logits_of_probs(probs), p);
  double mass = 0.0;
  std::vector<int32_t> expected;
  for (const auto& [s, i] : shifted) {
    expected.push_back(i);
    mass += probs[i];
    if (mass >= 0.5) break;
  }
  std::vector<int32_t> got = d.ids;
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(got, expected);
  EXPECT_LT(got.size(), 4u);
}

TEST(FilteredDistribution, TypicalPOnALargeVocabularyMatchesAFullSort) {
  std::vector<float> logits(40000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(0.01f * static_cast<float>(i * i % 7919)) * 3.0f;
  SamplingParams p = sampling(1.0f);
  p.typical_p = 0.9f;
  const auto d = filtered_distribution(logits, p);
  // Reference: HF's recipe with a full sort, in float64.
  double mx = -1e300, total = 0.0;
  for (float l : logits) mx = std::max(mx, double(l));
  for (float l : logits) total += std::exp(double(l) - mx);
  const double lse = mx + std::log(total);
  double entropy = 0.0;
  for (float l : logits) entropy -= std::exp(l - lse) * (l - lse);
  std::vector<std::pair<double, int32_t>> shifted;
  for (size_t i = 0; i < logits.size(); ++i)
    shifted.push_back({std::abs(-(logits[i] - lse) - entropy), static_cast<int32_t>(i)});
  std::sort(shifted.begin(), shifted.end());
  size_t last = 0;
  double cumulative = 0.0;
  for (size_t i = 0; i < shifted.size(); ++i) {
    cumulative += std::exp(logits[shifted[i].second] - lse);
    if (cumulative >= 0.9) {
      last = i;
      break;
    }
  }
  std::vector<int32_t> expected;
  for (const auto& [value, id] : shifted)
    if (value <= shifted[last].first) expected.push_back(id);
  std::vector<int32_t> got = d.ids;
  std::sort(got.begin(), got.end());
  std::sort(expected.begin(), expected.end());
  ASSERT_GT(expected.size(), 1024u);  // beyond the first partially sorted head
  EXPECT_EQ(got, expected);
}

TEST(FilteredDistribution, MaskedTokensNeverSurviveAndAllMaskedThrows) {
  std::vector<float> logits = {kNegInf, 0.0f, kNegInf};
  const auto d = filtered_distribution(logits, sampling(1.0f));
  EXPECT_EQ(d.ids, (std::vector<int32_t>{1}));
  EXPECT_FLOAT_EQ(d.probs[0], 1.0f);
  std::vector<float> none = {kNegInf, kNegInf};
  EXPECT_THROW(filtered_distribution(none, sampling(1.0f)), std::runtime_error);
  EXPECT_THROW(filtered_distribution(logits, sampling(0.0f)), InvalidParameter);
}

TEST(Draw, InverseCdfOverTheListedOrder) {
  SparseDistribution d{{7, 3, 9}, {0.5f, 0.25f, 0.25f}};
  EXPECT_EQ(draw(d, 0.0), 7);
  EXPECT_EQ(draw(d, 0.49), 7);
  EXPECT_EQ(draw(d, 0.5), 3);
  EXPECT_EQ(draw(d, 0.74), 3);
  EXPECT_EQ(draw(d, 0.99999), 9);
  EXPECT_THROW(draw(SparseDistribution{}, 0.5), std::invalid_argument);
}

// ---- log-probs ----

TEST(Logprobs, LogSumExpAndTopKWithTiesByLowerId) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, kNegInf, 2.0f};
  const float lse = log_sum_exp(logits);
  EXPECT_NEAR(lse, std::log(std::exp(1.0) + 2 * std::exp(3.0) + std::exp(2.0)), 1e-6);
  const auto top = top_logprobs(logits, 3, lse);
  ASSERT_EQ(top.size(), 3u);
  EXPECT_EQ(top[0].id, 1);
  EXPECT_EQ(top[1].id, 2);
  EXPECT_EQ(top[2].id, 4);
  EXPECT_NEAR(top[2].logprob, 2.0f - lse, 1e-6);
  EXPECT_TRUE(top_logprobs(logits, 0, lse).empty());
  EXPECT_EQ(top_logprobs(logits, 50, lse).size(), 5u);
  // Large rows stay accurate (float64 accumulation).
  std::vector<float> flat(150000, 0.0f);
  EXPECT_NEAR(log_sum_exp(flat), std::log(150000.0), 1e-5);
}

// ---- one decision ----

TEST(SampleNextToken, GreedyIsArgmaxOfProcessedLogitsLowestIdOnTies) {
  const std::vector<float> raw = {1.0f, 5.0f, 5.0f, 4.0f};
  std::vector<float> scratch(raw.size());
  SamplingParams p;
  p.logprobs = 2;
  SequenceRng rng(1, 0);
  GeneratedToken t = sample_next_token(raw, scratch, p, {}, {}, rng);
  EXPECT_EQ(t.id, 1);
  const float lse = log_sum_exp(raw);
  EXPECT_NEAR(t.logprob, 5.0f - lse, 1e-6);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[1].id, 2);
  // A repetition penalty on token 1 moves the choice; the default log-probs stay those
  // of the unmodified logits.
  p.repetition_penalty = 2.0f;
  const std::vector<int32_t> prompt = {1};
  t = sample_next_token(raw, scratch, p, {prompt, {}}, {}, rng);
  EXPECT_EQ(t.id, 2);
  EXPECT_NEAR(t.logprob, 5.0f - lse, 1e-6);
  p.processed_logprobs = true;
  t = sample_next_token(raw, scratch, p, {prompt, {}}, {}, rng);
  std::vector<float> processed = {1.0f, 2.5f, 5.0f, 4.0f};
  EXPECT_NEAR(t.logprob, 5.0f - log_sum_exp(processed), 1e-6);
  EXPECT_EQ(raw[1], 5.0f);  // raw untouched
}

TEST(SampleNextToken, SameSeedSameStreamDifferentIndexDifferentStream) {
  std::vector<float> raw(1000);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = std::sin(static_cast<float>(i)) * 3.0f;
  std::vector<float> scratch(raw.size());
  SamplingParams p = sampling(1.0f);
  p.top_p = 0.95f;
  p.logprobs = 1;
  auto run = [&](uint64_t seed, int index) {
    SequenceRng rng(seed, index);
    std::vector<int32_t> out;
    for (int i = 0; i < 64; ++i) {
      out.push_back(sample_next_token(raw, scratch, p, {{}, out}, {}, rng).id);
    }
    return out;
  };
  EXPECT_EQ(run(42, 0), run(42, 0));
  EXPECT_NE(run(42, 0), run(42, 1));
  EXPECT_NE(run(42, 0), run(43, 0));
  // The stream is fixed by the standard's algorithms: pin its first value.
  SequenceRng a(42, 0), b(42, 0);
  EXPECT_EQ(a.uniform(), b.uniform());
  for (int i = 0; i < 1000; ++i) {
    const double u = a.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}

TEST(SampleNextToken, ProcessedLogprobsComeFromTheFilteredDistribution) {
  const auto raw = logits_of_probs({0.5, 0.3, 0.2});
  std::vector<float> scratch(raw.size());
  SamplingParams p = sampling(1.0f);
  p.top_k = 2;
  p.logprobs = 2;
  p.processed_logprobs = true;
  SequenceRng rng(7, 0);
  const GeneratedToken t = sample_next_token(raw, scratch, p, {}, {}, rng);
  ASSERT_TRUE(t.id == 0 || t.id == 1);
  EXPECT_NEAR(t.logprob, std::log(t.id == 0 ? 0.625 : 0.375), 1e-5);
  ASSERT_EQ(t.top.size(), 2u);
  EXPECT_EQ(t.top[0].id, 0);
  EXPECT_NEAR(t.top[1].logprob, std::log(0.375), 1e-5);
  std::vector<float> wrong(2);
  EXPECT_THROW(sample_next_token(raw, wrong, p, {}, {}, rng), std::invalid_argument);
}

TEST(SampleNextToken, DrawsFollowTheFilteredDistribution) {
  // The sampler's own path (no distribution built, unsorted order) against
  // filtered_distribution, for each filter, over 20 000 seeded draws.
  std::vector<float> raw(64);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = std::sin(1.7f * static_cast<float>(i)) * 2.5f;
  std::vector<float> scratch(raw.size());
  std::vector<SamplingParams> settings(5, sampling(0.8f));
  settings[1].top_k = 7;
  settings[2].top_p = 0.8f;
  settings[3].min_p = 0.05f;
  settings[4].typical_p = 0.7f;
  for (size_t s = 0; s < settings.size(); ++s) {
    const SparseDistribution dist = filtered_distribution(raw, settings[s]);
    std::vector<double> expected(raw.size(), 0.0), observed(raw.size(), 0.0);
    for (size_t i = 0; i < dist.ids.size(); ++i) expected[dist.ids[i]] = 20000.0 * dist.probs[i];
    SequenceRng rng(1234 + s, 0);
    for (int d = 0; d < 20000; ++d) {
      const int32_t id = sample_next_token(raw, scratch, settings[s], {}, {}, rng).id;
      ASSERT_GT(expected[id], 0.0) << "setting " << s << " drew a filtered-out token " << id;
      observed[id] += 1.0;
    }
    std::vector<double> e, o;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (expected[i] > 0.0) {
        e.push_back(expected[i]);
        o.push_back(observed[i]);
      }
    }
    const test::ChiSquare chi = test::chi_square(e, o);
    EXPECT_GT(chi.p_value, 1e-4) << "setting " << s << " chi2 " << chi.statistic << " dof " << chi.dof;
  }
}

TEST(SampleNextToken, AskingForLogprobsNeverChangesTheDrawnTokens) {
  std::vector<float> raw(300);
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = std::cos(0.37f * static_cast<float>(i)) * 4.0f;
  std::vector<float> scratch(raw.size());
  auto run = [&](int logprobs, bool processed) {
    SamplingParams p = sampling(0.9f);
    p.top_p = 0.9f;
    p.logprobs = logprobs;
    p.processed_logprobs = processed;
    SequenceRng rng(99, 3);
    std::vector<int32_t> ids;
    for (int i = 0; i < 200; ++i) ids.push_back(sample_next_token(raw, scratch, p, {}, {}, rng).id);
    return ids;
  };
  const auto plain = run(-1, false);
  EXPECT_EQ(run(5, false), plain);
  EXPECT_EQ(run(5, true), plain);
  EXPECT_EQ(run(0, true), plain);
}

}  // namespace
}  // namespace lmserve::engine
