// Unit tests of BeamSearch on synthetic log-prob rows: hand-made cases for each rule of
// the README's beam-search semantics, and a comparison with a plain reference written
// straight from those rules (full sort of every candidate, list of hypotheses) over many
// settings of a small deterministic "model".
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <tuple>
#include <vector>

#include "engine/decoding/beam_search.h"
#include "engine/sampling/sampler.h"

namespace lmserve::engine {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

std::vector<float> log_softmax(std::vector<float> logits) {
  const float lse = log_sum_exp(logits);
  for (float& x : logits) x -= lse;
  return logits;
}

// A log-prob row in which `order` lists tokens from most to least likely.
std::vector<float> ranked_row(int vocab, const std::vector<int32_t>& order) {
  std::vector<float> logits(vocab, -10.0f);
  for (size_t i = 0; i < order.size(); ++i) logits[order[i]] = -static_cast<float>(i);
  return log_softmax(logits);
}

SamplingParams beam_params(int beams, int max_tokens) {
  SamplingParams p;
  p.use_beam_search = true;
  p.num_beams = beams;
  p.n = beams;
  p.max_tokens = max_tokens;
  return p;
}

std::vector<BeamContinuation> step_all(BeamSearch& search, const std::vector<std::vector<float>>& rows) {
  std::vector<std::span<const float>> spans(rows.begin(), rows.end());
  return search.step(spans);
}

TEST(BeamSearch, HypothesesCarryEachTokensLogprobAndTopAlternatives) {
  SamplingParams p = beam_params(2, 3);
  p.logprobs = 2;
  BeamSearch search(p, {}, {1});
  const std::vector<std::vector<float>> rows0{ranked_row(8, {3, 5, 1})};
  step_all(search, rows0);
  for (int s = 1; s < 3; ++s) {
    std::vector<std::vector<float>> rows;
    for (int b = 0; b < search.num_live(); ++b) rows.push_back(ranked_row(8, {(b + s) % 8, 6, 2}));
    step_all(search, rows);
  }
  ASSERT_TRUE(search.done());
  for (const BeamHypothesis& h : search.finalize()) {
    ASSERT_EQ(h.steps.size(), h.tokens.size());
    float sum = 0.0f;
    for (size_t i = 0; i < h.steps.size(); ++i) {
      EXPECT_EQ(h.steps[i].id, h.tokens[i]);
      EXPECT_LT(h.steps[i].logprob, 0.0f);
      ASSERT_EQ(h.steps[i].top.size(), 2u);
      EXPECT_GE(h.steps[i].top[0].logprob, h.steps[i].top[1].logprob);
      EXPECT_GE(h.steps[i].top[0].logprob, h.steps[i].logprob);
      sum += h.steps[i].logprob;
    }
    EXPECT_NEAR(sum, h.sum_logprobs, 1e-5f);
  }
  // The first token's alternatives are those of the prompt's row.
  EXPECT_EQ(search.finalize()[0].steps[0].top[0].id, 3);
}

TEST(BeamSearch, FirstStepExpandsThePromptIntoNumBeamsBestTokens) {
  BeamSearch search(beam_params(3, 5), {}, {1, 2});
  ASSERT_EQ(search.num_live(), 1);
  const auto next = step_all(search, {ranked_row(10, {4, 7, 2, 9})});
  ASSERT_EQ(next.size(), 3u);
  EXPECT_EQ(next[0].token, 4);
  EXPECT_EQ(next[1].token, 7);
  EXPECT_EQ(next[2].token, 2);
  for (const auto& c : next) EXPECT_EQ(c.parent, 0);
  EXPECT_EQ(search.num_live(), 3);
  EXPECT_EQ(search.live_tokens(1), (std::vector<int32_t>{7}));
  EXPECT_FLOAT_EQ(next[0].sum_logprobs, ranked_row(10, {4, 7, 2, 9})[4]);
}

TEST(BeamSearch, EosCountsOnlyWithinTheFirstNumBeamsCandidates) {
  const int32_t eos = 9;
  // Rank 2 of 4 candidates (>= num_beams 2): skipped, and never continues.
  BeamSearch late(beam_params(2, 3), {eos}, {});
  auto next = step_all(late, {ranked_row(10, {1, 2, eos, 3})});
  ASSERT_EQ(next.size(), 2u);
  EXPECT_EQ(next[0].token, 1);
  EXPECT_EQ(next[1].token, 2);
  // Rank 1 (< num_beams): a finished hypothesis; the next non-EOS candidate runs instead.
  BeamSearch early(beam_params(2, 1), {eos}, {});
  next = step_all(early, {ranked_row(10, {1, eos, 2, 3})});
  EXPECT_TRUE(early.done());  // max_tokens 1
  const auto hyps = early.finalize();
  ASSERT_EQ(hyps.size(), 2u);
  // Scores at length 1: token 1 (running, offered at the end) beats the EOS hypothesis.
  EXPECT_EQ(hyps[0].tokens, (std::vector<int32_t>{1}));
  EXPECT_FALSE(hyps[0].finished_by_eos);
  EXPECT_EQ(hyps[1].tokens, (std::vector<int32_t>{eos}));
  EXPECT_TRUE(hyps[1].finished_by_eos);
}

TEST(BeamSearch, FinishedScoreIsSumOverLengthIncludingEosToThePenalty) {
  const int32_t eos = 5;
  SamplingParams p = beam_params(1, 4);
  p.length_penalty = 0.6f;
  BeamSearch search(p, {eos}, {});
  const auto row0 = ranked_row(8, {2, eos});
  const auto row1 = ranked_row(8, {eos, 3});
  step_all(search, {row0});
  step_all(search, {row1});
  ASSERT_TRUE(search.done());  // early_stopping false, but the best running beam cannot win
  const auto hyps = search.finalize();
  ASSERT_EQ(hyps.size(), 1u);
  const float sum = row0[2] + row1[eos];
  EXPECT_EQ(hyps[0].tokens, (std::vector<int32_t>{2, eos}));
  EXPECT_FLOAT_EQ(hyps[0].sum_logprobs, sum);
  EXPECT_NEAR(hyps[0].score, sum / std::pow(2.0, 0.6), 1e-6);
}

TEST(BeamSearch, EarlyStoppingEndsWhenNumBeamsHypothesesAreFinished) {
  const int32_t eos = 0;
  SamplingParams p = beam_params(2, 10);
  p.early_stopping = true;
  BeamSearch search(p, {eos}, {});
  step_all(search, {ranked_row(6, {1, 2, 3, 4})});
  EXPECT_FALSE(search.done());
  // Both beams' best candidates are EOS (far ahead of anything else): ranks 0 and 1 →
  // two hypotheses → done.
  std::vector<float> eos_first(6, -8.0f);
  eos_first[eos] = 0.0f;
  eos_first = log_softmax(eos_first);
  const auto next = step_all(search, {eos_first, eos_first});
  EXPECT_TRUE(search.done());
  EXPECT_TRUE(next.empty());
  EXPECT_EQ(search.steps_run(), 2);
  EXPECT_EQ(search.num_live(), 0);
  const auto hyps = search.finalize();
  ASSERT_EQ(hyps.size(), 2u);
  EXPECT_EQ(hyps[0].tokens, (std::vector<int32_t>{1, eos}));
  EXPECT_EQ(hyps[1].tokens, (std::vector<int32_t>{2, eos}));
  EXPECT_THROW(step_all(search, {ranked_row(6, {1})}), std::logic_error);
}

TEST(BeamSearch, MinNewTokensMasksEos) {
  const int32_t eos = 3;
  SamplingParams p = beam_params(1, 5);
  p.min_tokens = 2;
  BeamSearch search(p, {eos}, {});
  auto next = step_all(search, {ranked_row(6, {eos, 1})});
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].token, 1);
  next = step_all(search, {ranked_row(6, {eos, 2})});
  EXPECT_EQ(next[0].token, 2);
  next = step_all(search, {ranked_row(6, {eos, 4})});  // 2 tokens generated: EOS allowed
  EXPECT_TRUE(search.done());
  EXPECT_EQ(search.finalize()[0].tokens, (std::vector<int32_t>{1, 2, eos}));
}

