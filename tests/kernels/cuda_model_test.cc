// The conformance models end to end on the CUDA backend against the CPU backend: logits
// at every prompt position, greedy continuations, a context long enough for split
// (flash-decoding) attention, and batch invariance across sequences. Skips with a
// message when no CUDA device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"
#include "engine/model/model.h"
#include "kernels/backend.h"

namespace lmserve::engine {
namespace {

// Both backends compute in float32 on the same weights; only summation order differs.
constexpr float kLogitTolerance = 1e-3f;
constexpr int kGreedySteps = 8;
const char* const kModels[] = {"gpt2-tiny", "gpt2-tiny-f16", "gpt2-tiny-bf16",
                               "llama-tiny", "llama-tiny-f16", "llama-tiny-bf16"};

std::string model_dir(const std::string& name) {
  return std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name;
}

std::vector<std::vector<int32_t>> golden_prompts(const std::string& name) {
  std::ifstream in(model_dir(name) + "/golden.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& p : golden.at("prompts")) prompts.push_back(p.at("tokens").get<std::vector<int32_t>>());
  return prompts;
}

// A model on one backend with its own block pool. Weights are held in their stored
// dtype on both backends ("f32" for the F32 checkpoints, which CUDA would otherwise
// round to f16), so the two runs see the same numbers.
class Runner {
 public:
  Runner(const std::string& device, const std::string& name)
      : backend_(kernels::make_backend(device, {})), pool_(256, 16) {
    LoadOptions options;
    if (name.find("-f16") == std::string::npos && name.find("-bf16") == std::string::npos)
      options.dtype = "f32";
    model_ = Model::load(model_dir(name), *backend_, options);
    model_->allocate_kv_cache(pool_.num_blocks(), pool_.block_size());
  }
  int vocab() const { return model_->config().vocab_size; }

  // Runs the chunks (one per sequence; tables grow to cover them) and returns the logits
  // of every output row.
  std::vector<std::vector<float>> step(std::vector<BlockTable>& seq_tables,
                                       const std::vector<std::vector<int32_t>>& tokens,
                                       const std::vector<int>& start, OutputRows rows) {
    std::vector<SequenceChunk> chunks;
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::vector<BlockCopy> copies;
      EXPECT_TRUE(seq_tables[i].append_slots(static_cast<int>(tokens[i].size()), &copies));
      chunks.push_back(SequenceChunk{tokens[i], start[i], seq_tables[i].blocks(), rows});
    }
    const int n = model_->forward(chunks);
    std::vector<std::vector<float>> out(n, std::vector<float>(vocab()));
    for (int r = 0; r < n; ++r) model_->logits(r, r + 1, out[r].data());
    return out;
  }
  BlockPool& pool() { return pool_; }

 private:
  std::unique_ptr<kernels::Backend> backend_;
  BlockPool pool_;
  std::unique_ptr<Model> model_;
};

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  float worst = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) {
    const float d = std::fabs(a[i] - b[i]);
    if (!(d <= worst)) worst = d;  // NaN propagates as a failure
  }
  return worst;
}

// BlockTable is move-only, so no initializer lists.
std::vector<BlockTable> tables(BlockPool& pool, int count) {
  std::vector<BlockTable> t;
  for (int i = 0; i < count; ++i) t.emplace_back(&pool);
  return t;
}

int32_t argmax(const std::vector<float>& v) {
  return static_cast<int32_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

class CudaModel : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    if (!kernels::cuda_available())
      GTEST_SKIP() << "no CUDA device present: the cuda model tests are skipped";
  }
};

