// Concurrency over real HTTP (named ServerConcurrency* so a TSan build can run just
// these): 64 mixed clients get exactly their stand-alone results; 200 clients hanging up
// mid-stream leave nothing running and no KV blocks used; a burst past the queue limit
// gets 429s at once and the server keeps serving.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <thread>

#include "tests/server/http_client.h"
#include "tests/server/test_server.h"

namespace lmserve::server::test {
namespace {

struct Call {
  std::string path;
  json body;
};

// What a response must reproduce: choices for completions, data for embeddings.
json result_of(const Call& call, const HttpReply& r) {
  json b = json::parse(r.body);
  if (call.path == "/v1/embeddings") return b["data"];
  json choices = b["choices"];
  return choices;
}

std::vector<Call> mixed_calls() {
  const char* prompts[] = {"The quick brown fox", "Once upon a time there was", "In 1492, Columbus",
                           "def fibonacci(n):"};
  std::vector<Call> calls;
  for (int i = 0; i < 4; ++i) {
    std::string p = prompts[i];
    calls.push_back({"/v1/completions", {{"prompt", p}, {"max_tokens", 16}, {"temperature", 0}, {"ignore_eos", true},
                                         {"logprobs", 2}}});
    calls.push_back({"/v1/completions", {{"prompt", p}, {"max_tokens", 8}, {"use_beam_search", true}, {"best_of", 3},
                                         {"n", 2}, {"temperature", 0}, {"ignore_eos", true}}});
    calls.push_back({"/v1/completions", {{"prompt", p}, {"max_tokens", 16}, {"temperature", 0.8}, {"top_p", 0.9},
                                         {"seed", 100 + i}, {"n", 2}, {"ignore_eos", true}}});
    calls.push_back({"/v1/completions", {{"prompt", p}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}}});
    calls.push_back({"/v1/embeddings", {{"input", p}}});
  }
  return calls;
}

TEST(ServerConcurrency, SixtyFourMixedClientsGetTheirStandAloneResults) {
  TestServer server;
  auto calls = mixed_calls();
  std::vector<json> alone;
  for (const auto& c : calls) {
    HttpReply r = post_json(server.port(), c.path, c.body);
    ASSERT_EQ(r.status, 200) << c.body.dump() << r.body;
    alone.push_back(result_of(c, r));
  }
  constexpr int kClients = 64;
  std::vector<json> got(kClients);
  std::vector<int> status(kClients, 0);
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i)
    threads.emplace_back([&, i] {
      const Call& c = calls[i % calls.size()];
      HttpReply r = post_json(server.port(), c.path, c.body);
      status[i] = r.status;
      if (r.status == 200) got[i] = result_of(c, r);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    ASSERT_EQ(status[i], 200) << i;
    EXPECT_EQ(got[i], alone[i % calls.size()]) << "client " << i << ": " << calls[i % calls.size()].body.dump();
  }
}

std::string metrics_text(unsigned short port) { return get(port, "/metrics").body; }

TEST(ServerConcurrency, ClientsHangingUpMidStreamFreeTheirRequests) {
  TestServer server;
  const unsigned short port = server.port();
  const std::string body =
      json{{"prompt", "Tell me a long story"}, {"max_tokens", 200}, {"temperature", 0}, {"ignore_eos", true},
           {"stream", true}}
          .dump();
  const std::string request = "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                              "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  constexpr int kRequests = 200, kThreads = 16;
  std::atomic<int> next{0}, saw_data{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      while (next.fetch_add(1) < kRequests) {
        RawSocket s(port);
        s.send(request);
        std::string got;
        // Wait for the first SSE event, then hang up with the stream half-way.
        for (size_t want = 256; want < 64 * 1024 && got.find("data: {") == std::string::npos; want *= 2)
          got = s.read_at_least(want, 10);
        if (got.find("data: {") != std::string::npos) saw_data.fetch_add(1);
        s.close();
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(saw_data.load(), kRequests);

  // Every request aborted: nothing running or waiting, no KV block in use.
  std::string text;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  do {
    text = metrics_text(port);
    if (metric_value(text, "lmserve:num_requests_running") == 0 &&
        metric_value(text, "lmserve:num_requests_waiting") == 0 &&
        metric_value(text, "lmserve:kv_cache_usage_perc") == 0)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  } while (std::chrono::steady_clock::now() < deadline);
  EXPECT_EQ(metric_value(text, "lmserve:num_requests_running"), 0) << text;
  EXPECT_EQ(metric_value(text, "lmserve:num_requests_waiting"), 0);
  EXPECT_EQ(metric_value(text, "lmserve:kv_cache_usage_perc"), 0);
  // Far fewer tokens than 200 × 200 were generated: the aborts stopped the work.
  EXPECT_LT(metric_value(text, "lmserve:generation_tokens_total"), 200.0 * 200.0);
  EXPECT_GT(metric_value(text, "lmserve:request_success_total", "finished_reason=\"abort\""), 0);
  HttpReply after = post_json(port, "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 2}});
  EXPECT_EQ(after.status, 200);
}

TEST(ServerConcurrency, OverloadBurstGets429AndTheServerRecovers) {
  ServerOptions o = test_options();
  o.max_num_seqs = 2;
  o.max_queue = 2;
  TestServer server(o);
  constexpr int kBurst = 32;
  std::vector<int> status(kBurst, 0);
  std::vector<double> seconds(kBurst, 0);
  std::vector<std::string> bodies(kBurst);
  std::vector<std::thread> threads;
  for (int i = 0; i < kBurst; ++i)
    threads.emplace_back([&, i] {
      auto t0 = std::chrono::steady_clock::now();
      HttpReply r = post_json(server.port(), "/v1/completions",
                              {{"prompt", "Once upon a time"}, {"max_tokens", 250}, {"ignore_eos", true},
                               {"temperature", 0}});
      seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      status[i] = r.status;
      bodies[i] = r.body;
    });
  for (auto& t : threads) t.join();
  int ok = 0, rejected = 0;
  double slowest_429 = 0, slowest_ok = 0;
  for (int i = 0; i < kBurst; ++i) {
    if (status[i] == 200) {
      ++ok;
      slowest_ok = std::max(slowest_ok, seconds[i]);
    } else {
      ASSERT_EQ(status[i], 429) << bodies[i];
      ++rejected;
      slowest_429 = std::max(slowest_429, seconds[i]);
      EXPECT_EQ(json::parse(bodies[i])["error"]["type"], "rate_limit_error");
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GE(ok, 2);
  EXPECT_EQ(get(server.port(), "/health").status, 200);
  HttpReply later = post_json(server.port(), "/v1/completions", {{"prompt", "Hi"}, {"max_tokens", 4}});
  EXPECT_EQ(later.status, 200);
  std::printf("overload: %d ok, %d rejected; slowest 429 after %.3f s, slowest 200 after %.3f s\n", ok, rejected,
              slowest_429, slowest_ok);
}

}  // namespace
}  // namespace lmserve::server::test