TEST(BeamSearch, NoRepeatNgramSizeBansRepeatsOverPromptAndBeam) {
  SamplingParams p = beam_params(1, 3);
  p.no_repeat_ngram_size = 2;
  BeamSearch search(p, {}, {4, 1});
  // After the prompt's last token 1 nothing is banned (1 was never followed by anything);
  // after 4, token 1 is banned because the bigram (4, 1) is in the prompt.
  auto next = step_all(search, {ranked_row(6, {4, 2})});
  EXPECT_EQ(next[0].token, 4);
  next = step_all(search, {ranked_row(6, {1, 2})});
  EXPECT_EQ(next[0].token, 2);  // (4, 1) already occurred
}

TEST(BeamSearch, ZeroMaxTokensIsDoneWithTheEmptyHypothesis) {
  BeamSearch search(beam_params(2, 0), {}, {1});
  EXPECT_TRUE(search.done());
  const auto hyps = search.finalize();
  ASSERT_EQ(hyps.size(), 1u);
  EXPECT_TRUE(hyps[0].tokens.empty());
}

TEST(BeamSearch, RejectsMismatchedRowsAndEarlyFinalize) {
  BeamSearch search(beam_params(2, 3), {}, {});
  EXPECT_THROW(search.finalize(), std::logic_error);
  EXPECT_THROW(step_all(search, {ranked_row(4, {1}), ranked_row(4, {1})}), std::invalid_argument);
  EXPECT_THROW(step_all(search, {}), std::invalid_argument);
}

