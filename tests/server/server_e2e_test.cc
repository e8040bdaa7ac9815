// End-to-end tests over real HTTP against an in-process server on an ephemeral loopback
// port (demo/ model: gpt2-tiny weights + the GPT-2 tokenizer): every endpoint and field,
// streaming, and each error status.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <memory>
#include <thread>

#include "tests/server/http_client.h"
#include "tests/server/test_server.h"

namespace lmserve::server::test {
namespace {

TestServer& server() {
  static auto* s = new TestServer();  // shared by the suite; lives until exit
  return *s;
}
unsigned short port() { return server().port(); }

json completion(const json& body) {
  HttpReply r = post_json(port(), "/v1/completions", body);
  EXPECT_EQ(r.status, 200) << body.dump() << " → " << r.body;
  return r.json_body();
}

// The streamed chunks (JSON), checking the framing on the way.
std::vector<json> stream_completion(const json& body, HttpReply* raw = nullptr) {
  HttpReply r = post_json(port(), "/v1/completions", body);
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("content-type"), "text/event-stream");
  auto data = sse_data(r.body);
  EXPECT_FALSE(data.empty());
  EXPECT_EQ(data.back(), "[DONE]");
  std::vector<json> chunks;
  for (size_t i = 0; i + 1 < data.size(); ++i) chunks.push_back(json::parse(data[i]));
  if (raw) *raw = r;
  return chunks;
}

std::string joined_text(const std::vector<json>& chunks, int index = 0) {
  std::string text;
  for (const auto& c : chunks)
    for (const auto& ch : c["choices"])
      if (ch["index"] == index) text += ch["text"].get<std::string>();
  return text;
}

void expect_error(const HttpReply& r, int status, const std::string& param = "") {
  EXPECT_EQ(r.status, status) << r.body;
  json b = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(b.contains("error")) << r.body;
  for (const char* k : {"message", "type", "param", "code"}) EXPECT_TRUE(b["error"].contains(k)) << k;
  if (!param.empty()) {
    EXPECT_EQ(b["error"]["param"], param) << r.body;
  }
}

const json kGreedy = {{"prompt", "The quick brown fox"}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}};

TEST(ServerE2E, HealthModelsTokenizeDetokenize) {
  EXPECT_EQ(get(port(), "/health").status, 200);
  json models = get(port(), "/v1/models").json_body();
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"][0]["id"], "demo");
  EXPECT_EQ(models["data"][0]["max_model_len"], 256);

  json tok = post_json(port(), "/tokenize", {{"prompt", "Hello world"}}).json_body();
  EXPECT_EQ(tok["tokens"], json({15496, 995}));
  EXPECT_EQ(tok["count"], 2);
  EXPECT_EQ(tok["max_model_len"], 256);
  EXPECT_EQ(tok["token_strs"], json({"Hello", " world"}));
  json detok = post_json(port(), "/detokenize", {{"tokens", {15496, 995}}}).json_body();
  EXPECT_EQ(detok["prompt"], "Hello world");
  expect_error(post_json(port(), "/detokenize", {{"tokens", {99999}}}), 400, "tokens");
  expect_error(post_json(port(), "/tokenize", {{"text", "x"}}), 400, "text");
}

