// Family loaders: every fixture model loads with the right shapes, GPT-2's Conv1D
// weights arrive transposed (c_attn as q/k/v row views), tied heads are owned once,
// missing or misshaped tensors name the file and tensor, and nothing leaks.
//
// The backend here is a recording host backend that implements only the loading
// calls, so these tests check the loaders and not any kernel.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include "engine/model/config.h"
#include "engine/model/families/family.h"
#include "engine/model/safetensors.h"

namespace lmserve::engine {
namespace {

namespace fs = std::filesystem;

float element_as_f32(const void* data, kernels::DType dtype, int64_t i) {
  switch (dtype) {
    case kernels::DType::F32: return static_cast<const float*>(data)[i];
    case kernels::DType::F16: return kernels::f16_to_f32(static_cast<const uint16_t*>(data)[i]);
    case kernels::DType::BF16: return kernels::bf16_to_f32(static_cast<const uint16_t*>(data)[i]);
  }
  return 0;
}

class RecordingBackend : public kernels::Backend {
 public:
  std::set<const void*> live;
  int matrices_loaded = 0;
  int vectors_loaded = 0;

  std::string name() const override { return "recording"; }
  void* allocate(size_t bytes) override {
    void* p = ::operator new(bytes);
    live.insert(p);
    return p;
  }
  void release(void* ptr) override {
    ASSERT_EQ(live.erase(ptr), 1u) << "release of memory not allocated here (or twice)";
    ::operator delete(ptr);
  }
  kernels::WeightMatrix load_matrix(const kernels::HostTensor& t, kernels::DType dtype,
                                    bool transpose) override {
    EXPECT_EQ(t.shape.size(), 2u) << t.name;
    EXPECT_EQ(dtype, t.dtype) << "the loader keeps the stored dtype here";
    const int64_t rows = t.shape[0], cols = t.shape[1];
    const size_t es = kernels::dtype_size(t.dtype);
    auto* dst = static_cast<uint8_t*>(allocate(static_cast<size_t>(rows * cols) * es));
    const auto* src = static_cast<const uint8_t*>(t.data);
    if (!transpose) {
      std::memcpy(dst, src, static_cast<size_t>(rows * cols) * es);
    } else {
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t c = 0; c < cols; ++c)
          std::memcpy(dst + (c * rows + r) * es, src + (r * cols + c) * es, es);
    }
    ++matrices_loaded;
    return {dst, t.dtype, transpose ? cols : rows, transpose ? rows : cols};
  }
  void release_weight(const kernels::WeightMatrix& w) override { release(const_cast<void*>(w.data)); }
  float* load_vector(const kernels::HostTensor& t) override {
    EXPECT_EQ(t.shape.size(), 1u) << t.name;
    auto* out = static_cast<float*>(allocate(static_cast<size_t>(t.numel()) * sizeof(float)));
    for (int64_t i = 0; i < t.numel(); ++i) out[i] = element_as_f32(t.data, t.dtype, i);
    ++vectors_loaded;
    return out;
  }