// ---- comparison with a plain reference ----

// A deterministic toy model: the log-prob row depends on the whole beam (a hash).
std::vector<float> toy_row(const std::vector<int32_t>& tokens, int vocab, int32_t eos, float eos_boost) {
  uint64_t h = 1469598103934665603ull;
  for (int32_t t : tokens) h = (h ^ static_cast<uint64_t>(t + 1)) * 1099511628211ull;
  std::vector<float> logits(vocab);
  for (int v = 0; v < vocab; ++v) {
    uint64_t x = h ^ (static_cast<uint64_t>(v) * 0x9E3779B97F4A7C15ull);
    x ^= x >> 33, x *= 0xff51afd7ed558ccdull, x ^= x >> 33;
    logits[v] = static_cast<float>((x >> 11) * 0x1.0p-53) * 6.0f - 3.0f;
  }
  if (eos >= 0) logits[eos] += eos_boost;
  return log_softmax(logits);
}

struct Reference {
  std::vector<BeamHypothesis> hyps;
  int steps = 0;
};

Reference reference_search(const SamplingParams& p, std::optional<int32_t> eos, int vocab, float eos_boost) {
  struct Beam {
    std::vector<int32_t> tokens;
    float sum = 0.0f;
  };
  const int B = p.num_beams;
  auto score = [&](float sum, int len) {
    return static_cast<float>(sum / std::pow(static_cast<double>(len), static_cast<double>(p.length_penalty)));
  };
  std::vector<Beam> beams(1);
  std::vector<BeamHypothesis> finished;
  auto add = [&](BeamHypothesis h) {
    finished.push_back(std::move(h));
    std::stable_sort(finished.begin(), finished.end(),
                     [](const auto& a, const auto& b) { return a.score > b.score; });
    if (static_cast<int>(finished.size()) > B) finished.pop_back();
  };
  Reference r;
  bool done = false;
  for (int step = 1; step <= p.max_tokens && !done; ++step) {
    std::vector<std::tuple<float, int, int32_t>> cands;  // (score, beam, token)
    for (size_t b = 0; b < beams.size(); ++b) {
      const auto row = toy_row(beams[b].tokens, vocab, eos.value_or(-1), eos_boost);
      for (int t = 0; t < vocab; ++t) {
        if (eos && t == *eos && step - 1 < p.min_tokens) continue;
        cands.emplace_back(beams[b].sum + row[t], static_cast<int>(b), t);
      }
    }
    std::sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) {
      if (std::get<0>(a) != std::get<0>(b)) return std::get<0>(a) > std::get<0>(b);
      return std::make_pair(std::get<1>(a), std::get<2>(a)) < std::make_pair(std::get<1>(b), std::get<2>(b));
    });
    cands.resize(std::min(cands.size(), static_cast<size_t>(2 * B)));
    std::vector<Beam> next;
    for (size_t rank = 0; rank < cands.size() && static_cast<int>(next.size()) < B; ++rank) {
      const auto& [s, b, t] = cands[rank];
      std::vector<int32_t> tokens = beams[b].tokens;
      tokens.push_back(t);
      if (eos && t == *eos) {
        if (static_cast<int>(rank) < B) add({tokens, s, score(s, step), true});
        continue;
      }
      next.push_back({tokens, s});
    }
    beams = next;
    r.steps = step;
    if (static_cast<int>(finished.size()) == B) {
      if (p.early_stopping) done = true;
      else if (!beams.empty() && !(score(beams[0].sum, step) > finished.back().score)) done = true;
    }
    if (beams.empty()) done = true;
  }
  if (!done) {
    for (const Beam& b : beams) add({b.tokens, b.sum, score(b.sum, p.max_tokens), false});
  }
  finished.resize(std::min(finished.size(), static_cast<size_t>(p.n)));
  r.hyps = finished;
  return r;
}

