// Reads a Hugging Face config.json (+ generation_config.json) into a ModelConfig.
// Owns: the per-model_type key names and defaults, validation of every value the
// forward pass relies on, and the RoPE inverse frequencies (rope_scaling applied).
#include "engine/model/config.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>

namespace lmserve::engine {
namespace {

using nlohmann::json;

// Upper bounds far above any real model: they keep a hostile config from making
// the loader allocate absurd buffers (rope tables, KV caches) before a tensor is read.
constexpr int kMaxVocab = 1 << 24;
constexpr int kMaxHidden = 1 << 17;
constexpr int kMaxLayers = 1 << 12;
constexpr int kMaxHeads = 1 << 12;
constexpr int kMaxHeadDim = 1 << 13;
constexpr int kMaxIntermediate = 1 << 20;
constexpr int kMaxPositions = 1 << 26;

[[noreturn]] void fail(const std::string& source, const std::string& what) {
  throw std::runtime_error(source + ": " + what);
}

// Typed access to one JSON object, every error naming the file and the key.
class Reader {
 public:
  Reader(const json& object, std::string source) : j_(object), source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  bool present(const char* key) const { return j_.contains(key); }
  // Present and not null.
  bool has(const char* key) const {
    auto it = j_.find(key);
    return it != j_.end() && !it->is_null();
  }
  const json& at(const char* key) const {
    if (!has(key)) fail(source_, std::string("missing key '") + key + "'");
    return j_.at(key);
  }

  std::optional<int> opt_int(const char* key, int lo, int hi) const {
    if (!has(key)) return std::nullopt;
    return to_int(j_.at(key), key, lo, hi);
  }
  int req_int(const char* key, int lo, int hi) const { return to_int(at(key), key, lo, hi); }
  int int_or(const char* key, int fallback, int lo, int hi) const {
    return opt_int(key, lo, hi).value_or(fallback);
  }

  std::optional<double> opt_number(const char* key) const {
    if (!has(key)) return std::nullopt;
    return to_number(j_.at(key), key);
  }
  double number_or(const char* key, double fallback) const {
    return opt_number(key).value_or(fallback);
  }
  double req_number(const char* key) const { return to_number(at(key), key); }

  bool bool_or(const char* key, bool fallback) const {
    if (!has(key)) return fallback;
    const json& v = j_.at(key);
    if (!v.is_boolean()) fail(source_, std::string("key '") + key + "' must be true or false");
    return v.get<bool>();
  }
  std::optional<std::string> opt_string(const char* key) const {
    if (!has(key)) return std::nullopt;
    const json& v = j_.at(key);
    if (!v.is_string()) fail(source_, std::string("key '") + key + "' must be a string");
    return v.get<std::string>();
  }

  // An id, or a list of ids (eos_token_id). Null or absent gives nothing.
  std::vector<int> id_list(const char* key) const {
    std::vector<int> ids;
    if (!has(key)) return ids;
    const json& v = j_.at(key);
    if (v.is_array()) {
      for (const json& e : v) ids.push_back(to_int(e, key, 0, std::numeric_limits<int>::max()));
    } else {
      ids.push_back(to_int(v, key, 0, std::numeric_limits<int>::max()));
    }
    return ids;
  }

  int to_int(const json& v, const std::string& key, int lo, int hi) const {
    if (!v.is_number_integer()) fail(source_, "key '" + key + "' must be an integer");
    if (v.is_number_unsigned()) {
      const auto u = v.get<uint64_t>();
      if (u > static_cast<uint64_t>(hi)) out_of_range(key, lo, hi);
      return static_cast<int>(u);
    }
    const auto s = v.get<int64_t>();
    if (s < lo || s > hi) out_of_range(key, lo, hi);
    return static_cast<int>(s);
  }
  double to_number(const json& v, const std::string& key) const {
    if (!v.is_number()) fail(source_, "key '" + key + "' must be a number");
    const double d = v.get<double>();
    if (!std::isfinite(d)) fail(source_, "key '" + key + "' must be finite");
    return d;
  }

