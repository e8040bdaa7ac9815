// config.json / generation_config.json parsing for every model_type, its errors, and
// the RoPE inverse frequencies (checked against values computed here independently).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <unistd.h>

#include "engine/model/config.h"

namespace lmserve::engine {
namespace {

using nlohmann::json;

json llama_json() {
  return json{{"model_type", "llama"},          {"vocab_size", 1000},
              {"hidden_size", 64},              {"num_hidden_layers", 2},
              {"num_attention_heads", 4},       {"num_key_value_heads", 2},
              {"intermediate_size", 176},       {"max_position_embeddings", 512},
              {"rms_norm_eps", 1e-5},           {"rope_theta", 10000.0},
              {"hidden_act", "silu"},           {"tie_word_embeddings", false},
              {"bos_token_id", 1},              {"eos_token_id", 2},
              {"torch_dtype", "bfloat16"}};
}

json gpt2_json() {
  return json{{"model_type", "gpt2"}, {"vocab_size", 50257}, {"n_embd", 64},
              {"n_layer", 2},         {"n_head", 4},         {"n_inner", nullptr},
              {"n_positions", 256},   {"layer_norm_epsilon", 1e-5},
              {"activation_function", "gelu_new"},           {"eos_token_id", 50256}};
}

ModelConfig parse(const json& j) { return parse_model_config(j.dump(), "m/config.json"); }

// The message of the runtime_error parse() throws, or "" when it does not throw.
std::string parse_error(const json& j) {
  try {
    parse(j);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(ConfigTest, ParsesLlama) {
  const ModelConfig c = parse(llama_json());
  EXPECT_EQ(c.model_type, "llama");
  EXPECT_EQ(c.family, Family::Llama);
  EXPECT_EQ(c.vocab_size, 1000);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_layers, 2);
  EXPECT_EQ(c.num_heads, 4);
  EXPECT_EQ(c.num_kv_heads, 2);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.kv_dim(), 32);
  EXPECT_EQ(c.intermediate_size, 176);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_FLOAT_EQ(c.norm_eps, 1e-5f);
  EXPECT_EQ(c.norm, kernels::NormKind::RmsNorm);
  EXPECT_EQ(c.activation, Activation::Silu);
  EXPECT_FALSE(c.learned_positions);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_FALSE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(c.bos_token_id, 1);
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{2});
  EXPECT_EQ(c.torch_dtype, kernels::DType::BF16);
  EXPECT_EQ(c.rope_inv_freq.size(), 8u);
}

TEST(ConfigTest, LlamaDefaultsAndBiases) {
  json j = llama_json();
  j.erase("num_key_value_heads");
  j["attention_bias"] = true;
  j["head_dim"] = 32;
  j["eos_token_id"] = {2, 7};
  j.erase("torch_dtype");
  const ModelConfig c = parse(j);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.head_dim, 32);
  EXPECT_EQ(c.q_dim(), 128);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_TRUE(c.o_bias);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2, 7}));
  EXPECT_EQ(c.torch_dtype, kernels::DType::F32);
}

TEST(ConfigTest, ParsesGpt2) {
  const ModelConfig c = parse(gpt2_json());
  EXPECT_EQ(c.family, Family::Gpt2);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.num_kv_heads, 4);
  EXPECT_EQ(c.intermediate_size, 256);  // n_inner null → 4·n_embd
  EXPECT_EQ(c.max_position_embeddings, 256);
  EXPECT_EQ(c.norm, kernels::NormKind::LayerNorm);
  EXPECT_EQ(c.activation, Activation::GeluNew);
  EXPECT_TRUE(c.learned_positions);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_TRUE(c.qkv_bias && c.o_bias && c.mlp_bias);
  EXPECT_TRUE(c.rope_inv_freq.empty());
  EXPECT_EQ(c.eos_token_ids, std::vector<int>{50256});

  json j = gpt2_json();
  j["n_inner"] = 100;
  j["activation_function"] = "gelu_pytorch_tanh";
  EXPECT_EQ(parse(j).intermediate_size, 100);
}

