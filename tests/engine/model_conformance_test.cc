// The forward pass against the conformance fixtures: top-20 logits at every position and
// the full last-position logits of every prompt, for every model (f32, f16, bf16
// weights), within the README's float32 tolerance; plus the two invariants the engine
// relies on: prefill-then-decode equals one full pass, and a sequence's logits do not
// depend on what else is in its batch.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"
#include "engine/model/model.h"
#include "tests/engine/npy.h"

namespace lmserve::engine {
namespace {

constexpr float kLogitTolerance = 1e-3f;
const char* const kModels[] = {"gpt2-tiny", "gpt2-tiny-f16", "gpt2-tiny-bf16",
                               "llama-tiny", "llama-tiny-f16", "llama-tiny-bf16"};

std::string model_dir(const std::string& name) {
  return std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name;
}

nlohmann::json read_golden(const std::string& name) {
  std::ifstream in(model_dir(name) + "/golden.json");
  return nlohmann::json::parse(in);
}

// A model with a KV cache, and helpers to run sequences through it.
class Runner {
 public:
  explicit Runner(const std::string& name, int threads = 0)
      : backend_(kernels::make_backend("cpu", {threads, 0})),
        model_(Model::load(model_dir(name), *backend_)),
        pool_(256, 16) {
    model_->allocate_kv_cache(pool_.num_blocks(), pool_.block_size());
  }
  Model& model() { return *model_; }
  BlockPool& pool() { return pool_; }
  int vocab() const { return model_->config().vocab_size; }

  // Logits at every position of `tokens`, from one prefill.
  std::vector<std::vector<float>> all_logits(const std::vector<int32_t>& tokens) {
    BlockTable table(&pool_);
    std::vector<BlockCopy> copies;
    EXPECT_TRUE(table.append_slots(static_cast<int>(tokens.size()), &copies));
    SequenceChunk chunk{tokens, 0, table.blocks(), OutputRows::All};
    const int rows = model_->forward(std::span<const SequenceChunk>(&chunk, 1));
    return download(rows);
  }

  std::vector<std::vector<float>> download(int rows) {
    std::vector<std::vector<float>> out(rows, std::vector<float>(vocab()));
    for (int r = 0; r < rows; ++r) model_->logits(r, r + 1, out[r].data());
    return out;
  }

