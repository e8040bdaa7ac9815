// `lmserve generate | score | embed` end to end: the built binary run through popen on
// the fixture models, JSON shapes and values against golden.json, and error exits.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

struct CliRun {
  int exit_code = -1;
  std::string out;
  std::string err;
};

CliRun lmserve(const std::string& args) {
  const fs::path err_file = fs::temp_directory_path() / ("lmserve_cli_err_" + std::to_string(::getpid()));
  const std::string cmd = std::string(LMSERVE_BINARY_DIR) + "/cli/lmserve " + args + " 2>" + err_file.string();
  CliRun r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.out.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream in(err_file);
  std::stringstream ss;
  ss << in.rdbuf();
  r.err = ss.str();
  fs::remove(err_file);
  return r;
}

std::string model(const std::string& name) { return std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name; }

nlohmann::json golden(const std::string& name) {
  std::ifstream in(model(name) + "/golden.json");
  return nlohmann::json::parse(in);
}

std::string csv(const nlohmann::json& ids) {
  std::string s;
  for (const auto& id : ids) s += (s.empty() ? "" : ",") + std::to_string(id.get<int>());
  return s;
}

nlohmann::json parse_json(const CliRun& r) {
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out);  // exactly one document on stdout
}

// One line on stderr naming the option, exit code 1.
void expect_error(const std::string& args, const std::string& option) {
  CliRun r = lmserve(args);
  EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(option), std::string::npos) << args << "\nstderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_TRUE(r.out.empty());
}

TEST(CliGenerate, GreedyIdsMatchGolden) {
  const auto g = golden("llama-tiny");
  const auto& pr = g["prompts"][3];
  const nlohmann::json doc = parse_json(lmserve("generate --model " + model("llama-tiny") + " --ids " +
                                                csv(pr["tokens"]) + " --max-tokens 24 --ignore-eos --json"));
  ASSERT_EQ(doc["sequences"].size(), 1u);
  const auto& seq = doc["sequences"][0];
  EXPECT_EQ(seq["ids"], pr["greedy"]["tokens"]);
  EXPECT_EQ(seq["finish_reason"], "length");
  EXPECT_TRUE(seq["cumulative_logprob"].is_number());
  EXPECT_TRUE(seq["score"].is_null());
  EXPECT_FALSE(seq.contains("text"));  // no tokenizer.json in the fixture
}

TEST(CliGenerate, EosEndsTheSequenceAndIsIncluded) {
  const auto g = golden("gpt2-tiny");
  const auto& pr = g["prompts"][2];
  const auto& ge = pr["greedy_eos"];
  const nlohmann::json doc = parse_json(lmserve("generate --model " + model("gpt2-tiny") + " --ids " + csv(pr["tokens"]) +
                                                " --max-tokens 24 --eos-token-id " + std::to_string(ge["eos_token_id"].get<int>()) +
                                                " --json"));
  EXPECT_EQ(doc["sequences"][0]["ids"], ge["tokens"]);
  EXPECT_EQ(doc["sequences"][0]["finish_reason"], ge["stopped_at_eos"].get<bool>() ? "stop" : "length");
}

TEST(CliGenerate, BeamSearchMatchesGolden) {
  const auto g = golden("llama-tiny");
  const auto& pr = g["prompts"][4];
  const auto& run = pr["beam_search"][1];  // length_penalty 0.6 with an EOS
  const nlohmann::json doc = parse_json(lmserve(
      "generate --model " + model("llama-tiny") + " --ids " + csv(pr["tokens"]) + " --max-tokens 16 --beams 4 --num-return 4" +
      " --early-stopping --length-penalty " + std::to_string(run["length_penalty"].get<double>()) +
      " --eos-token-id " + std::to_string(run["eos_token_id"].get<int>()) + " --json"));
  ASSERT_EQ(doc["sequences"].size(), run["sequences"].size());
  for (size_t r = 0; r < run["sequences"].size(); ++r) {
    EXPECT_EQ(doc["sequences"][r]["ids"], run["sequences"][r]["tokens"]) << r;
    EXPECT_NEAR(doc["sequences"][r]["score"].get<double>(), run["sequences"][r]["score"].get<double>(), 1e-3);
  }
}

