// Engine results against the fixtures' golden.json (tests/data/models/README.md):
// greedy and beam search exact, prompt log-probs, perplexity and embeddings within the
// README's tolerances — all requests of a model submitted at once, so they share steps.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/scoring/scoring.h"
#include "tests/engine/engine_test_util.h"

namespace lmserve::engine::testing {
namespace {

class EngineConformance : public ::testing::TestWithParam<std::string> {};

SamplingParams greedy_params(int max_tokens, std::optional<int32_t> eos) {
  SamplingParams p;
  p.max_tokens = max_tokens;
  if (eos) p.eos_token_ids = std::vector<int32_t>{*eos};
  else p.ignore_eos = true;
  return p;
}

TEST_P(EngineConformance, BatchedRequestsMatchGolden) {
  const nlohmann::json golden = load_golden(GetParam());
  EngineFixture f(GetParam());
  Collector c;
  int submitted = 0;
  auto submit = [&](Request r) {
    r.on_output = c.callback();
    SubmitResult s = f.engine->submit(std::move(r));
    ASSERT_EQ(s.status, SubmitStatus::Accepted) << s.message;
    ++submitted;
  };
  const auto& prompts = golden["prompts"];
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& pr = prompts[i];
    const std::vector<int32_t> tokens = ids_of(pr["tokens"]);
    const std::string id = std::to_string(i);
    const auto& greedy = pr["greedy"];
    submit(generate_request("greedy" + id, tokens, greedy_params(greedy["max_new_tokens"], std::nullopt), c));
    const auto& ge = pr["greedy_eos"];
    SamplingParams eos_params = greedy_params(ge["max_new_tokens"], ge["eos_token_id"].get<int32_t>());
    eos_params.prompt_logprobs = 2;
    submit(generate_request("greedy_eos" + id, tokens, eos_params, c));
    for (size_t b = 0; b < pr["beam_search"].size(); ++b) {
      const auto& run = pr["beam_search"][b];
      std::optional<int32_t> eos;
      if (!run["eos_token_id"].is_null()) eos = run["eos_token_id"].get<int32_t>();
      SamplingParams p = greedy_params(run["max_new_tokens"], eos);
      p.use_beam_search = true;
      p.num_beams = run["num_beams"];
      p.n = run["num_return_sequences"];
      p.length_penalty = run["length_penalty"];
      p.early_stopping = run["early_stopping"];
      submit(generate_request("beam" + id + "_" + std::to_string(b), tokens, p, c));
    }
    Request score;
    score.id = "score" + id;
    score.kind = RequestKind::Score;
    score.prompt = tokens;
    score.score.top_logprobs = 3;
    submit(std::move(score));
    for (Pooling pooling : {Pooling::Mean, Pooling::Last}) {
      for (bool normalize : {false, true}) {
        Request e;
        e.id = "embed" + id + (pooling == Pooling::Mean ? "mean" : "last") + (normalize ? "_n" : "");
        e.kind = RequestKind::Embed;
        e.prompt = tokens;
        e.embed = {pooling, normalize};
        e.stream = false;
        submit(std::move(e));
      }
    }
  }
  ASSERT_TRUE(c.wait(submitted));