TEST(ConfigTest, ParsesMistralSlidingWindow) {
  json j = llama_json();
  j["model_type"] = "mistral";
  j["attention_bias"] = true;  // MistralAttention has no biases whatever the config says
  j["sliding_window"] = 4096;
  ModelConfig c = parse(j);
  EXPECT_EQ(c.family, Family::Llama);
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_FALSE(c.qkv_bias);
  j["sliding_window"] = nullptr;
  EXPECT_FALSE(parse(j).sliding_window.has_value());
  j.erase("sliding_window");  // MistralConfig default
  EXPECT_EQ(parse(j).sliding_window, 4096);
}

TEST(ConfigTest, ParsesQwen2Biases) {
  json j = llama_json();
  j["model_type"] = "qwen2";
  j["tie_word_embeddings"] = true;
  j["sliding_window"] = 4096;
  j["use_sliding_window"] = false;
  ModelConfig c = parse(j);
  EXPECT_TRUE(c.qkv_bias);
  EXPECT_FALSE(c.o_bias);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.sliding_window.has_value());
  j["use_sliding_window"] = true;
  j["max_window_layers"] = 0;
  EXPECT_EQ(parse(j).sliding_window, 4096);
  j["max_window_layers"] = 1;  // layer 0 full, layer 1 sliding
  EXPECT_NE(parse_error(j).find("max_window_layers"), std::string::npos);
}

TEST(ConfigTest, Errors) {
  auto expect_error = [](const json& j, const std::string& needle) {
    const std::string msg = parse_error(j);
    EXPECT_NE(msg.find("m/config.json: "), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << "message: " << msg;
  };
  json j = llama_json();
  j["model_type"] = "t5";
  expect_error(j, "unknown model_type 't5'");
  j.erase("model_type");
  expect_error(j, "missing key 'model_type'");

  j = llama_json();
  j.erase("hidden_size");
  expect_error(j, "missing key 'hidden_size'");
  j = llama_json();
  j["hidden_size"] = "64";
  expect_error(j, "key 'hidden_size' must be an integer");
  j = llama_json();
  j["num_hidden_layers"] = -1;
  expect_error(j, "num_hidden_layers");
  j = llama_json();
  j["num_key_value_heads"] = 3;
  expect_error(j, "multiple of num_key_value_heads");
  j = llama_json();
  j["hidden_act"] = "gelu";
  expect_error(j, "unsupported activation 'gelu'");
  j = llama_json();
  j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  expect_error(j, "rope_scaling.type 'yarn' is not supported");
  j = llama_json();
  j["mlp_bias"] = true;
  expect_error(j, "key 'mlp_bias': true is not supported");
  j = llama_json();
  j["torch_dtype"] = "int8";
  expect_error(j, "unsupported dtype 'int8'");
  j = llama_json();
  j["hidden_size"] = 1 << 30;
  expect_error(j, "hidden_size");
  j = gpt2_json();
  j["activation_function"] = "relu";
  expect_error(j, "unsupported activation 'relu'");
  j = gpt2_json();
  j["n_head"] = 5;
  expect_error(j, "divisible");

  EXPECT_NE(std::string(parse_error(json::array())).find("JSON object"), std::string::npos);
  try {
    parse_model_config("{\"model_type\": ", "m/config.json");
    FAIL() << "no error for truncated JSON";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()), "m/config.json: not valid JSON");
  }
}

TEST(ConfigTest, MergesGenerationConfig) {
  const std::string gen =
      R"({"eos_token_id": [2, 32000], "bos_token_id": 5, "pad_token_id": 0, "temperature": 0.6,
          "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.1, "max_new_tokens": 77})";
  const ModelConfig c = parse_model_config(llama_json().dump(), "m/config.json", &gen);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2, 32000}));
  EXPECT_EQ(c.bos_token_id, 5);
  EXPECT_EQ(c.pad_token_id, 0);
  EXPECT_FLOAT_EQ(*c.generation.temperature, 0.6f);
  EXPECT_FLOAT_EQ(*c.generation.top_p, 0.9f);
  EXPECT_EQ(c.generation.top_k, 40);
  EXPECT_FLOAT_EQ(*c.generation.repetition_penalty, 1.1f);
  EXPECT_EQ(c.generation.max_new_tokens, 77);

  const std::string bad = R"({"top_p": "high"})";
  try {
    parse_model_config(llama_json().dump(), "m/config.json", &bad);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("m/generation_config.json: key 'top_p'"), std::string::npos)
        << e.what();
  }
}