  // Not used by loading.
  [[noreturn]] static void unused() { throw std::logic_error("not a loading call"); }
  void upload(void*, const void*, size_t) override { unused(); }
  void download(void*, const void*, size_t) override { unused(); }
  void copy(void*, const void*, size_t) override { unused(); }
  void embedding(const kernels::WeightMatrix&, const int32_t*, int, float*, bool) override { unused(); }
  void linear(const float*, int, const kernels::WeightMatrix&, const float*, float*) override { unused(); }
  void add_norm(kernels::NormKind, float*, const float*, const float*, const float*, float, int, int,
                float*) override { unused(); }
  void add(float*, const float*, size_t) override { unused(); }
  void rotary(float*, int, int, int, int, int64_t, const int32_t*, const float*) override { unused(); }
  void gelu_new(float*, size_t) override { unused(); }
  void silu_mul(const float*, const float*, float*, size_t) override { unused(); }
  void allocate_kv_cache(const kernels::KvCacheShape&) override { unused(); }
  void release_kv_cache() override { unused(); }
  void kv_write(int, const float*, int64_t, const float*, int64_t, const kernels::AttentionBatch&) override {
    unused();
  }
  void attention(int, const float*, int64_t, int, float, const kernels::AttentionBatch&, float*) override {
    unused();
  }
  void copy_kv_blocks(std::span<const std::pair<int32_t, int32_t>>) override { unused(); }
  void gather_rows(const float*, int, const int32_t*, int, float*) override { unused(); }
};

std::string fixture(const std::string& name) { return std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name; }

float matrix_at(const kernels::WeightMatrix& w, int64_t r, int64_t c) {
  return element_as_f32(w.data, w.dtype, r * w.cols + c);
}
float host_at(const kernels::HostTensor& t, int64_t r, int64_t c) {
  return element_as_f32(t.data, t.dtype, r * t.shape[1] + c);
}

class FixtureWeightsTest : public ::testing::TestWithParam<const char*> {};

TEST_P(FixtureWeightsTest, LoadsWithExpectedLayoutAndReleasesEverything) {
  const std::string dir = fixture(GetParam());
  const ModelConfig config = load_model_config(dir);
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir);
  RecordingBackend backend;
  ModelWeights w = load_model_weights(ckpt, config, backend, ckpt.dominant_dtype());
  const int64_t H = config.hidden_size, I = config.intermediate_size, L = config.num_layers;
  ASSERT_EQ(w.layers.size(), static_cast<size_t>(L));
  EXPECT_EQ(w.embed_tokens.rows, config.vocab_size);
  EXPECT_EQ(w.embed_tokens.cols, H);
  EXPECT_EQ(w.lm_head.rows, config.vocab_size);
  EXPECT_NE(w.final_norm_weight, nullptr);
  EXPECT_EQ(static_cast<int64_t>(backend.live.size()),
            static_cast<int64_t>(w.owned_matrices.size() + w.owned_vectors.size()));
  const ParameterCount params = count_parameters(config);
  int64_t owned_matrix_elements = 0;
  for (const auto& m : w.owned_matrices) owned_matrix_elements += m.rows * m.cols;
  EXPECT_EQ(owned_matrix_elements, params.matrix_elements);

  const LayerWeights& l1 = w.layers[1];
  if (config.family == Family::Gpt2) {
    EXPECT_EQ(w.lm_head.data, w.embed_tokens.data);  // tied: one allocation
    EXPECT_EQ(w.embed_positions.rows, config.max_position_embeddings);
    EXPECT_EQ(w.owned_matrices.size(), static_cast<size_t>(2 + 4 * L));
    EXPECT_EQ(w.owned_vectors.size(), static_cast<size_t>(2 + 8 * L));
    // q/k/v: consecutive row ranges of one transposed [3H, H] c_attn.
    EXPECT_EQ(l1.q.rows, H);
    EXPECT_EQ(l1.q.cols, H);
    const size_t es = kernels::dtype_size(l1.q.dtype);
    EXPECT_EQ(static_cast<const uint8_t*>(l1.k.data), static_cast<const uint8_t*>(l1.q.data) + H * H * es);
    EXPECT_EQ(static_cast<const uint8_t*>(l1.v.data), static_cast<const uint8_t*>(l1.q.data) + 2 * H * H * es);
    EXPECT_EQ(l1.k_bias, l1.q_bias + H);
    EXPECT_EQ(l1.v_bias, l1.q_bias + 2 * H);
    // Transposition: k[r][c] is the stored c_attn[c][H + r].
    const kernels::HostTensor c_attn = ckpt.get("transformer.h.1.attn.c_attn.weight");
    for (int64_t r : {int64_t{0}, int64_t{5}, H - 1})
      for (int64_t c : {int64_t{0}, int64_t{3}, H - 1})
        EXPECT_EQ(matrix_at(l1.k, r, c), host_at(c_attn, c, H + r));
    const kernels::HostTensor c_fc = ckpt.get("transformer.h.1.mlp.c_fc.weight");
    EXPECT_EQ(l1.up.rows, I);
    EXPECT_EQ(l1.up.cols, H);
    EXPECT_EQ(matrix_at(l1.up, I - 1, 2), host_at(c_fc, 2, I - 1));
    EXPECT_EQ(l1.down.rows, H);
    EXPECT_EQ(l1.down.cols, I);
    EXPECT_EQ(l1.gate.data, nullptr);
    const kernels::HostTensor bias = ckpt.get("transformer.h.1.attn.c_attn.bias");
    EXPECT_EQ(l1.v_bias[3], element_as_f32(bias.data, bias.dtype, 2 * H + 3));
    EXPECT_NE(l1.attn_norm_bias, nullptr);
  } else {
    EXPECT_NE(w.lm_head.data, w.embed_tokens.data);  // untied fixture
    EXPECT_EQ(w.embed_positions.data, nullptr);
    EXPECT_EQ(w.owned_matrices.size(), static_cast<size_t>(2 + 7 * L));
    EXPECT_EQ(w.owned_vectors.size(), static_cast<size_t>(1 + 2 * L));
    EXPECT_EQ(l1.q.rows, config.q_dim());
    EXPECT_EQ(l1.k.rows, config.kv_dim());
    EXPECT_EQ(l1.k.cols, H);
    EXPECT_EQ(l1.o.cols, config.q_dim());
    EXPECT_EQ(l1.gate.rows, I);
    EXPECT_EQ(l1.down.cols, I);
    EXPECT_EQ(l1.q_bias, nullptr);
    EXPECT_EQ(l1.attn_norm_bias, nullptr);
    const kernels::HostTensor k = ckpt.get("model.layers.1.self_attn.k_proj.weight");
    EXPECT_EQ(matrix_at(l1.k, 7, 9), host_at(k, 7, 9));  // stored [out, in] as is
  }
  release_model_weights(w, backend);
  EXPECT_TRUE(backend.live.empty());
  EXPECT_TRUE(w.layers.empty());
  EXPECT_NO_THROW(check_model_weights(ckpt, config));
}

