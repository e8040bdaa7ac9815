// lmserve-bench-load: replays a mix of streamed completion requests against an
// OpenAI-compatible server at a fixed concurrency (one kept-alive connection per
// client) and prints throughput (requests/s, output tokens/s) and latency percentiles:
// TTFT (request sent → first text event), inter-token latency (gaps between text
// events) and TPOT ((last - first event) / (tokens - 1), per request).
//
// Prompts are token-id lists (random ids below --vocab) so the same mix works with any
// tokenizer; their lengths and max_tokens vary per request, deterministically by --seed.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using net::ip::tcp;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8000;
  std::string model;
  std::string api_key;
  int concurrency = 8;
  int requests = 64;
  int vocab = 32000;
  int min_prompt = 16, max_prompt = 256;
  int min_tokens = 32, max_tokens = 128;
  unsigned seed = 1;
  bool json_output = false;
};

struct Sample {
  bool ok = false;
  double ttft = 0, e2e = 0, tpot = 0;
  int output_tokens = 0;
  std::vector<double> gaps;
};

json make_request(const Options& o, int index) {
  std::mt19937 rng(o.seed * 7919u + static_cast<unsigned>(index));
  int prompt_len = std::uniform_int_distribution<int>(o.min_prompt, o.max_prompt)(rng);
  int max_tokens = std::uniform_int_distribution<int>(o.min_tokens, o.max_tokens)(rng);
  std::vector<int> prompt(prompt_len);
  std::uniform_int_distribution<int> id(1, o.vocab - 1);
  for (int& t : prompt) t = id(rng);
  json body = {{"prompt", prompt}, {"max_tokens", max_tokens}, {"ignore_eos", true}, {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  // A quarter sampled (seeded), the rest greedy: both paths of the sampler get load.
  if (index % 4 == 3) {
    body["temperature"] = 0.8;
    body["top_p"] = 0.95;
    body["seed"] = index;
  } else {
    body["temperature"] = 0;
  }
  if (!o.model.empty()) body["model"] = o.model;
  return body;
}

Sample run_one(tcp::socket& socket, beast::flat_buffer& buffer, const Options& o, int index) {
  Sample s;
  http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
  req.set(http::field::host, o.host);
  req.set(http::field::content_type, "application/json");
  if (!o.api_key.empty()) req.set(http::field::authorization, "Bearer " + o.api_key);
  req.body() = make_request(o, index).dump();
  req.prepare_payload();
  req.keep_alive(true);
  auto t0 = Clock::now();
  http::write(socket, req);

  http::response_parser<http::empty_body> parser;
  parser.body_limit(1ull << 32);
  std::string pending;
  std::vector<Clock::time_point> events;
  auto on_chunk = [&](std::uint64_t, beast::string_view body, boost::system::error_code&) {
    auto now = Clock::now();
    pending.append(body.data(), body.size());
    size_t end;
    while ((end = pending.find("\n\n")) != std::string::npos) {
      std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0 || event == "data: [DONE]") continue;
      json j = json::parse(event.substr(6), nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("usage") && j["usage"].is_object()) s.output_tokens = j["usage"]["completion_tokens"];
      if (j.contains("choices") && !j["choices"].empty() && !j["choices"][0]["text"].get<std::string>().empty())
        events.push_back(now);
    }
    return body.size();
  };
  parser.on_chunk_body(on_chunk);
  http::read_header(socket, buffer, parser);
  if (parser.get().result() != http::status::ok) {
    http::read(socket, buffer, parser);
    return s;
  }
  http::read(socket, buffer, parser);
  auto t1 = Clock::now();
  if (events.empty()) return s;
  s.ok = true;
  s.ttft = std::chrono::duration<double>(events.front() - t0).count();
  s.e2e = std::chrono::duration<double>(t1 - t0).count();
  for (size_t i = 1; i < events.size(); ++i) s.gaps.push_back(std::chrono::duration<double>(events[i] - events[i - 1]).count());
  if (s.output_tokens > 1)
    s.tpot = std::chrono::duration<double>(events.back() - events.front()).count() / (s.output_tokens - 1);
  return s;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(std::min<double>(v.size() - 1, p / 100.0 * (v.size() - 1) + 0.5));
  return v[i];
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"lmserve-bench-load: streamed completion load at fixed concurrency"};
  app.add_option("--host", o.host, "Server address")->capture_default_str();
  app.add_option("--port", o.port, "Server port")->capture_default_str();
  app.add_option("--model", o.model, "Model name to send (default: none)");
  app.add_option("--api-key", o.api_key, "Bearer token");
  app.add_option("--concurrency", o.concurrency, "Clients at once")->capture_default_str()->check(CLI::Range(1, 4096));
  app.add_option("--requests", o.requests, "Requests in total")->capture_default_str()->check(CLI::Range(1, 1 << 24));
  app.add_option("--vocab", o.vocab, "Prompt ids are drawn below this")->capture_default_str();
  app.add_option("--min-prompt", o.min_prompt, "Shortest prompt (tokens)")->capture_default_str();
  app.add_option("--max-prompt", o.max_prompt, "Longest prompt (tokens)")->capture_default_str();
  app.add_option("--min-tokens", o.min_tokens, "Fewest tokens to generate")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens, "Most tokens to generate")->capture_default_str();
  app.add_option("--seed", o.seed, "Request mix seed")->capture_default_str();
  app.add_flag("--json", o.json_output, "Print one JSON object");
  CLI11_PARSE(app, argc, argv);

  std::vector<Sample> samples(o.requests);
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::mutex error_mutex;
  std::string first_error;
  auto start = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.concurrency; ++c)
    clients.emplace_back([&] {
      net::io_context ioc;
      tcp::socket socket(ioc);
      beast::flat_buffer buffer;
      bool connected = false;
      for (int i; (i = next.fetch_add(1)) < o.requests;) {
        try {
          if (!connected) {
            tcp::resolver resolver(ioc);
            net::connect(socket, resolver.resolve(o.host, std::to_string(o.port)));
            connected = true;
          }
          samples[i] = run_one(socket, buffer, o, i);
          if (!samples[i].ok) failures.fetch_add(1);
        } catch (const std::exception& e) {
          failures.fetch_add(1);
          std::lock_guard lock(error_mutex);
          if (first_error.empty()) first_error = e.what();
          boost::system::error_code ignored;
          socket.close(ignored);
          socket = tcp::socket(ioc);
          buffer.clear();
          connected = false;
        }
      }
    });
  for (auto& t : clients) t.join();
  double wall = std::chrono::duration<double>(Clock::now() - start).count();

  std::vector<double> ttft, gaps, tpot, e2e;
  long long tokens = 0;
  int ok = 0;
  for (const auto& s : samples) {
    if (!s.ok) continue;
    ++ok;
    tokens += s.output_tokens;
    ttft.push_back(s.ttft);
    e2e.push_back(s.e2e);
    if (s.tpot > 0) tpot.push_back(s.tpot);
    gaps.insert(gaps.end(), s.gaps.begin(), s.gaps.end());
  }
  json r = {{"concurrency", o.concurrency},
            {"requests", o.requests},
            {"succeeded", ok},
            {"failed", failures.load()},
            {"wall_s", wall},
            {"requests_per_s", ok / wall},
            {"output_tokens_per_s", tokens / wall},
            {"ttft_p50_ms", percentile(ttft, 50) * 1e3},
            {"ttft_p99_ms", percentile(ttft, 99) * 1e3},
            {"itl_p50_ms", percentile(gaps, 50) * 1e3},
            {"itl_p99_ms", percentile(gaps, 99) * 1e3},
            {"tpot_p50_ms", percentile(tpot, 50) * 1e3},
            {"e2e_p50_ms", percentile(e2e, 50) * 1e3}};
  if (o.json_output) {
    std::printf("%s\n", r.dump().c_str());
  } else {
    std::printf("concurrency %d: %d/%d ok in %.1f s | %.2f req/s | %.1f output tok/s | TTFT p50 %.1f ms p99 %.1f ms | "
                "ITL p50 %.1f ms p99 %.1f ms | TPOT p50 %.1f ms\n",
                o.concurrency, ok, o.requests, wall, r["requests_per_s"].get<double>(),
                r["output_tokens_per_s"].get<double>(), r["ttft_p50_ms"].get<double>(), r["ttft_p99_ms"].get<double>(),
                r["itl_p50_ms"].get<double>(), r["itl_p99_ms"].get<double>(), r["tpot_p50_ms"].get<double>());
  }
  if (!first_error.empty()) std::fprintf(stderr, "first error: %s\n", first_error.c_str());
  return failures.load() == 0 ? 0 : 1;
}