 private:
  [[noreturn]] void out_of_range(const std::string& key, int lo, int hi) const {
    fail(source_, "key '" + key + "' must be in [" + std::to_string(lo) + ", " +
                      std::to_string(hi) + "]");
  }
  const json& j_;
  std::string source_;
};

json parse_object(const std::string& text, const std::string& source) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(source, "not valid JSON");
  if (!j.is_object()) fail(source, "expected a JSON object at the top level");
  return j;
}

void read_common_ids(const Reader& r, ModelConfig& c) {
  c.bos_token_id = r.opt_int("bos_token_id", 0, std::numeric_limits<int>::max());
  c.pad_token_id = r.opt_int("pad_token_id", 0, std::numeric_limits<int>::max());
  c.eos_token_ids = r.id_list("eos_token_id");
}

void read_dtype(const Reader& r, ModelConfig& c) {
  // Newer transformers write "dtype"; older ones "torch_dtype".
  const char* key = r.has("torch_dtype") ? "torch_dtype" : "dtype";
  auto name = r.opt_string(key);
  if (!name) return;  // transformers' default: float32
  if (!kernels::parse_dtype(*name, &c.torch_dtype)) {
    fail(r.source(), std::string("key '") + key + "': unsupported dtype '" + *name +
                         "' (supported: float32, float16, bfloat16)");
  }
}

void parse_gpt2(const Reader& r, ModelConfig& c) {
  c.family = Family::Gpt2;
  c.vocab_size = r.req_int("vocab_size", 1, kMaxVocab);
  c.hidden_size = r.req_int("n_embd", 1, kMaxHidden);
  c.num_layers = r.req_int("n_layer", 1, kMaxLayers);
  c.num_heads = r.req_int("n_head", 1, kMaxHeads);
  c.num_kv_heads = c.num_heads;
  if (c.hidden_size % c.num_heads != 0) fail(r.source(), "n_embd must be divisible by n_head");
  c.head_dim = c.hidden_size / c.num_heads;
  if (c.head_dim > kMaxHeadDim) fail(r.source(), "n_embd / n_head is implausibly large");
  c.intermediate_size = r.int_or("n_inner", 4 * c.hidden_size, 1, kMaxIntermediate);
  c.max_position_embeddings = r.req_int("n_positions", 1, kMaxPositions);
  c.norm_eps = static_cast<float>(r.number_or("layer_norm_epsilon", 1e-5));
  c.norm = kernels::NormKind::LayerNorm;
  const std::string act = r.opt_string("activation_function").value_or("gelu_new");
  if (act != "gelu_new" && act != "gelu_pytorch_tanh") {
    fail(r.source(), "key 'activation_function': unsupported activation '" + act +
                         "' (supported: gelu_new, gelu_pytorch_tanh)");
  }
  c.activation = Activation::GeluNew;
  c.learned_positions = true;
  c.tie_word_embeddings = true;  // GPT2LMHeadModel always ties lm_head to wte
  c.qkv_bias = c.o_bias = c.mlp_bias = true;
  // Variants whose attention math differs from the plain 1/sqrt(head_dim) scaling.
  if (!r.bool_or("scale_attn_weights", true))
    fail(r.source(), "key 'scale_attn_weights': false is not supported");
  if (r.bool_or("scale_attn_by_inverse_layer_idx", false))
    fail(r.source(), "key 'scale_attn_by_inverse_layer_idx': true is not supported");
}

// RoPE inverse frequencies the way transformers computes them, in float32:
//   inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2).float() / dim))
// Each torch op on float32 tensors rounds to float32, and a Python scalar operand is
// rounded to float32 first; `scalar / tensor` is `tensor.reciprocal() * scalar`.
std::vector<float> rope_default_inv_freq(float base, int dim) {
  std::vector<float> inv(static_cast<size_t>(dim / 2));
  const float fdim = static_cast<float>(dim);
  for (int j = 0; j < dim / 2; ++j) {
    const float exponent = static_cast<float>(2 * j) / fdim;
    const float power = std::pow(base, exponent);  // float overload: powf
    inv[static_cast<size_t>(j)] = (1.0f / power) * 1.0f;
  }
  return inv;
}

// _compute_linear_scaling_rope_parameters: inv_freq /= factor.
void rope_apply_linear(std::vector<float>& inv, double factor) {
  const float f = static_cast<float>(factor);
  for (float& x : inv) x = x / f;
}

struct Llama3RopeScaling {
  double factor = 8;
  double low_freq_factor = 1;
  double high_freq_factor = 4;
  double original_max_position_embeddings = 8192;
};

// _compute_llama3_parameters, op by op in float32 (the Python-level arithmetic on
// config values is done in double, as Python does, then rounded when it meets a tensor).
void rope_apply_llama3(std::vector<float>& inv, const Llama3RopeScaling& p) {
  const double old_context_len = p.original_max_position_embeddings;
  const float low_freq_wavelen = static_cast<float>(old_context_len / p.low_freq_factor);
  const float high_freq_wavelen = static_cast<float>(old_context_len / p.high_freq_factor);
  const float factor = static_cast<float>(p.factor);
  const float two_pi = static_cast<float>(2 * M_PI);
  const float old_len = static_cast<float>(old_context_len);
  const float low = static_cast<float>(p.low_freq_factor);
  const float span = static_cast<float>(p.high_freq_factor - p.low_freq_factor);
  for (float& x : inv) {
    const float wavelen = (1.0f / x) * two_pi;
    const float scaled = wavelen > low_freq_wavelen ? x / factor : x;
    const float smooth = ((1.0f / wavelen) * old_len - low) / span;
    const float smoothed = ((1.0f - smooth) * scaled) / factor + smooth * scaled;
    const bool medium = !(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen);
    x = medium ? smoothed : scaled;
  }
}

void parse_rope_scaling(const Reader& r, ModelConfig& c) {
  c.rope_inv_freq = rope_default_inv_freq(c.rope_theta, c.head_dim);
  if (!r.has("rope_scaling")) return;
  const json& s = r.at("rope_scaling");
  if (!s.is_object()) fail(r.source(), "key 'rope_scaling' must be an object or null");
  const Reader rs(s, r.source() + ": rope_scaling");
  std::string type;
  if (auto t = rs.opt_string("rope_type")) {
    type = *t;
  } else if (auto t2 = rs.opt_string("type")) {
    type = *t2;
  } else {
    fail(r.source(), "rope_scaling has neither 'rope_type' nor 'type'");
  }
  if (type == "default") return;
  if (type == "linear") {
    const double factor = rs.req_number("factor");
    if (!(factor > 0)) fail(r.source(), "rope_scaling.factor must be positive");
    rope_apply_linear(c.rope_inv_freq, factor);
    return;
  }
  if (type == "llama3") {
    Llama3RopeScaling p;
    p.factor = rs.req_number("factor");
    p.low_freq_factor = rs.req_number("low_freq_factor");
    p.high_freq_factor = rs.req_number("high_freq_factor");
    p.original_max_position_embeddings = rs.req_number("original_max_position_embeddings");
    if (!(p.factor > 0) || !(p.low_freq_factor > 0) || !(p.high_freq_factor > p.low_freq_factor) ||
        !(p.original_max_position_embeddings > 0)) {
      fail(r.source(), "rope_scaling (llama3) needs factor > 0, 0 < low_freq_factor < "
                       "high_freq_factor and original_max_position_embeddings > 0");
    }
    rope_apply_llama3(c.rope_inv_freq, p);
    return;
  }
  fail(r.source(), "rope_scaling.type '" + type + "' is not supported (supported: default, linear, llama3)");
}

void parse_llama_like(const Reader& r, ModelConfig& c) {
  c.family = Family::Llama;
  const std::string& type = c.model_type;
  c.vocab_size = r.req_int("vocab_size", 1, kMaxVocab);
  c.hidden_size = r.req_int("hidden_size", 1, kMaxHidden);
  c.num_layers = r.req_int("num_hidden_layers", 1, kMaxLayers);
  c.num_heads = r.req_int("num_attention_heads", 1, kMaxHeads);
  c.num_kv_heads = r.int_or("num_key_value_heads", c.num_heads, 1, kMaxHeads);
  if (c.num_heads % c.num_kv_heads != 0)
    fail(r.source(), "num_attention_heads must be a multiple of num_key_value_heads");
  // transformers: `getattr(config, "head_dim", None) or hidden_size // num_attention_heads`.
  const int head_dim = r.int_or("head_dim", 0, 0, kMaxHeadDim);
  if (head_dim != 0) {
    c.head_dim = head_dim;
  } else {
    if (c.hidden_size % c.num_heads != 0)
      fail(r.source(), "hidden_size must be divisible by num_attention_heads (or set head_dim)");
    c.head_dim = c.hidden_size / c.num_heads;
  }
  if (c.head_dim % 2 != 0) fail(r.source(), "head_dim must be even for rotary embeddings");
  if (c.head_dim > kMaxHeadDim) fail(r.source(), "head_dim is implausibly large");
  c.intermediate_size = r.req_int("intermediate_size", 1, kMaxIntermediate);
  const int default_positions = type == "llama" ? 2048 : (type == "mistral" ? 4096 * 32 : 32768);
  c.max_position_embeddings = r.int_or("max_position_embeddings", default_positions, 1, kMaxPositions);
  c.norm_eps = static_cast<float>(r.number_or("rms_norm_eps", 1e-6));
  c.norm = kernels::NormKind::RmsNorm;
  const std::string act = r.opt_string("hidden_act").value_or("silu");
  if (act != "silu") fail(r.source(), "key 'hidden_act': unsupported activation '" + act + "' (supported: silu)");
  c.activation = Activation::Silu;
  c.learned_positions = false;
  c.tie_word_embeddings = r.bool_or("tie_word_embeddings", false);
  const double theta = r.number_or("rope_theta", 10000.0);
  if (!(theta > 1.0)) fail(r.source(), "key 'rope_theta' must be > 1");
  c.rope_theta = static_cast<float>(theta);

  if (type == "llama") {
    const bool attention_bias = r.bool_or("attention_bias", false);
    c.qkv_bias = c.o_bias = attention_bias;
    c.mlp_bias = r.bool_or("mlp_bias", false);
    // LayerWeights has no gate_proj bias, so such a model could not be run exactly.
    if (c.mlp_bias) fail(r.source(), "key 'mlp_bias': true is not supported");
  } else if (type == "qwen2") {
    c.qkv_bias = true;  // Qwen2Attention: q/k/v with bias, o_proj without
    c.o_bias = false;
  }  // mistral: no biases at all, whatever the config says (as MistralAttention)

  if (type == "mistral") {
    // MistralConfig's default window is 4096 when the key is absent; null disables it.
    if (!r.present("sliding_window")) {
      c.sliding_window = 4096;
    } else if (r.has("sliding_window")) {
      c.sliding_window = r.req_int("sliding_window", 1, std::numeric_limits<int>::max());
    }
  } else if (type == "qwen2" && r.bool_or("use_sliding_window", false)) {
    // Qwen2 slides only the layers at index >= max_window_layers; one window for all
    // layers or none is what the forward pass supports.
    const int window = r.int_or("sliding_window", 4096, 1, std::numeric_limits<int>::max());
    const int max_window_layers = r.int_or("max_window_layers", 28, 0, std::numeric_limits<int>::max());
    if (max_window_layers == 0) {
      c.sliding_window = window;
    } else if (max_window_layers < c.num_layers) {
      fail(r.source(), "use_sliding_window with max_window_layers < num_hidden_layers "
                       "(some layers sliding, some not) is not supported");
    }
  }
  parse_rope_scaling(r, c);
}

void merge_generation_config(const std::string& text, const std::string& source, ModelConfig& c) {
  const json j = parse_object(text, source);
  const Reader r(j, source);
  for (int id : r.id_list("eos_token_id")) {
    if (std::find(c.eos_token_ids.begin(), c.eos_token_ids.end(), id) == c.eos_token_ids.end())
      c.eos_token_ids.push_back(id);
  }
  if (auto bos = r.opt_int("bos_token_id", 0, std::numeric_limits<int>::max())) c.bos_token_id = bos;
  if (auto pad = r.opt_int("pad_token_id", 0, std::numeric_limits<int>::max())) c.pad_token_id = pad;
  GenerationDefaults& g = c.generation;
  if (auto t = r.opt_number("temperature")) {
    if (*t < 0) fail(source, "key 'temperature' must be >= 0");
    g.temperature = static_cast<float>(*t);
  }
  if (auto p = r.opt_number("top_p")) {
    if (!(*p > 0 && *p <= 1)) fail(source, "key 'top_p' must be in (0, 1]");
    g.top_p = static_cast<float>(*p);
  }
  g.top_k = r.opt_int("top_k", 0, std::numeric_limits<int>::max());
  if (auto rp = r.opt_number("repetition_penalty")) {
    if (!(*rp > 0)) fail(source, "key 'repetition_penalty' must be > 0");
    g.repetition_penalty = static_cast<float>(*rp);
  }
  g.max_new_tokens = r.opt_int("max_new_tokens", 0, std::numeric_limits<int>::max());
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path, "cannot open");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(path, "read error");
  return ss.str();
}

}  // namespace

