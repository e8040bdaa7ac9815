// Beam search on the fixture models against golden.json (ids and order exact, score and
// sum_logprobs within abs 1e-3, steps_run), driving Model + paged KV cache directly; and
// the KV-sharing property: beams over a 200-token prompt store the prompt's blocks once.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "tests/engine/decode_driver.h"

namespace lmserve::engine {
namespace {

constexpr double kScoreTolerance = 1e-3;

class BeamSearchConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(BeamSearchConformance, MatchesGoldenRuns) {
  const std::string model = GetParam();
  const nlohmann::json golden = test::load_golden(model);
  test::DecodeDriver driver(model);
  int runs = 0, eos_hypotheses = 0;
  for (const auto& prompt : golden.at("prompts")) {
    const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
    for (const auto& run : prompt.at("beam_search")) {
      SCOPED_TRACE(model + " prompt " + std::to_string(prompt.at("index").get<int>()) + " lp " +
                   run.at("length_penalty").dump() + " eos " + run.at("eos_token_id").dump());
      SamplingParams p;
      p.use_beam_search = true;
      p.num_beams = run.at("num_beams").get<int>();
      p.n = run.at("num_return_sequences").get<int>();
      p.max_tokens = run.at("max_new_tokens").get<int>();
      p.length_penalty = run.at("length_penalty").get<float>();
      p.early_stopping = run.at("early_stopping").get<bool>();
      std::vector<int32_t> eos;
      if (!run.at("eos_token_id").is_null()) eos.push_back(run.at("eos_token_id").get<int32_t>());
      validate_sampling_params(p, static_cast<int>(tokens.size()),
                               driver.model().config().max_position_embeddings, driver.vocab());

      const test::BeamRun got = test::run_beam_search(driver, tokens, p, eos, [](auto&) {});
      const auto& expected = run.at("sequences");
      ASSERT_EQ(got.hypotheses.size(), expected.size());
      EXPECT_EQ(got.steps_run, run.at("steps_run").get<int>());
      EXPECT_EQ(got.steps_run < p.max_tokens, run.at("stopped_early").get<bool>());
      for (size_t i = 0; i < expected.size(); ++i) {
        const BeamHypothesis& h = got.hypotheses[i];
        const auto& e = expected[i];
        EXPECT_EQ(h.tokens, e.at("tokens").get<std::vector<int32_t>>()) << "rank " << i;
        EXPECT_NEAR(h.score, e.at("score").get<double>(), kScoreTolerance) << "rank " << i;
        EXPECT_NEAR(h.sum_logprobs, e.at("sum_logprobs").get<double>(), kScoreTolerance) << "rank " << i;
        EXPECT_EQ(static_cast<int>(h.tokens.size()), e.at("generated_len").get<int>()) << "rank " << i;
        EXPECT_EQ(h.finished_by_eos, e.at("finished_by_eos").get<bool>()) << "rank " << i;
        eos_hypotheses += h.finished_by_eos;
      }
      ++runs;
    }
    EXPECT_EQ(driver.pool().num_used(), 0) << "beam tables leaked blocks";
  }
  EXPECT_EQ(runs, 3 * static_cast<int>(golden.at("prompts").size()));
  EXPECT_GT(eos_hypotheses, 0) << "the golden runs are meant to finish some beams by EOS";
}

INSTANTIATE_TEST_SUITE_P(Models, BeamSearchConformance, ::testing::ValuesIn(test::golden_model_names()),
                         [](const auto& info) {
                           std::string name = info.param;
                           std::replace(name.begin(), name.end(), '-', '_');
                           return name;
                         });

TEST(BeamSearchKvSharing, WidthFourOverA200TokenPromptStoresThePromptOnce) {
  test::DecodeDriver driver("llama-tiny", /*num_blocks=*/256, /*block_size=*/16);
  std::mt19937 rng(2026);
  std::uniform_int_distribution<int32_t> id(0, driver.vocab() - 1);
  std::vector<int32_t> prompt(200);
  for (int32_t& t : prompt) t = id(rng);

  SamplingParams p;
  p.use_beam_search = true;
  p.num_beams = 4;
  p.n = 4;
  p.max_tokens = 12;
  const int block_size = driver.pool().block_size();
  const int prompt_blocks = (200 + block_size - 1) / block_size;  // 13
  const int full_prompt_blocks = 200 / block_size;               // 12, never written again

  const uint64_t before = driver.pool().total_allocations();
  std::vector<int32_t> shared_blocks;
  uint64_t after_prefill = 0;
  int steps_checked = 0;
  const test::BeamRun run = test::run_beam_search(driver, prompt, p, {}, [&](std::vector<BlockTable>& tables) {
    if (shared_blocks.empty()) {
      after_prefill = before + prompt_blocks;
      shared_blocks.assign(tables[0].blocks().begin(), tables[0].blocks().begin() + full_prompt_blocks);
    }
    for (const BlockTable& t : tables) {
      ASSERT_TRUE(std::equal(shared_blocks.begin(), shared_blocks.end(), t.blocks().begin()))
          << "a beam holds a private copy of a full prompt block";
    }
    for (int32_t b : shared_blocks) {
      ASSERT_EQ(driver.pool().ref_count(b), static_cast<int>(tables.size()));
    }
    ++steps_checked;
  });
  EXPECT_EQ(run.hypotheses.size(), 4u);
  EXPECT_EQ(steps_checked, p.max_tokens - 1);
  const uint64_t during_search = driver.pool().total_allocations() - after_prefill;
  // Each beam's step allocates at most one block (a copy of a shared partial block or a
  // fresh one); recomputing or copying the prompt per beam would take 13 blocks a beam.
  EXPECT_LE(during_search, static_cast<uint64_t>(p.num_beams * (p.max_tokens - 1)));
  std::printf("beam width 4 over 200 tokens: %d prompt blocks allocated once, %llu blocks during %d steps\n",
              prompt_blocks, static_cast<unsigned long long>(during_search), run.steps_run);
  EXPECT_EQ(driver.pool().num_used(), 0);
}

}  // namespace
}  // namespace lmserve::engine
