// lmserve-make-random-model: writes a Hugging Face model folder (config.json +
// model.safetensors) with random weights, for benchmarks and tests of any size.
//
// Weights are normal(0, 0.02) (norm weights 1, biases 0, as transformers initializes
// them), generated in fixed 1 Mi-element chunks, each from its own seed derived from
// (--seed, tensor, chunk): the output is the same whatever the thread count. Chunks
// are generated in parallel and written in order, so a 1B model takes seconds.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include "engine/model/config.h"
#include "engine/model/families/family.h"
#include "engine/model/safetensors.h"

namespace {

using lmserve::engine::SafetensorsWriter;
using lmserve::kernels::DType;

struct Options {
  std::string out;
  std::string family = "llama";
  int vocab = 32000;
  int hidden = 768;
  int layers = 12;
  int heads = 12;
  int kv_heads = 0;  // 0: = heads
  int intermediate = 2048;
  int max_positions = 2048;
  std::string dtype = "f32";
  uint64_t seed = 1;
  bool tie = false;
  double rope_theta = 10000.0;
  int threads = 0;
};

enum class Init : uint8_t { Normal, Ones, Zeros };

struct TensorSpec {
  SafetensorsWriter::Tensor meta;
  Init init;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : meta.shape) n *= d;
    return n;
  }
};

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Fills `out` with normal(0, stddev) floats by Box-Muller (in float32: these are random
// weights, and float math halves the generation time) from a splitmix64 stream.
void fill_normal(float* out, size_t n, uint64_t seed, float stddev) {
  uint64_t state = seed;
  constexpr float kTwoPi = 6.2831855f;
  for (size_t i = 0; i < n; i += 2) {
    const uint64_t bits = splitmix64(state);
    // u1 in (0, 1] so that log(u1) is finite; 24 random bits each.
    const float u1 = (static_cast<float>(bits >> 40) + 1.0f) * 0x1.0p-24f;
    const float u2 = static_cast<float>((bits >> 8) & 0xffffffu) * 0x1.0p-24f;
    const float r = stddev * std::sqrt(-2.0f * std::log(u1));
    out[i] = r * std::cos(kTwoPi * u2);
    if (i + 1 < n) out[i + 1] = r * std::sin(kTwoPi * u2);
  }
}

void encode(const float* src, size_t n, DType dtype, uint8_t* dst) {
  switch (dtype) {
    case DType::F32: std::memcpy(dst, src, n * 4); break;
    case DType::F16: {
      auto* d = reinterpret_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = lmserve::kernels::f32_to_f16(src[i]);
      break;
    }
    case DType::BF16: {
      auto* d = reinterpret_cast<uint16_t*>(dst);
      for (size_t i = 0; i < n; ++i) d[i] = lmserve::kernels::f32_to_bf16(src[i]);
      break;
    }
  }
}

std::vector<TensorSpec> llama_tensors(const Options& o, DType dt) {
  const int64_t H = o.hidden, V = o.vocab, I = o.intermediate;
  const int64_t head_dim = o.hidden / o.heads, Q = o.heads * head_dim, KV = o.kv_heads * head_dim;
  std::vector<TensorSpec> t;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    t.push_back({{std::move(name), dt, std::move(shape)}, init});
  };
  add("model.embed_tokens.weight", {V, H}, Init::Normal);
  for (int i = 0; i < o.layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    add(p + "input_layernorm.weight", {H}, Init::Ones);
    add(p + "self_attn.q_proj.weight", {Q, H}, Init::Normal);
    add(p + "self_attn.k_proj.weight", {KV, H}, Init::Normal);
    add(p + "self_attn.v_proj.weight", {KV, H}, Init::Normal);
    add(p + "self_attn.o_proj.weight", {H, Q}, Init::Normal);
    add(p + "post_attention_layernorm.weight", {H}, Init::Ones);
    add(p + "mlp.gate_proj.weight", {I, H}, Init::Normal);
    add(p + "mlp.up_proj.weight", {I, H}, Init::Normal);
    add(p + "mlp.down_proj.weight", {H, I}, Init::Normal);
  }
  add("model.norm.weight", {H}, Init::Ones);
  if (!o.tie) add("lm_head.weight", {V, H}, Init::Normal);
  return t;
}