TEST(ServerE2E, CompletionBasicsAndPromptShapes) {
  json r = completion(kGreedy);
  EXPECT_EQ(r["object"], "text_completion");
  EXPECT_EQ(r["model"], "demo");
  EXPECT_EQ(r["choices"].size(), 1u);
  EXPECT_EQ(r["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(r["usage"]["completion_tokens"], 12);
  EXPECT_EQ(r["usage"]["total_tokens"], 16);
  std::string text = r["choices"][0]["text"];
  EXPECT_FALSE(text.empty());

  // The same prompt as token ids gives the same greedy text.
  json ids = post_json(port(), "/tokenize", {{"prompt", "The quick brown fox"}}).json_body()["tokens"];
  json by_ids = kGreedy;
  by_ids["prompt"] = ids;
  EXPECT_EQ(completion(by_ids)["choices"][0]["text"], text);

  json many = kGreedy;
  many["prompt"] = {"The quick brown fox", "Hello"};
  json two = completion(many);
  ASSERT_EQ(two["choices"].size(), 2u);
  EXPECT_EQ(two["choices"][0]["index"], 0);
  EXPECT_EQ(two["choices"][1]["index"], 1);
  EXPECT_EQ(two["choices"][0]["text"], text);
  many["prompt"] = {ids, {15496}};
  EXPECT_EQ(completion(many)["choices"][0]["text"], text);
}

TEST(ServerE2E, SeededSamplingNAndBestOf) {
  json body = {{"prompt", "Once upon a time"}, {"max_tokens", 10}, {"temperature", 0.9}, {"top_p", 0.95},
               {"top_k", 50}, {"min_p", 0.01}, {"typical_p", 0.99}, {"repetition_penalty", 1.1},
               {"presence_penalty", 0.3}, {"frequency_penalty", 0.2}, {"seed", 1234}, {"n", 3},
               {"ignore_eos", true}};
  json a = completion(body), b = completion(body);
  ASSERT_EQ(a["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a["choices"][i]["text"], b["choices"][i]["text"]);
  body["n"] = 1;
  body["best_of"] = 3;
  json best = completion(body);
  ASSERT_EQ(best["choices"].size(), 1u);
  EXPECT_EQ(best["usage"]["completion_tokens"], 30);  // best_of sequences are all generated
}

TEST(ServerE2E, BeamSearch) {
  json body = {{"prompt", "The quick brown fox"}, {"max_tokens", 8}, {"use_beam_search", true},
               {"best_of", 3}, {"n", 2}, {"temperature", 0}, {"length_penalty", 1.0}, {"early_stopping", true},
               {"ignore_eos", true}};
  json r = completion(body);
  ASSERT_EQ(r["choices"].size(), 2u);
  EXPECT_NE(r["choices"][0]["text"], r["choices"][1]["text"]);
  EXPECT_EQ(completion(body)["choices"], r["choices"]);
}

TEST(ServerE2E, LogprobsLegacyObject) {
  json body = kGreedy;
  body["logprobs"] = 3;
  json r = completion(body);
  const json& lp = r["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 12u);
  ASSERT_EQ(lp["token_logprobs"].size(), 12u);
  ASSERT_EQ(lp["top_logprobs"].size(), 12u);
  ASSERT_EQ(lp["text_offset"].size(), 12u);
  std::string joined;
  for (size_t i = 0; i < 12; ++i) {
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_GE(lp["top_logprobs"][i].size(), 3u);
    EXPECT_LE(lp["top_logprobs"][i].size(), 4u);
    // Greedy: the chosen token is the most likely one.
    double best = -1e9;
    for (auto& [k, v] : lp["top_logprobs"][i].items()) best = std::max(best, v.get<double>());
    EXPECT_NEAR(best, lp["token_logprobs"][i].get<double>(), 1e-5);
    if (i > 0) EXPECT_GE(lp["text_offset"][i], lp["text_offset"][i - 1]);
  }
  EXPECT_EQ(joined, r["choices"][0]["text"]);
}

TEST(ServerE2E, EchoLogprobsMaxTokensZeroScoresThePrompt) {
  const std::string prompt = "The capital of France is Paris";
  json r = completion({{"prompt", prompt}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}, {"temperature", 0}});
  const json& c = r["choices"][0];
  EXPECT_EQ(c["text"], prompt);
  EXPECT_EQ(c["finish_reason"], "length");
  const json& lp = c["logprobs"];
  json ids = post_json(port(), "/tokenize", {{"prompt", prompt}}).json_body()["tokens"];
  ASSERT_EQ(lp["tokens"].size(), ids.size());
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  EXPECT_EQ(lp["text_offset"][0], 0);
  EXPECT_EQ(r["usage"]["completion_tokens"], 0);
  EXPECT_EQ(r["usage"]["prompt_tokens"], ids.size());

  // The same numbers as /v1/perplexity gives for the text.
  json ppl = post_json(port(), "/v1/perplexity", {{"input", prompt}}).json_body();
  for (size_t i = 1; i < ids.size(); ++i)
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), ppl["token_logprobs"][i].get<double>(), 1e-5) << i;

  // echo with generation: prompt text first, then the completion.
  json g = completion({{"prompt", prompt}, {"max_tokens", 3}, {"echo", true}, {"logprobs", 0}, {"temperature", 0},
                       {"ignore_eos", true}});
  std::string text = g["choices"][0]["text"];
  EXPECT_EQ(text.rfind(prompt, 0), 0u);
  EXPECT_EQ(g["choices"][0]["logprobs"]["tokens"].size(), ids.size() + 3);
}

TEST(ServerE2E, PromptLogprobsExtension) {
  json r = completion({{"prompt", "a b c d"}, {"max_tokens", 1}, {"prompt_logprobs", 1}, {"temperature", 0}});
  const json& plp = r["choices"][0]["prompt_logprobs"];
  ASSERT_EQ(plp.size(), 4u);
  EXPECT_TRUE(plp[0].is_null());
  EXPECT_TRUE(plp[1].is_object());
}

TEST(ServerE2E, StopStringsAndStopTokenIds) {
  json base = kGreedy;
  base["max_tokens"] = 20;
  std::string full = completion(base)["choices"][0]["text"];
  ASSERT_GE(full.size(), 8u);
  std::string stop = full.substr(full.size() / 2, 2);
  size_t at = full.find(stop);
  json body = base;
  body["stop"] = {stop};
  json r = completion(body);
  EXPECT_EQ(r["choices"][0]["text"], full.substr(0, at));
  EXPECT_EQ(r["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(r["choices"][0]["stop_reason"], stop);
  body["include_stop_str_in_output"] = true;
  EXPECT_EQ(completion(body)["choices"][0]["text"], full.substr(0, at + stop.size()));

  // Streamed: the same text, and no chunk shows a piece of the stop string.
  body["include_stop_str_in_output"] = false;
  body["stream"] = true;
  auto chunks = stream_completion(body);
  EXPECT_EQ(joined_text(chunks), full.substr(0, at));

  // stop_token_ids: stop at the second generated token.
  json lp = base;
  lp["logprobs"] = 0;
  lp["max_tokens"] = 2;
  std::string second = completion(lp)["choices"][0]["logprobs"]["tokens"][1];
  json ids = post_json(port(), "/tokenize", {{"prompt", second}}).json_body()["tokens"];
  if (ids.size() == 1) {
    json st = base;
    st["stop_token_ids"] = ids;
    json s = completion(st);
    EXPECT_EQ(s["choices"][0]["finish_reason"], "stop");
    EXPECT_EQ(s["choices"][0]["stop_reason"], ids[0]);
    EXPECT_LE(s["usage"]["completion_tokens"].get<int>(), 2);
  }
}

TEST(ServerE2E, LogitBiasSpecialTokensAndMinTokens) {
  // A +100 bias forces EOS (50256) every step; skip_special_tokens decides whether it shows.
  json body = {{"prompt", "Hi"}, {"max_tokens", 3}, {"temperature", 0}, {"ignore_eos", true},
               {"logit_bias", {{"50256", 100}}}};
  json hidden = completion(body);
  EXPECT_EQ(hidden["choices"][0]["text"], "");
  body["skip_special_tokens"] = false;
  EXPECT_EQ(completion(body)["choices"][0]["text"], "<|endoftext|><|endoftext|><|endoftext|>");
  // Without ignore_eos the forced EOS ends the sequence at once, unless min_tokens holds it off.
  json eos = {{"prompt", "Hi"}, {"max_tokens", 5}, {"temperature", 0}, {"logit_bias", {{"50256", 100}}}};
  json stopped = completion(eos);
  EXPECT_EQ(stopped["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(stopped["usage"]["completion_tokens"], 1);
  eos["min_tokens"] = 3;
  EXPECT_GE(completion(eos)["usage"]["completion_tokens"].get<int>(), 3);
  eos["add_special_tokens"] = false;
  eos["user"] = "someone";
  EXPECT_EQ(post_json(port(), "/v1/completions", eos).status, 200);
}

TEST(ServerE2E, StreamingMatchesNonStreaming) {
  json body = kGreedy;
  body["logprobs"] = 1;
  body["n"] = 1;
  json whole = completion(body);
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto chunks = stream_completion(body);
  ASSERT_GE(chunks.size(), 2u);
  EXPECT_EQ(joined_text(chunks), whole["choices"][0]["text"]);
  json tokens = json::array();
  int finishes = 0;
  for (size_t i = 0; i + 1 < chunks.size(); ++i) {
    EXPECT_TRUE(chunks[i]["usage"].is_null());
    const json& ch = chunks[i]["choices"][0];
    for (auto& t : ch["logprobs"]["tokens"]) tokens.push_back(t);
    if (!ch["finish_reason"].is_null()) ++finishes;
  }
  EXPECT_EQ(finishes, 1);
  EXPECT_EQ(tokens, whole["choices"][0]["logprobs"]["tokens"]);
  const json& last = chunks.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 12);

  // n = 2 streams both choices, each with exactly one finish.
  json two = {{"prompt", "Hello"}, {"max_tokens", 5}, {"n", 2}, {"temperature", 1.0}, {"seed", 7},
              {"stream", true}, {"ignore_eos", true}};
  auto both = stream_completion(two);
  int finished[2] = {0, 0};
  for (const auto& c : both)
    for (const auto& ch : c["choices"])
      if (!ch["finish_reason"].is_null()) ++finished[ch["index"].get<int>()];
  EXPECT_EQ(finished[0], 1);
  EXPECT_EQ(finished[1], 1);
}

TEST(ServerE2E, StreamedPiecesAreCompleteUtf8) {
  // Bias toward byte tokens of multi-byte characters: chunks must still be valid UTF-8
  // (nlohmann would fail to parse the event otherwise) and join to the full text.
  json body = {{"prompt", "日本語のテキスト"}, {"max_tokens", 20}, {"temperature", 1.0}, {"seed", 3},
               {"ignore_eos", true}, {"logit_bias", {{"162", 5}, {"245", 5}, {"250", 5}}}};
  std::string whole = completion(body)["choices"][0]["text"];
  body["stream"] = true;
  EXPECT_EQ(joined_text(stream_completion(body)), whole);
}

TEST(ServerE2E, Embeddings) {
  json r = post_json(port(), "/v1/embeddings", {{"input", "Hello world"}}).json_body();
  EXPECT_EQ(r["object"], "list");
  ASSERT_EQ(r["data"].size(), 1u);
  const json& v = r["data"][0]["embedding"];
  ASSERT_EQ(v.size(), 64u);
  double norm = 0;
  for (auto& x : v) norm += x.get<double>() * x.get<double>();
  EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-4);
  EXPECT_EQ(r["usage"]["prompt_tokens"], 2);

  json b64 = post_json(port(), "/v1/embeddings", {{"input", "Hello world"}, {"encoding_format", "base64"}}).json_body();
  std::string s = b64["data"][0]["embedding"];
  EXPECT_EQ(s.size(), (64 * 4 + 2) / 3 * 4);

  json many = post_json(port(), "/v1/embeddings", {{"input", {"Hello world", "Bye"}}}).json_body();
  ASSERT_EQ(many["data"].size(), 2u);
  EXPECT_EQ(many["data"][0]["embedding"], v);
  EXPECT_EQ(many["data"][1]["index"], 1);
  json ids = post_json(port(), "/v1/embeddings", {{"input", {15496, 995}}}).json_body();
  EXPECT_EQ(ids["data"][0]["embedding"], v);
  json id_lists = post_json(port(), "/v1/embeddings", {{"input", {{15496, 995}, {15496}}}}).json_body();
  EXPECT_EQ(id_lists["data"].size(), 2u);
  json last = post_json(port(), "/v1/embeddings", {{"input", "Hello world"}, {"pooling", "last"}, {"normalize", false}})
                  .json_body();
  EXPECT_NE(last["data"][0]["embedding"], v);
  expect_error(post_json(port(), "/v1/embeddings", {{"input", "x"}, {"encoding_format", "hex"}}), 400, "encoding_format");
  expect_error(post_json(port(), "/v1/embeddings", {{"input", "x"}, {"pooling", "max"}}), 400, "pooling");
  expect_error(post_json(port(), "/v1/embeddings", {{"input", "x"}, {"dimensions", 8}}), 400, "dimensions");
  expect_error(post_json(port(), "/v1/embeddings", {{"inputs", "x"}}), 400, "inputs");
}

TEST(ServerE2E, Perplexity) {
  json r = post_json(port(), "/v1/perplexity", {{"input", "The quick brown fox jumps"}, {"top_logprobs", 2}}).json_body();
  size_t n = r["tokens"].size();
  ASSERT_EQ(n, 5u);
  EXPECT_EQ(r["token_strs"].size(), n);
  EXPECT_TRUE(r["token_logprobs"][0].is_null());
  double sum = 0;
  for (size_t i = 1; i < n; ++i) {
    sum += r["token_logprobs"][i].get<double>();
    EXPECT_EQ(r["top_logprobs"][i].size(), 2u);
  }
  EXPECT_NEAR(r["sum_logprob"].get<double>(), sum, 1e-6);
  EXPECT_NEAR(r["mean_nll"].get<double>(), -sum / (n - 1), 1e-6);
  EXPECT_NEAR(r["perplexity"].get<double>(), std::exp(-sum / (n - 1)), 1e-6 * r["perplexity"].get<double>());

  // Longer than the context (256): a sliding window still scores every token once.
  std::vector<int> ids;
  for (int i = 0; i < 400; ++i) ids.push_back(100 + (i * 37) % 5000);
  json long_r = post_json(port(), "/v1/perplexity", {{"input", ids}, {"window", 64}, {"stride", 32}}).json_body();
  EXPECT_EQ(long_r["num_scored"], 399);
  expect_error(post_json(port(), "/v1/perplexity", {{"input", "a b"}, {"window", 1}}), 400, "window");
  expect_error(post_json(port(), "/v1/perplexity", {{"input", "a"}}), 400, "input");
}

TEST(ServerE2E, Metrics) {
  completion(kGreedy);
  HttpReply r = get(port(), "/metrics");
  ASSERT_EQ(r.status, 200);
  EXPECT_NE(r.header("content-type").find("text/plain"), std::string::npos);
  EXPECT_GT(metric_value(r.body, "lmserve:generation_tokens_total", "model_name=\"demo\""), 0);
  EXPECT_GT(metric_value(r.body, "lmserve:prompt_tokens_total"), 0);
  EXPECT_GT(metric_value(r.body, "http_requests_total", "endpoint=\"/v1/completions\",model_name=\"demo\",status=\"200\""), 0);
  EXPECT_GT(metric_value(r.body, "lmserve:time_to_first_token_seconds_count"), 0);
  EXPECT_EQ(metric_value(r.body, "lmserve:cache_config_info", "block_size=\"16\""), 1);
}

TEST(ServerE2E, PromtoolAcceptsTheMetrics) {
  completion(kGreedy);
  std::string path = ::testing::TempDir() + "/lmserve_metrics.txt";
  {
    std::FILE* f = std::fopen(path.c_str(), "w");
    std::string body = get(port(), "/metrics").body;
    std::fwrite(body.data(), 1, body.size(), f);
    std::fclose(f);
  }
  std::string cmd = "promtool check metrics < " + path + " 2>&1";
  std::FILE* p = popen(cmd.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[512];
  while (std::fgets(buf, sizeof buf, p)) out += buf;
  int rc = pclose(p);
  ASSERT_NE(WEXITSTATUS(rc), 127) << "promtool not installed (Debian package prometheus)";
  // The one accepted lint: vLLM-style names contain ':'.
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line))
    EXPECT_NE(line.find("metric names should not contain ':'"), std::string::npos) << "promtool: " << line;
  EXPECT_TRUE(WEXITSTATUS(rc) == 0 || WEXITSTATUS(rc) == 3) << out;
}

TEST(ServerE2E, ErrorStatusesOverHttp) {
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "x"}, {"suffix", "y"}}), 400, "suffix");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "x"}, {"max_tokens", 300}}), 400, "max_tokens");
  HttpReply too_long = post_json(port(), "/v1/completions", {{"prompt", "x"}, {"max_tokens", 300}});
  EXPECT_NE(too_long.body.find("256"), std::string::npos);
  EXPECT_NE(too_long.body.find("301"), std::string::npos);
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "x"}, {"temperature", -1}}), 400, "temperature");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "x"}, {"logprobs", 21}}), 400, "logprobs");
  expect_error(post_json(port(), "/v1/completions", {{"prompt", "x"}, {"model", "gpt-4"}}), 404);
  expect_error(http_request(port(), "POST", "/v1/completions", "{not json"), 400);
  expect_error(http_request(port(), "POST", "/v1/completions", ""), 400);
  expect_error(http_request(port(), "POST", "/v1/completions", "[1,2]"), 400);
  expect_error(get(port(), "/v1/chat/completions"), 404);
  expect_error(get(port(), "/v1/completions"), 405);
  expect_error(http_request(port(), "OPTIONS", "/v1/completions", "", {{"Origin", "http://x"}}), 405);
  EXPECT_TRUE(get(port(), "/v1/models", {{"Origin", "http://x"}}).header("access-control-allow-origin").empty());
}