  for (size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE("prompt " + std::to_string(i));
    const auto& pr = prompts[i];
    const std::string id = std::to_string(i);
    const int prompt_len = pr["prompt_length"];

    RequestResult greedy = c.get("greedy" + id);
    ASSERT_FALSE(greedy.error) << *greedy.error;
    EXPECT_EQ(greedy.sequences[0].ids, ids_of(pr["greedy"]["tokens"]));
    EXPECT_EQ(greedy.sequences[0].finish_reason, FinishReason::Length);

    RequestResult ge = c.get("greedy_eos" + id);
    EXPECT_EQ(ge.sequences[0].ids, ids_of(pr["greedy_eos"]["tokens"]));
    const bool at_eos = pr["greedy_eos"]["stopped_at_eos"];
    EXPECT_EQ(ge.sequences[0].finish_reason, at_eos ? FinishReason::Stop : FinishReason::Length);
    if (at_eos) {
      EXPECT_EQ(ge.sequences[0].stop_token, pr["greedy_eos"]["eos_token_id"].get<int32_t>());
    }

    const auto& golden_lp = pr["logprobs"]["token_logprobs"];
    RequestResult score = c.get("score" + id);
    ASSERT_TRUE(score.prompt_logprobs);
    ASSERT_TRUE(ge.prompt_logprobs);
    const PromptLogprobs& lp = *score.prompt_logprobs;
    ASSERT_EQ(lp.token_logprobs.size(), static_cast<size_t>(prompt_len));
    EXPECT_FALSE(lp.token_logprobs[0]);
    ScoreSummary summary;
    for (int p = 1; p < prompt_len; ++p) {
      ASSERT_TRUE(lp.token_logprobs[p]);
      EXPECT_NEAR(*lp.token_logprobs[p], golden_lp[p - 1].get<float>(), 1e-3) << "position " << p;
      EXPECT_NEAR(*ge.prompt_logprobs->token_logprobs[p], golden_lp[p - 1].get<float>(), 1e-3);
      ASSERT_EQ(lp.top[p].size(), 3u);
      EXPECT_EQ(lp.top[p][0].id, pr["top_ids"][p - 1][0].get<int32_t>());
      EXPECT_EQ(ge.prompt_logprobs->top[p].size(), 2u);
      summary.sum_logprob += *lp.token_logprobs[p];
      ++summary.num_scored;
    }
    if (!pr["logprobs"]["perplexity"].is_null()) {
      const double ppl = pr["logprobs"]["perplexity"];
      EXPECT_NEAR(summary.perplexity(), ppl, 1e-4 * ppl);
    }

    for (size_t b = 0; b < pr["beam_search"].size(); ++b) {
      const auto& run = pr["beam_search"][b];
      RequestResult beam = c.get("beam" + id + "_" + std::to_string(b));
      ASSERT_FALSE(beam.error) << *beam.error;
      ASSERT_EQ(beam.sequences.size(), run["sequences"].size()) << "beam run " << b;
      for (size_t r = 0; r < run["sequences"].size(); ++r) {
        const auto& want = run["sequences"][r];
        const SequenceResult& got = beam.sequences.at(static_cast<int>(r));
        EXPECT_EQ(got.ids, ids_of(want["tokens"])) << "beam run " << b << " rank " << r;
        ASSERT_TRUE(got.beam_score);
        EXPECT_NEAR(*got.beam_score, want["score"].get<float>(), 1e-3);
        EXPECT_NEAR(got.cumulative_logprob, want["sum_logprobs"].get<float>(), 1e-3);
        EXPECT_EQ(got.finish_reason, want["finished_by_eos"].get<bool>() ? FinishReason::Stop
                                                                          : FinishReason::Length);
      }
    }

    const auto& emb = pr["embeddings"];
    const std::pair<const char*, const char*> variants[] = {
        {"mean", "mean"}, {"mean_n", "mean_normalized"}, {"last", "last"}, {"last_n", "last_normalized"}};
    for (const auto& [suffix, key] : variants) {
      RequestResult e = c.get("embed" + id + suffix);
      const std::vector<float> want = emb[key].get<std::vector<float>>();
      ASSERT_EQ(e.embedding.size(), want.size()) << key;
      EXPECT_EQ(e.num_outputs, 1);
      for (size_t j = 0; j < want.size(); ++j) EXPECT_NEAR(e.embedding[j], want[j], 1e-4) << key << " " << j;
    }
  }
}

// A sliding window scores every position once; the first window has full context.
TEST_P(EngineConformance, SlidingWindowScoresEveryTokenOnce) {
  const nlohmann::json golden = load_golden(GetParam());
  EngineFixture f(GetParam());
  const auto& pr = golden["prompts"].back();
  const std::vector<int32_t> tokens = ids_of(pr["tokens"]);
  const int n = static_cast<int>(tokens.size());
  ASSERT_GT(n, 64);
  Request r;
  r.id = "window";
  r.kind = RequestKind::Score;
  r.prompt = tokens;
  r.score.window = 32;
  r.score.stride = 16;
  RequestResult res = run_one(*f.engine, std::move(r));
  ASSERT_TRUE(res.prompt_logprobs);
  const auto& lp = res.prompt_logprobs->token_logprobs;
  ASSERT_EQ(lp.size(), static_cast<size_t>(n));
  EXPECT_FALSE(lp[0]);
  for (int p = 1; p < n; ++p) ASSERT_TRUE(lp[p]) << p;
  for (int p = 1; p < 32; ++p)
    EXPECT_NEAR(*lp[p], pr["logprobs"]["token_logprobs"][p - 1].get<float>(), 1e-3);
  EXPECT_EQ(f.engine->stats().kv_blocks_used, 0);
}

INSTANTIATE_TEST_SUITE_P(Models, EngineConformance,
                         ::testing::Values("llama-tiny", "gpt2-tiny", "llama-tiny-bf16"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& ch : s) if (ch == '-') ch = '_';
                           return s;
                         });

}  // namespace
}  // namespace lmserve::engine::testing
