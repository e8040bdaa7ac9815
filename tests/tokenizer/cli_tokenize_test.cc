// End to end: `lmserve tokenize` / `lmserve detokenize` on the fixture tokenizers, single and
// --jsonl batch modes, including bad input.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

struct Result {
  int status;
  std::string out;
};

Result run(const std::string& args) {
  const std::string cmd = std::string(LMSERVE_BINARY_DIR) + "/cli/lmserve " + args + " 2>/dev/null";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return {-1, ""};
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out};
}

std::string fixture(const std::string& name) { return std::string(LMSERVE_TEST_DATA_DIR) + "/tokenizers/" + name; }

std::vector<json> lines(const std::string& out) {
  std::vector<json> v;
  size_t pos = 0;
  while (pos < out.size()) {
    const size_t nl = out.find('\n', pos);
    v.push_back(json::parse(out.substr(pos, nl - pos)));
    pos = nl == std::string::npos ? out.size() : nl + 1;
  }
  return v;
}

TEST(CliTokenize, TextToJson) {
  const Result r = run("tokenize --model " + fixture("mistral7b") + " --text 'Hello world' --json");
  ASSERT_EQ(r.status, 0);
  const json doc = json::parse(r.out);
  EXPECT_EQ(doc["ids"], json::parse("[1, 22557, 1526]"));
  EXPECT_EQ(doc["tokens"][0], "<s>");
  const Result plain = run("tokenize --model " + fixture("mistral7b") + " --text 'Hello world' --no-special --json");
  EXPECT_EQ(json::parse(plain.out)["ids"], json::parse("[22557, 1526]"));
}

TEST(CliDetokenize, IdsToJson) {
  const Result r = run("detokenize --model " + fixture("mistral7b") + " --ids 1,22557,1526 --json");
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(json::parse(r.out)["text"], "<s> Hello world");
  const Result skip = run("detokenize --model " + fixture("mistral7b") + " --ids 1,22557,1526 --skip-special --json");
  EXPECT_EQ(json::parse(skip.out)["text"], "Hello world");
}

TEST(CliDetokenize, BadIdIsAnError) {
  EXPECT_EQ(run("detokenize --model " + fixture("gpt2") + " --ids 1,99999999").status, 1);
  EXPECT_EQ(run("detokenize --model " + fixture("gpt2") + " --ids 1,x").status, 1);
  EXPECT_EQ(run("tokenize --model /nonexistent --text hi").status, 1);
}

TEST(CliBatch, JsonlLinesRunIndependently) {
  const std::string dir = ::testing::TempDir();
  const std::string in = dir + "/tokenize_batch.jsonl";
  std::ofstream(in) << R"({"text": "Hello world", "add_special_tokens": true})" << "\n"
                    << "not json\n"
                    << R"({"text": "Hi", "add_special_tokens": false})" << "\n"
                    << R"({"ids": [1]})" << "\n";
  const Result r = run("tokenize --model " + fixture("spm_bpe_small") + " --jsonl " + in);
  ASSERT_EQ(r.status, 0);
  const auto out = lines(r.out);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0]["ids"][0], 1);
  EXPECT_TRUE(out[1].contains("error"));
  EXPECT_EQ(out[2]["tokens"].size(), out[2]["ids"].size());
  EXPECT_TRUE(out[3].contains("error"));

  const std::string din = dir + "/detokenize_batch.jsonl";
  std::ofstream(din) << R"({"ids": [15496, 995], "skip_special_tokens": false})" << "\n"
                     << R"({"ids": [50256, 15496], "skip_special_tokens": true})" << "\n"
                     << R"({"ids": [123456789]})" << "\n";
  const Result d = run("detokenize --model " + fixture("gpt2") + " --jsonl " + din);
  ASSERT_EQ(d.status, 0);
  const auto dout = lines(d.out);
  ASSERT_EQ(dout.size(), 3u);
  EXPECT_EQ(dout[0]["text"], "Hello world");
  EXPECT_EQ(dout[1]["text"], "Hello");
  EXPECT_NE(dout[2]["error"].get<std::string>().find("123456789"), std::string::npos);
}

}  // namespace