TEST(CliGenerate, LogprobsAndManySamples) {
  const nlohmann::json doc = parse_json(lmserve("generate --model " + model("gpt2-tiny") +
                                                " --ids 10,20,30 --max-tokens 3 --ignore-eos --temperature 0.8 --seed 7 --n 3 --logprobs 2 --json"));
  ASSERT_EQ(doc["sequences"].size(), 3u);
  for (const auto& seq : doc["sequences"]) {
    ASSERT_EQ(seq["logprobs"].size(), 3u);
    double sum = 0;
    for (size_t i = 0; i < 3; ++i) {
      const auto& lp = seq["logprobs"][i];
      EXPECT_EQ(lp["id"], seq["ids"][i]);
      EXPECT_EQ(lp["top"].size(), 2u);
      EXPECT_TRUE(lp["top"][0].contains("id") && lp["top"][0].contains("logprob"));
      sum += lp["logprob"].get<double>();
    }
    EXPECT_NEAR(seq["cumulative_logprob"].get<double>(), sum, 1e-4);
  }
  const nlohmann::json many = parse_json(lmserve("generate --model " + model("llama-tiny") +
                                                 " --ids 5,6,7 --max-tokens 1 --ignore-eos --temperature 1 --top-k 20 --seed 3 --n 4096 --json"));
  ASSERT_EQ(many["sequences"].size(), 4096u);
  EXPECT_EQ(many["sequences"][4095]["ids"].size(), 1u);
}

TEST(CliGenerate, BadParametersNameTheOption) {
  const std::string base = "generate --model " + model("llama-tiny") + " --ids 1,2,3 ";
  expect_error(base + "--temperature -1", "--temperature");
  expect_error(base + "--top-p 1.5", "--top-p");
  expect_error(base + "--top-k -2", "--top-k");
  expect_error(base + "--beams 2 --num-return 3", "--num-return");
  expect_error(base + "--logprobs 21", "--logprobs");
  expect_error(base + "--max-tokens 600", "--max-tokens");
  expect_error(base + "--stop-token-ids 4,x", "--stop-token-ids");
  expect_error("generate --model " + model("llama-tiny") + " --ids 1,999999", "--ids");
  expect_error("generate --model " + model("llama-tiny") + " --prompt hello", "tokenizer.json");
  expect_error("generate --model " + model("llama-tiny"), "--prompt");
  expect_error("generate --model /nonexistent/model --ids 1", "/nonexistent/model");
}

TEST(CliScore, JsonShapeAndValuesMatchGolden) {
  const auto g = golden("llama-tiny");
  const auto& pr = g["prompts"][4];
  const nlohmann::json doc = parse_json(lmserve("score --model " + model("llama-tiny") + " --ids " + csv(pr["tokens"]) +
                                                " --top-logprobs 2 --json"));
  const size_t n = pr["tokens"].size();
  EXPECT_EQ(doc["tokens"], pr["tokens"]);
  ASSERT_EQ(doc["token_logprobs"].size(), n);
  EXPECT_TRUE(doc["token_logprobs"][0].is_null());
  EXPECT_TRUE(doc["top_logprobs"][0].is_null());
  for (size_t i = 1; i < n; ++i) {
    EXPECT_NEAR(doc["token_logprobs"][i].get<double>(), pr["logprobs"]["token_logprobs"][i - 1].get<double>(), 1e-3);
    ASSERT_EQ(doc["top_logprobs"][i].size(), 2u);
    EXPECT_EQ(doc["top_logprobs"][i][0]["id"], pr["top_ids"][i - 1][0]);
  }
  EXPECT_EQ(doc["num_scored"], n - 1);
  const double ppl = pr["logprobs"]["perplexity"];
  EXPECT_NEAR(doc["perplexity"].get<double>(), ppl, 1e-4 * ppl);
  EXPECT_NEAR(doc["mean_nll"].get<double>(), std::log(ppl), 1e-4);
  EXPECT_NEAR(doc["sum_logprob"].get<double>(), -doc["mean_nll"].get<double>() * (n - 1), 1e-3);
}

TEST(CliScore, SlidingWindowScoresEveryToken) {
  const auto g = golden("gpt2-tiny");
  const auto& pr = g["prompts"].back();
  const nlohmann::json doc = parse_json(lmserve("score --model " + model("gpt2-tiny") + " --ids " + csv(pr["tokens"]) +
                                                " --window 64 --stride 32 --json"));
  EXPECT_EQ(doc["num_scored"], pr["tokens"].size() - 1);
  EXPECT_TRUE(std::isfinite(doc["perplexity"].get<double>()));
}