std::vector<TensorSpec> gpt2_tensors(const Options& o, DType dt) {
  const int64_t H = o.hidden, V = o.vocab, I = o.intermediate, P = o.max_positions;
  std::vector<TensorSpec> t;
  auto add = [&](std::string name, std::vector<int64_t> shape, Init init) {
    t.push_back({{std::move(name), dt, std::move(shape)}, init});
  };
  add("transformer.wte.weight", {V, H}, Init::Normal);
  add("transformer.wpe.weight", {P, H}, Init::Normal);
  for (int i = 0; i < o.layers; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    add(p + "ln_1.weight", {H}, Init::Ones);
    add(p + "ln_1.bias", {H}, Init::Zeros);
    add(p + "attn.c_attn.weight", {H, 3 * H}, Init::Normal);  // Conv1D: [in, out]
    add(p + "attn.c_attn.bias", {3 * H}, Init::Zeros);
    add(p + "attn.c_proj.weight", {H, H}, Init::Normal);
    add(p + "attn.c_proj.bias", {H}, Init::Zeros);
    add(p + "ln_2.weight", {H}, Init::Ones);
    add(p + "ln_2.bias", {H}, Init::Zeros);
    add(p + "mlp.c_fc.weight", {H, I}, Init::Normal);
    add(p + "mlp.c_fc.bias", {I}, Init::Zeros);
    add(p + "mlp.c_proj.weight", {I, H}, Init::Normal);
    add(p + "mlp.c_proj.bias", {H}, Init::Zeros);
  }
  add("transformer.ln_f.weight", {H}, Init::Ones);
  add("transformer.ln_f.bias", {H}, Init::Zeros);
  return t;
}

nlohmann::json make_config(const Options& o, DType dt) {
  const char* torch_dtype = dt == DType::F32 ? "float32" : dt == DType::F16 ? "float16" : "bfloat16";
  if (o.family == "gpt2") {
    return {{"architectures", {"GPT2LMHeadModel"}}, {"model_type", "gpt2"},
            {"vocab_size", o.vocab},                {"n_embd", o.hidden},
            {"n_layer", o.layers},                  {"n_head", o.heads},
            {"n_inner", o.intermediate},            {"n_positions", o.max_positions},
            {"n_ctx", o.max_positions},             {"layer_norm_epsilon", 1e-5},
            {"activation_function", "gelu_new"},    {"bos_token_id", o.vocab - 1},
            {"eos_token_id", o.vocab - 1},          {"tie_word_embeddings", true},
            {"torch_dtype", torch_dtype}};
  }
  return {{"architectures", {"LlamaForCausalLM"}},
          {"model_type", "llama"},
          {"vocab_size", o.vocab},
          {"hidden_size", o.hidden},
          {"num_hidden_layers", o.layers},
          {"num_attention_heads", o.heads},
          {"num_key_value_heads", o.kv_heads},
          {"intermediate_size", o.intermediate},
          {"max_position_embeddings", o.max_positions},
          {"rms_norm_eps", 1e-5},
          {"rope_theta", o.rope_theta},
          {"rope_scaling", nullptr},
          {"hidden_act", "silu"},
          {"attention_bias", false},
          {"mlp_bias", false},
          {"tie_word_embeddings", o.tie},
          {"bos_token_id", std::min(1, o.vocab - 1)},
          {"eos_token_id", std::min(2, o.vocab - 1)},
          {"torch_dtype", torch_dtype}};
}

// One unit of work: `count` elements of tensor `tensor`, starting at element `first`.
struct Chunk {
  size_t tensor;
  int64_t first;
  int64_t count;
};
constexpr int64_t kChunkElements = 1 << 20;

void write_weights(const std::string& path, const std::vector<TensorSpec>& tensors, uint64_t seed,
                   int threads) {
  std::vector<SafetensorsWriter::Tensor> metas;
  std::vector<Chunk> chunks;
  for (size_t i = 0; i < tensors.size(); ++i) {
    metas.push_back(tensors[i].meta);
    for (int64_t first = 0; first < tensors[i].numel(); first += kChunkElements)
      chunks.push_back({i, first, std::min(kChunkElements, tensors[i].numel() - first)});
  }
  SafetensorsWriter writer(path, metas, {{"format", "pt"}});
  // Two sets of chunk buffers: one window is written while the next is generated.
  const size_t window = static_cast<size_t>(threads) * 2;
  int64_t largest = 0;  // small models need small buffers
  for (const Chunk& c : chunks) largest = std::max(largest, c.count);
  const auto chunk_capacity = static_cast<size_t>(largest);
  std::vector<std::vector<float>> scratch(static_cast<size_t>(threads), std::vector<float>(chunk_capacity));
  std::vector<std::vector<uint8_t>> encoded[2];
  for (auto& set : encoded) set.assign(window, std::vector<uint8_t>(chunk_capacity * 4));
  std::thread write_thread;
  std::exception_ptr write_error;
  int set = 0;
  for (size_t base = 0; base < chunks.size(); base += window, set ^= 1) {
    const size_t n = std::min(window, chunks.size() - base);
    std::atomic<size_t> next{0};
    auto work = [&](int worker) {
      std::vector<float>& tmp = scratch[static_cast<size_t>(worker)];
      for (size_t k; (k = next.fetch_add(1)) < n;) {
        const Chunk& c = chunks[base + k];
        const TensorSpec& t = tensors[c.tensor];
        const auto count = static_cast<size_t>(c.count);
        if (t.init == Init::Normal) {
          uint64_t s = seed ^ (0x632be59bd9b4e019ull * (c.tensor + 1));
          s = splitmix64(s) ^ static_cast<uint64_t>(c.first / kChunkElements);
          fill_normal(tmp.data(), count, splitmix64(s), 0.02f);
        } else {
          std::fill_n(tmp.data(), count, t.init == Init::Ones ? 1.0f : 0.0f);
        }
        encode(tmp.data(), count, t.meta.dtype, encoded[set][k].data());
      }
    };
    std::vector<std::thread> pool;
    for (int w = 1; w < threads; ++w) pool.emplace_back(work, w);
    work(0);
    for (auto& th : pool) th.join();
    if (write_thread.joinable()) write_thread.join();
    if (write_error) std::rethrow_exception(write_error);
    write_thread = std::thread([&, base, n, set] {
      try {
        for (size_t k = 0; k < n; ++k) {
          const Chunk& c = chunks[base + k];
          writer.append(encoded[set][k].data(),
                        static_cast<size_t>(c.count) * lmserve::kernels::dtype_size(tensors[c.tensor].meta.dtype));
        }
      } catch (...) {
        write_error = std::current_exception();
      }
    });
  }
  if (write_thread.joinable()) write_thread.join();
  if (write_error) std::rethrow_exception(write_error);
  writer.finish();
}