INSTANTIATE_TEST_SUITE_P(AllFixtures, FixtureWeightsTest,
                         ::testing::Values("gpt2-tiny", "gpt2-tiny-f16", "gpt2-tiny-bf16", "llama-tiny",
                                           "llama-tiny-f16", "llama-tiny-bf16"));

// A small llama-style checkpoint whose tensor list can be tampered with.
class BrokenCheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lmserve_wt_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    config_.model_type = "llama";
    config_.family = Family::Llama;
    config_.vocab_size = 10;
    config_.hidden_size = 8;
    config_.num_layers = 1;
    config_.num_heads = 2;
    config_.num_kv_heads = 1;
    config_.head_dim = 4;
    config_.intermediate_size = 12;
    config_.tie_word_embeddings = true;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::vector<SafetensorsWriter::Tensor> tensors() const {
    const int64_t H = 8, V = 10, I = 12, Q = 8, KV = 4;
    using kernels::DType;
    return {{"model.embed_tokens.weight", DType::F32, {V, H}},
            {"model.layers.0.input_layernorm.weight", DType::F32, {H}},
            {"model.layers.0.self_attn.q_proj.weight", DType::F32, {Q, H}},
            {"model.layers.0.self_attn.k_proj.weight", DType::F32, {KV, H}},
            {"model.layers.0.self_attn.v_proj.weight", DType::F32, {KV, H}},
            {"model.layers.0.self_attn.o_proj.weight", DType::F32, {H, Q}},
            {"model.layers.0.post_attention_layernorm.weight", DType::F32, {H}},
            {"model.layers.0.mlp.gate_proj.weight", DType::F32, {I, H}},
            {"model.layers.0.mlp.up_proj.weight", DType::F32, {I, H}},
            {"model.layers.0.mlp.down_proj.weight", DType::F32, {H, I}},
            {"model.norm.weight", DType::F32, {H}}};
  }
  std::string write(const std::vector<SafetensorsWriter::Tensor>& list) {
    const std::string path = (dir_ / "model.safetensors").string();
    SafetensorsWriter w(path, list);
    for (const auto& t : list) {
      int64_t n = 1;
      for (int64_t d : t.shape) n *= d;
      const std::vector<float> zeros(static_cast<size_t>(n), 0.25f);
      w.append(zeros.data(), zeros.size() * sizeof(float));
    }
    w.finish();
    return path;
  }
  std::string load_error() {
    const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(dir_.string());
    try {
      ModelWeights w = load_model_weights(ckpt, config_, backend_, kernels::DType::F32);
      release_model_weights(w, backend_);
    } catch (const std::runtime_error& e) {
      EXPECT_TRUE(backend_.live.empty()) << "partial load leaked";
      return e.what();
    }
    return "";
  }
  fs::path dir_;
  ModelConfig config_;
  RecordingBackend backend_;
};