ModelConfig parse_model_config(const std::string& config_json, const std::string& source,
                               const std::string* generation_config_json) {
  const json j = parse_object(config_json, source);
  const Reader r(j, source);
  if (r.has("quantization_config")) fail(source, "quantized checkpoints are not supported");
  ModelConfig c;
  auto type = r.opt_string("model_type");
  if (!type) fail(source, "missing key 'model_type'");
  c.model_type = *type;
  if (c.model_type == "gpt2") {
    parse_gpt2(r, c);
  } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
    parse_llama_like(r, c);
  } else {
    fail(source, "unknown model_type '" + c.model_type + "' (supported: gpt2, llama, mistral, qwen2)");
  }
  if (!(c.norm_eps > 0) || !std::isfinite(c.norm_eps)) fail(source, "norm epsilon must be positive");
  read_common_ids(r, c);
  read_dtype(r, c);
  if (generation_config_json) {
    const std::string gen_source =
        source.size() >= 11 && source.ends_with("config.json")
            ? source.substr(0, source.size() - 11) + "generation_config.json"
            : source + " (generation_config.json)";
    merge_generation_config(*generation_config_json, gen_source, c);
  }
  return c;
}

ModelConfig load_model_config(const std::string& dir) {
  namespace fs = std::filesystem;
  const fs::path base(dir);
  std::error_code ec;
  if (!fs::is_directory(base, ec)) fail(dir, "not a directory");
  const std::string config_path = (base / "config.json").string();
  if (!fs::exists(config_path, ec)) fail(config_path, "no such file");
  const std::string text = read_file(config_path);
  const fs::path gen_path = base / "generation_config.json";
  if (fs::exists(gen_path, ec)) {
    const std::string gen = read_file(gen_path.string());
    return parse_model_config(text, config_path, &gen);
  }
  return parse_model_config(text, config_path, nullptr);
}

}  // namespace lmserve::engine