TEST(CliScore, BadParametersNameTheOption) {
  const std::string base = "score --model " + model("llama-tiny") + " ";
  expect_error(base + "--ids 1,2,3 --top-logprobs 21", "--top-logprobs");
  expect_error(base + "--ids 1,abc", "--ids");
  expect_error(base + "--ids 1,2,3 --window 1", "--window");
  expect_error(base + "--ids 1,2,3 --window 8 --stride 9", "--stride");
  expect_error(base + "--text hello", "tokenizer.json");
  expect_error(base + "--ids 1,2 --text hello", "exactly one");
}

TEST(CliEmbed, JsonMatchesGolden) {
  const auto g = golden("gpt2-tiny");
  const auto& pr = g["prompts"][5];
  const std::string base = "embed --model " + model("gpt2-tiny") + " --ids " + csv(pr["tokens"]) + " --json";
  const nlohmann::json mean = parse_json(lmserve(base));
  const nlohmann::json last = parse_json(lmserve(base + " --pooling last --no-normalize"));
  EXPECT_EQ(mean["num_tokens"], pr["tokens"].size());
  const auto& want_mean = pr["embeddings"]["mean_normalized"];
  const auto& want_last = pr["embeddings"]["last"];
  ASSERT_EQ(mean["embedding"].size(), want_mean.size());
  ASSERT_EQ(last["embedding"].size(), want_last.size());
  for (size_t j = 0; j < want_mean.size(); ++j) {
    EXPECT_NEAR(mean["embedding"][j].get<double>(), want_mean[j].get<double>(), 1e-4);
    EXPECT_NEAR(last["embedding"][j].get<double>(), want_last[j].get<double>(), 1e-4);
  }
  expect_error("embed --model " + model("gpt2-tiny") + " --ids 1,2 --pooling max", "--pooling");
}

// A model folder with the real GPT-2 tokenizer next to the tiny GPT-2 weights.
class CliWithTokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lmserve_cli_tok_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "model.safetensors"}) fs::create_symlink(fs::path(model("gpt2-tiny")) / f, dir_ / f);
    const fs::path tok = fs::path(LMSERVE_TEST_DATA_DIR) / "tokenizers" / "gpt2";
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"}) fs::create_symlink(tok / f, dir_ / f);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(CliWithTokenizer, TextInputsAndStopStrings) {
  const std::string m = " --model " + dir_.string();
  CliRun plain = lmserve("generate" + m + " --prompt 'Hello world' --max-tokens 12 --ignore-eos --json");
  if (plain.exit_code != 0 && plain.err.find("tokenizer") != std::string::npos) GTEST_SKIP() << "built without the tokenizer";
  const nlohmann::json doc = parse_json(plain);
  const auto& seq = doc["sequences"][0];
  ASSERT_TRUE(seq.contains("text"));
  const std::string text = seq["text"];
  EXPECT_EQ(seq["ids"].size(), 12u);
  // Stop at a piece of the text it produces: cut there, finish_reason stop, fewer ids.
  std::string stop;
  for (size_t i = text.size() / 3; i + 2 <= text.size() && stop.empty(); ++i)
    if (std::isalnum(static_cast<unsigned char>(text[i])) && std::isalnum(static_cast<unsigned char>(text[i + 1])))
      stop = text.substr(i, 2);
  if (stop.empty()) GTEST_SKIP() << "no shell-safe stop string in: " << text;
  const nlohmann::json stopped = parse_json(lmserve("generate" + m + " --prompt 'Hello world' --max-tokens 12 --ignore-eos --stop '" +
                                                    stop + "' --json"));
  const auto& s2 = stopped["sequences"][0];
  EXPECT_EQ(s2["finish_reason"], "stop");
  EXPECT_EQ(s2["text"].get<std::string>(), text.substr(0, text.find(stop)));
  EXPECT_LE(s2["ids"].size(), seq["ids"].size());
  const nlohmann::json score = parse_json(lmserve("score" + m + " --text 'Hello world, hello' --json"));
  EXPECT_GT(score["num_scored"].get<int>(), 0);
  const nlohmann::json emb = parse_json(lmserve("embed" + m + " --text 'Hello world' --json"));
  EXPECT_EQ(emb["embedding"].size(), 64u);
}

}  // namespace