void run(Options o) {
  namespace fs = std::filesystem;
  if (o.family != "llama" && o.family != "gpt2") throw std::runtime_error("--family: expected llama or gpt2");
  DType dt;
  if (!lmserve::kernels::parse_dtype(o.dtype, &dt)) throw std::runtime_error("--dtype: expected f32, f16 or bf16");
  if (o.kv_heads == 0) o.kv_heads = o.heads;
  if (o.hidden % o.heads != 0) throw std::runtime_error("--hidden must be divisible by --heads");
  if (o.family == "gpt2" && o.kv_heads != o.heads) throw std::runtime_error("--kv-heads: GPT-2 has no grouped-query attention");
  if (o.family == "gpt2" && o.tie) std::fprintf(stderr, "note: GPT-2 is always tied; --tie has no effect\n");
  if (o.threads <= 0) o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));

  const nlohmann::json config = make_config(o, dt);
  // The engine must accept what this tool writes: parse it before writing anything big.
  const lmserve::engine::ModelConfig parsed = lmserve::engine::parse_model_config(config.dump(), "--out config");
  const std::vector<TensorSpec> tensors = o.family == "gpt2" ? gpt2_tensors(o, dt) : llama_tensors(o, dt);

  fs::create_directories(o.out);
  const auto start = std::chrono::steady_clock::now();
  const std::string tmp = (fs::path(o.out) / "model.safetensors.partial").string();
  write_weights(tmp, tensors, o.seed, o.threads);
  fs::rename(tmp, fs::path(o.out) / "model.safetensors");
  std::ofstream(fs::path(o.out) / "config.json") << config.dump(2) << "\n";
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  const auto params = lmserve::engine::count_parameters(parsed);
  std::fprintf(stderr, "wrote %s: %s, %lld parameters, %s, %.1f MB in %.1f s\n", o.out.c_str(),
               o.family.c_str(), static_cast<long long>(params.total()), lmserve::kernels::dtype_name(dt),
               static_cast<double>(fs::file_size(fs::path(o.out) / "model.safetensors")) / 1e6, seconds);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes a Hugging Face model folder with random weights (config.json + model.safetensors)"};
  Options o;
  app.add_option("--out", o.out, "Output folder")->required();
  app.add_option("--family", o.family, "llama or gpt2")->capture_default_str();
  app.add_option("--vocab", o.vocab, "Vocabulary size")->capture_default_str()->check(CLI::Range(1, 1 << 24));
  app.add_option("--hidden", o.hidden, "Hidden size")->capture_default_str()->check(CLI::Range(2, 1 << 16));
  app.add_option("--layers", o.layers, "Layers")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--heads", o.heads, "Attention heads")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--kv-heads", o.kv_heads, "Key/value heads (default: --heads)")->check(CLI::Range(1, 4096));
  app.add_option("--intermediate", o.intermediate, "MLP size")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-positions", o.max_positions, "Max positions")->capture_default_str()->check(CLI::Range(1, 1 << 24));
  app.add_option("--dtype", o.dtype, "f32, f16 or bf16")->capture_default_str();
  app.add_option("--seed", o.seed, "Random seed")->capture_default_str();
  app.add_option("--rope-theta", o.rope_theta, "RoPE base (llama)")->capture_default_str();
  app.add_option("--threads", o.threads, "Generator threads (default: all cores; output does not depend on it)");
  app.add_flag("--tie", o.tie, "Tie lm_head to the embeddings (llama)");
  CLI11_PARSE(app, argc, argv);
  try {
    run(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