 private:
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<Model> model_;
  BlockPool pool_;
};

std::vector<int32_t> tokens_of(const nlohmann::json& prompt) {
  return prompt.at("tokens").get<std::vector<int32_t>>();
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

class ModelConformance : public ::testing::TestWithParam<const char*> {};

TEST_P(ModelConformance, TopLogitsAtEveryPositionAndFullLastLogits) {
  const std::string name = GetParam();
  const nlohmann::json golden = read_golden(name);
  const NpyArray last = read_npy(model_dir(name) + "/last_logits.npy");
  Runner runner(name);
  ASSERT_EQ(last.shape.at(1), static_cast<size_t>(runner.vocab()));

  for (const auto& prompt : golden.at("prompts")) {
    const auto tokens = tokens_of(prompt);
    const auto logits = runner.all_logits(tokens);
    ASSERT_EQ(logits.size(), tokens.size());
    const auto& top_ids = prompt.at("top_ids");
    const auto& top_logits = prompt.at("top_logits");
    for (size_t pos = 0; pos < tokens.size(); ++pos) {
      // Compare by id and value, not rank: near-equal entries may swap places.
      for (size_t j = 0; j < top_ids[pos].size(); ++j) {
        const int id = top_ids[pos][j].get<int>();
        const float expected = top_logits[pos][j].get<float>();
        ASSERT_NEAR(logits[pos][id], expected, kLogitTolerance)
            << name << " prompt " << prompt.at("index") << " position " << pos << " id " << id;
      }
    }
    const size_t row = prompt.at("last_logits_row").get<size_t>();
    const float* expected_row = last.data.data() + row * last.shape[1];
    const std::vector<float> expected(expected_row, expected_row + last.shape[1]);
    EXPECT_LT(max_abs_diff(logits.back(), expected), kLogitTolerance)
        << name << " prompt " << prompt.at("index") << " last-position logits";
  }
}

TEST_P(ModelConformance, PrefillThenDecodeEqualsFullForward) {
  const std::string name = GetParam();
  const nlohmann::json golden = read_golden(name);
  Runner runner(name);
  std::vector<int32_t> tokens;
  for (const auto& p : golden.at("prompts")) {
    if (p.at("tokens").size() > tokens.size()) tokens = tokens_of(p);
  }
  ASSERT_GE(tokens.size(), 4u);
  const auto full = runner.all_logits(tokens);

  // Prefill half the prompt, then feed the rest one token at a time.
  BlockTable table(&runner.pool());
  std::vector<BlockCopy> copies;
  const int half = static_cast<int>(tokens.size()) / 2;
  ASSERT_TRUE(table.append_slots(half, &copies));
  std::vector<int32_t> head(tokens.begin(), tokens.begin() + half);
  SequenceChunk prefill{head, 0, table.blocks(), OutputRows::Last};
  ASSERT_EQ(runner.model().forward(std::span<const SequenceChunk>(&prefill, 1)), 1);
  auto step_logits = runner.download(1);
  EXPECT_LT(max_abs_diff(step_logits[0], full[half - 1]), 1e-4f);
  for (size_t pos = half; pos < tokens.size(); ++pos) {
    ASSERT_TRUE(table.append_slots(1, &copies));
    const std::vector<int32_t> one{tokens[pos]};
    SequenceChunk decode{one, static_cast<int>(pos), table.blocks(), OutputRows::Last};
    ASSERT_EQ(runner.model().forward(std::span<const SequenceChunk>(&decode, 1)), 1);
    step_logits = runner.download(1);
    EXPECT_LT(max_abs_diff(step_logits[0], full[pos]), 1e-4f) << name << " position " << pos;
  }
  EXPECT_TRUE(copies.empty());
}

TEST_P(ModelConformance, BatchOfFourGivesEachSequenceItsOwnLogits) {
  const std::string name = GetParam();
  const nlohmann::json golden = read_golden(name);
  Runner runner(name);
  const auto& prompts = golden.at("prompts");
  ASSERT_GE(prompts.size(), 4u);

  std::vector<std::vector<int32_t>> seqs;
  std::vector<std::vector<std::vector<float>>> alone;
  for (int i = 0; i < 4; ++i) {
    auto t = tokens_of(prompts[i]);
    t.resize(std::max<size_t>(1, t.size() - i));  // make the lengths differ
    alone.push_back(runner.all_logits(t));
    seqs.push_back(std::move(t));
  }
  std::vector<BlockTable> tables;
  std::vector<SequenceChunk> chunks;
  std::vector<BlockCopy> copies;
  for (const auto& t : seqs) {
    tables.emplace_back(&runner.pool());
    ASSERT_TRUE(tables.back().append_slots(static_cast<int>(t.size()), &copies));
  }
  for (size_t i = 0; i < seqs.size(); ++i) {
    chunks.push_back({seqs[i], 0, tables[i].blocks(), OutputRows::All});
  }
  const int rows = runner.model().forward(chunks);
  const auto batched = runner.download(rows);
  size_t row = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    for (size_t pos = 0; pos < seqs[i].size(); ++pos, ++row) {
      // Kernels are batch-invariant, so the batched result is the same to the bit.
      EXPECT_EQ(max_abs_diff(batched[row], alone[i][pos]), 0.0f) << "sequence " << i << " position " << pos;
    }
  }
  EXPECT_EQ(row, batched.size());
}

INSTANTIATE_TEST_SUITE_P(AllFixtureModels, ModelConformance, ::testing::ValuesIn(kModels),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n) if (c == '-') c = '_';
                           return n;
                         });

TEST(ModelInput, RejectsTokenIdsOutsideTheVocabulary) {
  Runner runner("llama-tiny");
  BlockTable table(&runner.pool());
  std::vector<BlockCopy> copies;
  ASSERT_TRUE(table.append_slots(2, &copies));
  const std::vector<int32_t> bad{5, runner.vocab()};
  SequenceChunk chunk{bad, 0, table.blocks(), OutputRows::Last};
  EXPECT_THROW(runner.model().forward(std::span<const SequenceChunk>(&chunk, 1)), std::invalid_argument);
}

TEST(ModelInput, RejectsPositionsPastLearnedPositionEmbeddings) {
  Runner runner("gpt2-tiny");
  const int max_pos = runner.model().config().max_position_embeddings;
  BlockTable table(&runner.pool());
  std::vector<BlockCopy> copies;
  ASSERT_TRUE(table.append_slots(max_pos + 1, &copies));
  std::vector<int32_t> one{1};
  SequenceChunk chunk{one, max_pos, table.blocks(), OutputRows::Last};
  EXPECT_THROW(runner.model().forward(std::span<const SequenceChunk>(&chunk, 1)), std::invalid_argument);
}

}  // namespace
}  // namespace lmserve::engine