TEST_F(BrokenCheckpointTest, CompleteCheckpointLoadsTied) {
  write(tensors());
  EXPECT_EQ(load_error(), "");
  EXPECT_TRUE(backend_.live.empty());
  EXPECT_EQ(backend_.matrices_loaded, 8);  // lm_head is embed_tokens
}

TEST_F(BrokenCheckpointTest, MissingTensorNamesFileAndTensor) {
  auto list = tensors();
  list.erase(list.begin() + 8);  // up_proj
  const std::string path = write(list);
  EXPECT_EQ(load_error(), path + ": missing tensor model.layers.0.mlp.up_proj.weight");
  EXPECT_GT(backend_.matrices_loaded, 0);  // it failed midway, and released what it had
}

TEST_F(BrokenCheckpointTest, MisshapedTensorNamesFileAndTensor) {
  auto list = tensors();
  list[3].shape = {8, 8};  // k_proj as if there were no GQA
  const std::string path = write(list);
  EXPECT_EQ(load_error(), path + ": tensor model.layers.0.self_attn.k_proj.weight has shape [8, 8], expected [4, 8]");
}

TEST_F(BrokenCheckpointTest, ShapeOnlyCheckFindsTheSameFaults) {
  auto list = tensors();
  write(list);
  const SafetensorsCheckpoint good = SafetensorsCheckpoint::open(dir_.string());
  EXPECT_NO_THROW(check_model_weights(good, config_));
  list[3].shape = {8, 8};
  const std::string path = write(list);
  const SafetensorsCheckpoint bad = SafetensorsCheckpoint::open(dir_.string());
  try {
    check_model_weights(bad, config_);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()),
              path + ": tensor model.layers.0.self_attn.k_proj.weight has shape [8, 8], expected [4, 8]");
  }
}

TEST_F(BrokenCheckpointTest, UntiedNeedsLmHead) {
  const std::string path = write(tensors());
  config_.tie_word_embeddings = false;
  EXPECT_EQ(load_error(), path + ": missing tensor lm_head.weight");
}

TEST_F(BrokenCheckpointTest, AcceptsNamesWithoutModelPrefix) {
  auto list = tensors();
  for (auto& t : list) t.name = t.name.substr(std::string("model.").size());
  write(list);
  EXPECT_EQ(load_error(), "");
}

TEST_F(BrokenCheckpointTest, QkvBiasesRequiredWhenConfigured) {
  const std::string path = write(tensors());
  config_.qkv_bias = true;
  EXPECT_EQ(load_error(), path + ": missing tensor model.layers.0.self_attn.q_proj.bias");
}

TEST(Gpt2PrefixTest, AcceptsNamesWithoutTransformerPrefix) {
  // Re-save the gpt2-tiny fixture with "h.0..." names.
  const std::string src = fixture("gpt2-tiny");
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open(src);
  const fs::path dir = fs::temp_directory_path() / ("lmserve_wt_gpt2_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::vector<SafetensorsWriter::Tensor> list;
  for (const std::string& name : ckpt.names()) {
    const kernels::HostTensor t = ckpt.get(name);
    list.push_back({name.starts_with("transformer.") ? name.substr(12) : name, t.dtype, t.shape});
  }
  {
    SafetensorsWriter w((dir / "model.safetensors").string(), list);
    for (const std::string& name : ckpt.names()) {
      const kernels::HostTensor t = ckpt.get(name);
      w.append(t.data, static_cast<size_t>(t.numel()) * kernels::dtype_size(t.dtype));
    }
    w.finish();
  }
  const ModelConfig config = load_model_config(src);
  const SafetensorsCheckpoint bare = SafetensorsCheckpoint::open(dir.string());
  EXPECT_TRUE(bare.contains("h.0.attn.c_attn.weight"));
  RecordingBackend backend;
  ModelWeights w = load_model_weights(bare, config, backend, kernels::DType::F32);
  EXPECT_EQ(w.layers.size(), 2u);
  release_model_weights(w, backend);
  EXPECT_TRUE(backend.live.empty());
  fs::remove_all(dir);
}

}  // namespace
}  // namespace lmserve::engine