TEST(BeamSearch, MatchesAPlainReferenceOverManySettings) {
  const int vocab = 23;
  int compared = 0, early_stops = 0, eos_hyps = 0;
  for (int beams : {1, 2, 3, 5}) {
    for (float lp : {1.0f, 0.6f, 0.0f, -0.5f, 2.0f}) {
      for (bool early : {true, false}) {
        for (std::optional<int32_t> eos : {std::optional<int32_t>{}, std::optional<int32_t>{7}}) {
          for (int min_tokens : {0, 3}) {
            for (float boost : {1.0f, 2.5f}) {
              SamplingParams p = beam_params(beams, 9);
              p.n = std::max(1, beams - 1);
              p.length_penalty = lp;
              p.early_stopping = early;
              p.min_tokens = min_tokens;
              const Reference ref = reference_search(p, eos, vocab, boost);
              BeamSearch search(p, eos ? std::vector<int32_t>{*eos} : std::vector<int32_t>{}, {});
              while (!search.done()) {
                std::vector<std::vector<float>> rows;
                for (int i = 0; i < search.num_live(); ++i)
                  rows.push_back(toy_row(search.live_tokens(i), vocab, eos.value_or(-1), boost));
                step_all(search, rows);
              }
              const auto got = search.finalize();
              SCOPED_TRACE(testing::Message() << "beams " << beams << " lp " << lp << " early " << early
                                              << " eos " << eos.has_value() << " min " << min_tokens
                                              << " boost " << boost);
              ASSERT_EQ(search.steps_run(), ref.steps);
              ASSERT_EQ(got.size(), ref.hyps.size());
              for (size_t i = 0; i < got.size(); ++i) {
                EXPECT_EQ(got[i].tokens, ref.hyps[i].tokens) << i;
                EXPECT_EQ(got[i].sum_logprobs, ref.hyps[i].sum_logprobs) << i;
                EXPECT_EQ(got[i].score, ref.hyps[i].score) << i;
                EXPECT_EQ(got[i].finished_by_eos, ref.hyps[i].finished_by_eos) << i;
                eos_hyps += got[i].finished_by_eos;
              }
              early_stops += search.steps_run() < 9;
              ++compared;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(compared, 320);
  // The settings exercise the interesting paths, not only the plain run to max_tokens.
  EXPECT_GT(early_stops, 10);
  EXPECT_GT(eos_hyps, 50);
}

TEST(BeamSearch, WideBeamsOverALargeVocabulary) {
  // Any width: 64 beams over 5000 tokens, each step's continuations best first.
  const int vocab = 5000;
  SamplingParams p = beam_params(64, 3);
  BeamSearch search(p, {}, {});
  while (!search.done()) {
    std::vector<std::vector<float>> rows;
    for (int i = 0; i < search.num_live(); ++i) rows.push_back(toy_row(search.live_tokens(i), vocab, -1, 0));
    const auto next = step_all(search, rows);
    for (size_t i = 1; i < next.size(); ++i) ASSERT_GE(next[i - 1].sum_logprobs, next[i].sum_logprobs);
    if (!search.done()) {
      ASSERT_EQ(next.size(), 64u);
    }
  }
  const auto hyps = search.finalize();
  ASSERT_EQ(hyps.size(), 64u);
  for (size_t i = 1; i < hyps.size(); ++i) EXPECT_GE(hyps[i - 1].score, hyps[i].score);
}

}  // namespace
}  // namespace lmserve::engine