TEST(ConfigTest, LoadsFixtureFoldersAndGenerationFile) {
  for (const char* name : {"gpt2-tiny", "gpt2-tiny-f16", "gpt2-tiny-bf16", "llama-tiny",
                           "llama-tiny-f16", "llama-tiny-bf16"}) {
    const ModelConfig c = load_model_config(std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name);
    EXPECT_EQ(c.hidden_size, 64) << name;
    EXPECT_EQ(c.num_layers, 2) << name;
  }
  const ModelConfig f16 = load_model_config(std::string(LMSERVE_TEST_DATA_DIR) + "/models/llama-tiny-f16");
  EXPECT_EQ(f16.torch_dtype, kernels::DType::F16);
  EXPECT_EQ(f16.num_kv_heads, 2);

  const auto dir = std::filesystem::temp_directory_path() / ("lmserve_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << llama_json().dump();
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": 9})";
  const ModelConfig c = load_model_config(dir.string());
  EXPECT_EQ(c.eos_token_ids, (std::vector<int>{2, 9}));
  std::filesystem::remove(dir / "config.json");
  try {
    load_model_config(dir.string());
    FAIL() << "no error for a missing config.json";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("config.json: no such file"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
}

TEST(RopeTest, DefaultInvFreqTheta10000Dim16) {
  json j = llama_json();
  j["head_dim"] = 16;
  const ModelConfig c = parse(j);
  // 10000^(-2j/16) = 10^(-j/2).
  const double expected[8] = {1.0, 0.31622776601683794, 0.1, 0.031622776601683794,
                              0.01, 0.0031622776601683794, 0.001, 0.00031622776601683794};
  ASSERT_EQ(c.rope_inv_freq.size(), 8u);
  for (int i = 0; i < 8; ++i) {
    // float32 arithmetic: within a few ulp of the exact value.
    EXPECT_NEAR(c.rope_inv_freq[i], expected[i], expected[i] * 3e-7) << "j=" << i;
  }
  EXPECT_EQ(c.rope_inv_freq[0], 1.0f);
}

TEST(RopeTest, LinearScalingDividesByFactor) {
  json j = llama_json();
  const std::vector<float> base = parse(j).rope_inv_freq;
  j["rope_scaling"] = {{"type", "linear"}, {"factor", 4.0}};
  const std::vector<float> scaled = parse(j).rope_inv_freq;
  ASSERT_EQ(base.size(), scaled.size());
  for (size_t i = 0; i < base.size(); ++i) EXPECT_EQ(scaled[i], base[i] / 4.0f);
}

TEST(RopeTest, Llama3ScalingMatchesReferenceFormula) {
  json j = llama_json();
  j["hidden_size"] = 512;
  j["num_attention_heads"] = 4;  // head_dim 128, as Llama 3.1
  j["num_key_value_heads"] = 4;
  j["rope_theta"] = 500000.0;
  j["rope_scaling"] = {{"rope_type", "llama3"},
                       {"factor", 8.0},
                       {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0},
                       {"original_max_position_embeddings", 8192}};
  const ModelConfig c = parse(j);
  ASSERT_EQ(c.rope_inv_freq.size(), 64u);
  int low = 0, medium = 0, high = 0;
  for (int i = 0; i < 64; ++i) {
    // Meta's reference apply_scaling, in double.
    const double freq = std::pow(500000.0, -2.0 * i / 128.0);
    const double wavelen = 2 * M_PI / freq;
    double want;
    if (wavelen < 8192.0 / 4.0) {
      want = freq;
      ++high;
    } else if (wavelen > 8192.0 / 1.0) {
      want = freq / 8.0;
      ++low;
    } else {
      const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
      want = (1 - smooth) * freq / 8.0 + smooth * freq;
      ++medium;
    }
    EXPECT_NEAR(c.rope_inv_freq[i], want, want * 2e-6) << "j=" << i;
  }
  // The case covers all three regimes.
  EXPECT_GT(low, 0);
  EXPECT_GT(medium, 0);
  EXPECT_GT(high, 0);
}

}  // namespace
}  // namespace lmserve::engine