namespace lmserve::engine {
namespace {

// What lmserve-make-random-model writes loads back, with the promised statistics,
// and the same seed gives the same bytes whatever the thread count.
class RandomModelRoundTrip : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lmserve_rand_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  void make(const std::string& out, const std::string& args) {
    const std::string cmd = std::string(LMSERVE_BINARY_DIR) + "/tools/lmserve-make-random-model --out " +
                            (dir_ / out).string() + " " + args + " 2>/dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  std::string bytes(const std::string& out) {
    std::ifstream in(dir_ / out / "model.safetensors", std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
  }
  fs::path dir_;
};

TEST_F(RandomModelRoundTrip, LlamaLoadsBackWithExpectedStatistics) {
  make("a", "--family llama --vocab 300 --hidden 64 --layers 2 --heads 4 --kv-heads 2 "
            "--intermediate 96 --max-positions 128 --dtype bf16 --seed 7 --threads 1");
  const ModelConfig config = load_model_config((dir_ / "a").string());
  EXPECT_EQ(config.num_kv_heads, 2);
  EXPECT_EQ(config.torch_dtype, kernels::DType::BF16);
  const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open((dir_ / "a").string());
  EXPECT_EQ(ckpt.dominant_dtype(), kernels::DType::BF16);
  RecordingBackend backend;
  ModelWeights w = load_model_weights(ckpt, config, backend, kernels::DType::BF16);
  EXPECT_NE(w.lm_head.data, w.embed_tokens.data);
  for (int i = 0; i < 64; ++i) EXPECT_EQ(w.layers[1].mlp_norm_weight[i], 1.0f);
  double sum = 0, sum_sq = 0;
  const int64_t n = w.embed_tokens.rows * w.embed_tokens.cols;
  for (int64_t i = 0; i < n; ++i) {
    const double x = element_as_f32(w.embed_tokens.data, w.embed_tokens.dtype, i);
    sum += x;
    sum_sq += x * x;
  }
  EXPECT_NEAR(sum / n, 0.0, 0.001);
  EXPECT_NEAR(std::sqrt(sum_sq / n), 0.02, 0.001);
  release_model_weights(w, backend);

  // Deterministic, and independent of the thread count.
  make("b", "--family llama --vocab 300 --hidden 64 --layers 2 --heads 4 --kv-heads 2 "
            "--intermediate 96 --max-positions 128 --dtype bf16 --seed 7 --threads 3");
  EXPECT_EQ(bytes("a"), bytes("b"));
  make("c", "--family llama --vocab 300 --hidden 64 --layers 2 --heads 4 --kv-heads 2 "
            "--intermediate 96 --max-positions 128 --dtype bf16 --seed 8");
  EXPECT_NE(bytes("a"), bytes("c"));
}

TEST_F(RandomModelRoundTrip, Gpt2AndTiedLlamaLoadBack) {
  make("g", "--family gpt2 --vocab 100 --hidden 32 --layers 1 --heads 2 --intermediate 128 "
            "--max-positions 64 --dtype f16");
  make("t", "--family llama --vocab 100 --hidden 32 --layers 1 --heads 2 --intermediate 48 --tie --dtype f32");
  for (const char* name : {"g", "t"}) {
    const ModelConfig config = load_model_config((dir_ / name).string());
    const SafetensorsCheckpoint ckpt = SafetensorsCheckpoint::open((dir_ / name).string());
    RecordingBackend backend;
    ModelWeights w = load_model_weights(ckpt, config, backend, ckpt.dominant_dtype());
    EXPECT_EQ(w.lm_head.data, w.embed_tokens.data) << name;
    EXPECT_EQ(w.layers.size(), 1u);
    release_model_weights(w, backend);
    EXPECT_TRUE(backend.live.empty());
  }
  EXPECT_EQ(load_model_config((dir_ / "g").string()).intermediate_size, 128);
}

TEST_F(RandomModelRoundTrip, RejectsBadArguments) {
  const std::string tool = std::string(LMSERVE_BINARY_DIR) + "/tools/lmserve-make-random-model";
  for (const char* args : {"--family t5", "--dtype f64", "--hidden 30 --heads 4", "--family gpt2 --kv-heads 2"}) {
    const std::string cmd = tool + " --out " + (dir_ / "x").string() + " " + args + " 2>/dev/null";
    EXPECT_NE(std::system(cmd.c_str()), 0) << args;
  }
}

}  // namespace
}  // namespace lmserve::engine