// Every prompt position's logits, then greedy decoding step by step on both backends.
TEST_P(CudaModel, PrefillAndGreedyDecodeMatchCpu) {
  const std::string name = GetParam();
  Runner cpu("cpu", name);
  Runner gpu("cuda", name);
  for (const auto& prompt : golden_prompts(name)) {
    SCOPED_TRACE(name + " prompt of " + std::to_string(prompt.size()) + " tokens");
    auto cpu_table = tables(cpu.pool(), 1);
    auto gpu_table = tables(gpu.pool(), 1);
    auto want = cpu.step(cpu_table, {prompt}, {0}, OutputRows::All);
    auto got = gpu.step(gpu_table, {prompt}, {0}, OutputRows::All);
    ASSERT_EQ(got.size(), want.size());
    for (size_t r = 0; r < got.size(); ++r)
      ASSERT_LE(max_abs_diff(got[r], want[r]), kLogitTolerance) << "position " << r;

    int pos = static_cast<int>(prompt.size());
    int32_t next = argmax(want.back());
    for (int s = 0; s < kGreedySteps; ++s, ++pos) {
      ASSERT_EQ(argmax(got.back()), next) << "greedy step " << s;
      want = cpu.step(cpu_table, {{next}}, {pos}, OutputRows::Last);
      got = gpu.step(gpu_table, {{next}}, {pos}, OutputRows::Last);
      ASSERT_LE(max_abs_diff(got.back(), want.back()), kLogitTolerance) << "greedy step " << s;
      next = argmax(want.back());
    }
    cpu_table[0].release();
    gpu_table[0].release();
  }
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaModel, ::testing::ValuesIn(kModels),
                         [](const auto& info) {
                           std::string s = info.param;
                           std::replace(s.begin(), s.end(), '-', '_');
                           return s;
                         });

class CudaModelLong : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!kernels::cuda_available())
      GTEST_SKIP() << "no CUDA device present: the cuda model tests are skipped";
  }
};

// 450 positions: longer than one attention split (256), so decode and the last prefill
// rows go through the split-K pass and its combine kernel.
TEST_F(CudaModelLong, LongContextMatchesCpu) {
  const std::string name = "llama-tiny-f16";
  Runner cpu("cpu", name);
  Runner gpu("cuda", name);
  std::mt19937 rng(7);
  std::vector<int32_t> prompt(450);
  for (auto& t : prompt) t = std::uniform_int_distribution<int32_t>(3, cpu.vocab() - 1)(rng);
  auto cpu_table = tables(cpu.pool(), 1);
  auto gpu_table = tables(gpu.pool(), 1);
  const auto want = cpu.step(cpu_table, {prompt}, {0}, OutputRows::All);
  const auto got = gpu.step(gpu_table, {prompt}, {0}, OutputRows::All);
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r < got.size(); r += 37)
    ASSERT_LE(max_abs_diff(got[r], want[r]), kLogitTolerance) << "position " << r;
  ASSERT_LE(max_abs_diff(got.back(), want.back()), kLogitTolerance);
  const int32_t next = argmax(want.back());
  const auto cpu_step = cpu.step(cpu_table, {{next}}, {450}, OutputRows::Last);
  const auto gpu_step = gpu.step(gpu_table, {{next}}, {450}, OutputRows::Last);
  EXPECT_LE(max_abs_diff(gpu_step.back(), cpu_step.back()), kLogitTolerance);
}

// A sequence's logits are the same bits alone or batched with others (decode and
// prefill rows mixed in one step), which is what makes seeded sampling reproducible.
TEST_F(CudaModelLong, SequenceLogitsDoNotDependOnTheBatch) {
  const std::string name = "llama-tiny-bf16";
  Runner gpu("cuda", name);
  const auto prompts = golden_prompts(name);
  const std::vector<int32_t>& a = prompts.back();
  const std::vector<int32_t>& b = prompts[prompts.size() / 2];

  auto alone = tables(gpu.pool(), 1);
  const auto solo = gpu.step(alone, {a}, {0}, OutputRows::Last);
  alone[0].release();

  auto both = tables(gpu.pool(), 2);
  const auto batched = gpu.step(both, {b, a}, {0, 0}, OutputRows::Last);
  ASSERT_EQ(batched.size(), 2u);
  EXPECT_EQ(0, std::memcmp(solo[0].data(), batched[1].data(), solo[0].size() * sizeof(float)))
      << "a prompt's last logits changed when another prompt shared the step";
  both[0].release();
  both[1].release();
}

}  // namespace
}  // namespace lmserve::engine