TEST(ServerE2E, KeepAliveAndHttp10) {
  Connection c(port());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.request("GET", "/health").status, 200);
  EXPECT_EQ(c.request("POST", "/tokenize", R"({"prompt":"a"})").status, 200);
  // HTTP/1.0 streaming: no chunked encoding; the stream ends with the connection.
  Connection old(port());
  HttpReply r = old.request("POST", "/v1/completions",
                            R"({"prompt":"Hi","max_tokens":3,"stream":true,"temperature":0,"ignore_eos":true})", {}, 10);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(sse_data(r.body).back(), "[DONE]");
}

// A second server with every limit switched on: API key, CORS, small body, short timeouts.
TestServer& strict_server() {
  static auto* s = [] {
    ServerOptions o = test_options();
    o.api_key = "test-key";
    o.allowed_origins = {"http://allowed.example"};
    o.max_body_bytes = 64 * 1024;
    o.header_timeout = 1.0;
    o.body_timeout = 1.0;
    o.request_timeout = 0.001;
    return new TestServer(o);
  }();
  return *s;
}

TEST(ServerE2E, ApiKeyCorsLimitsAndTimeouts) {
  unsigned short p = strict_server().port();
  Headers auth = {{"Authorization", "Bearer test-key"}};
  EXPECT_EQ(get(p, "/health").status, 200);  // public
  expect_error(get(p, "/v1/models"), 401);
  expect_error(get(p, "/v1/models", {{"Authorization", "Bearer nope"}}), 401);
  expect_error(post_json(p, "/tokenize", {{"prompt", "x"}}), 401);
  EXPECT_EQ(get(p, "/v1/models", auth).status, 200);

  Headers cors = auth;
  cors.push_back({"Origin", "http://allowed.example"});
  EXPECT_EQ(get(p, "/v1/models", cors).header("access-control-allow-origin"), "http://allowed.example");
  HttpReply pre = http_request(p, "OPTIONS", "/v1/completions", "", {{"Origin", "http://allowed.example"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_NE(pre.header("access-control-allow-methods").find("POST"), std::string::npos);
  EXPECT_TRUE(get(p, "/v1/models", {{"Authorization", "Bearer test-key"}, {"Origin", "http://evil.example"}})
                  .header("access-control-allow-origin")
                  .empty());

  // 413: a body past --max-body-bytes.
  std::string big = "{\"prompt\":\"" + std::string(100 * 1024, 'a') + "\"}";
  expect_error(http_request(p, "POST", "/v1/completions", big, auth), 413);

  // 504: the request outlives --request-timeout.
  expect_error(post_json(p, "/v1/completions", {{"prompt", "x"}, {"max_tokens", 200}, {"ignore_eos", true}}, auth), 504);

  // A body that never finishes arriving: the connection is closed after --body-timeout.
  RawSocket slow(p);
  slow.send("POST /tokenize HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer test-key\r\nContent-Length: 100\r\n\r\n{");
  auto s0 = std::chrono::steady_clock::now();
  EXPECT_EQ(slow.read_all(5), "");
  EXPECT_LT(std::chrono::steady_clock::now() - s0, std::chrono::seconds(4));

  // Headers that never finish: the connection is closed after --header-timeout.
  RawSocket idle(p);
  idle.send("GET /health HTTP/1.1\r\n");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(idle.read_all(5), "");
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(4));
}

TEST(ServerE2E, HealthIs503UntilAModelIsServed) {
  ServerOptions o = test_options();
  o.model = "/nonexistent/model";
  App app(o, {.handle_signals = false, .print_progress = false});
  app.start();
  EXPECT_FALSE(app.wait_until_loaded());
  HttpReply health = get(app.port(), "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.body.find("/nonexistent/model"), std::string::npos) << health.body;
  expect_error(post_json(app.port(), "/v1/completions", {{"prompt", "x"}}), 503);
  expect_error(post_json(app.port(), "/tokenize", {{"prompt", "x"}}), 503);
  EXPECT_EQ(get(app.port(), "/v1/models").status, 200);
}

}  // namespace
}  // namespace lmserve::server::test
