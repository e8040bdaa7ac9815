// Server pieces without sockets or weights: options and config files, request parsing
// and validation, routing/auth/readiness, SSE framing, metrics exposition, and response
// assembly from hand-made engine outputs.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "server/options.h"
#include "server/router.h"
#include "server/routes/completion_job.h"
#include "server/schemas/completion.h"
#include "server/schemas/errors.h"
#include "server/sse.h"
#include "server/text.h"

namespace lmserve::server {
namespace {

using nlohmann::json;

const std::string kSource = LMSERVE_SOURCE_DIR;

const TextCodec& gpt2() {
  static std::unique_ptr<TextCodec> codec = TextCodec::load(kSource + "/demo");
  return *codec;
}

TEST(ServerOptions, DefaultConfigListsEveryOptionWithItsDefault) {
  ServerOptions loaded;
  loaded.port = 1;  // changed so the file must set it back
  apply_options_file(loaded, kSource + "/configs/default.json");
  json expected = options_to_json(ServerOptions{});
  EXPECT_EQ(options_to_json(loaded), expected);
  std::ifstream in(kSource + "/configs/default.json");
  json file = json::parse(in);
  for (auto it = expected.begin(); it != expected.end(); ++it) EXPECT_TRUE(file.contains(it.key())) << it.key();
}

TEST(ServerOptions, BundledConfigsLoadAndValidate) {
  for (const char* name : {"cpu-small.json", "gpu-throughput.json"}) {
    ServerOptions o;
    EXPECT_NO_THROW(apply_options_file(o, kSource + "/configs/" + name)) << name;
    EXPECT_NO_THROW(validate_options(o)) << name;
  }
  ServerOptions cpu;
  apply_options_file(cpu, kSource + "/configs/cpu-small.json");
  EXPECT_EQ(cpu.device, "cpu");
  EXPECT_EQ(cpu.max_num_seqs, 16);
}

TEST(ServerOptions, RejectsUnknownKeysAndWrongTypesNamingThem) {
  ServerOptions o;
  try {
    apply_options_json(o, json{{"prot", 80}}, "x.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("x.json: unknown option 'prot'"), std::string::npos);
  }
  try {
    apply_options_json(o, json{{"port", "80"}}, "x.json");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("x.json: port"), std::string::npos);
  }
  o.port = 70000;
  EXPECT_THROW(validate_options(o), std::runtime_error);
  EXPECT_THROW(apply_options_file(o, "/nonexistent.json"), std::runtime_error);
}

TEST(ServerOptions, DemoDirectoryIsFound) {
  std::string dir = default_demo_model_dir();
  EXPECT_TRUE(std::ifstream(dir + "/config.json").good()) << dir;
  EXPECT_TRUE(std::ifstream(dir + "/tokenizer.json").good()) << dir;
}

CompletionLimits limits() {
  CompletionLimits l;
  l.max_model_len = 256;
  l.vocab_size = 50257;
  return l;
}

ApiError parse_error(const json& body) {
  try {
    parse_completion_request(body, gpt2(), limits());
  } catch (const ApiError& e) {
    return e;
  } catch (const engine::InvalidParameter& e) {
    return ApiError(400, "invalid_request_error", e.what(), e.param());
  }
  ADD_FAILURE() << "no error for " << body.dump();
  return ApiError(0, "", "");
}

TEST(CompletionSchema, ParsesEveryField) {
  json body = {{"model", "demo"}, {"prompt", "Hello world"}, {"max_tokens", 7}, {"temperature", 0.5},
               {"top_p", 0.9}, {"n", 2}, {"best_of", 3}, {"logprobs", 2}, {"echo", true},
               {"stop", {"a", "b"}}, {"presence_penalty", 0.5}, {"frequency_penalty", -0.5},
               {"logit_bias", {{"50256", -100}}}, {"seed", 42}, {"user", "u"}, {"top_k", 5},
               {"min_p", 0.1}, {"typical_p", 0.95}, {"repetition_penalty", 1.1}, {"min_tokens", 2},
               {"stop_token_ids", {13}}, {"include_stop_str_in_output", true}, {"ignore_eos", true},
               {"skip_special_tokens", false}, {"add_special_tokens", false}, {"prompt_logprobs", 1}};
  CompletionRequest r = parse_completion_request(body, gpt2(), limits());
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(r.prompts[0].ids, (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(r.best_of, 3);
  EXPECT_EQ(r.params.n, 3);
  EXPECT_EQ(r.params.max_tokens, 7);
  EXPECT_FLOAT_EQ(r.params.temperature, 0.5f);
  EXPECT_EQ(r.params.top_k, 5);
  EXPECT_EQ(r.params.logprobs, 2);
  EXPECT_EQ(r.params.prompt_logprobs, 2);  // echo + logprobs asks for the prompt's too
  EXPECT_EQ(r.params.logit_bias.size(), 1u);
  EXPECT_EQ(r.params.seed, 42u);
  EXPECT_EQ(r.params.stop_token_ids, std::vector<int32_t>{13});
  EXPECT_EQ(r.text.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(r.text.include_stop_str_in_output);
  EXPECT_FALSE(r.text.skip_special_tokens);
  EXPECT_TRUE(r.echo);
}

TEST(CompletionSchema, PromptShapes) {
  auto parse = [](const json& prompt) {
    return parse_completion_request({{"prompt", prompt}, {"max_tokens", 1}}, gpt2(), limits()).prompts;
  };
  EXPECT_EQ(parse("Hello").size(), 1u);
  EXPECT_EQ(parse(json::array({"a", "b"})).size(), 2u);
  EXPECT_EQ(parse(json::array({1, 2, 3}))[0].ids, (std::vector<int32_t>{1, 2, 3}));
  auto two = parse(json::array({json::array({1}), json::array({2, 3})}));
  ASSERT_EQ(two.size(), 2u);
  EXPECT_EQ(two[1].ids, (std::vector<int32_t>{2, 3}));
}

TEST(CompletionSchema, EchoWithMaxTokensZeroScoresThePrompt) {
  auto r = parse_completion_request({{"prompt", "a b c"}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}},
                                    gpt2(), limits());
  EXPECT_TRUE(r.score_only);
}

TEST(CompletionSchema, RejectsBadRequestsNamingTheField) {
  struct Case {
    json body;
    std::string param;
  };
  std::vector<Case> cases = {
      {{{"prompt", "x"}, {"suffix", "y"}}, "suffix"},
      {{{"prompt", "x"}, {"frobnicate", 1}}, "frobnicate"},
      {{{"max_tokens", 3}}, "prompt"},
      {{{"prompt", ""}, {"max_tokens", 3}}, "prompt"},
      {{{"prompt", json::array()}}, "prompt"},
      {{{"prompt", json::array({-1})}}, "prompt"},
      {{{"prompt", json::array({60000})}}, "prompt"},
      {{{"prompt", "x"}, {"max_tokens", 1000}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", -1}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", 0}}, "max_tokens"},
      {{{"prompt", "x"}, {"max_tokens", "5"}}, "max_tokens"},
      {{{"prompt", "x"}, {"temperature", -1}}, "temperature"},
      {{{"prompt", "x"}, {"top_p", 0}}, "top_p"},
      {{{"prompt", "x"}, {"logprobs", 21}}, "logprobs"},
      {{{"prompt", "x"}, {"n", 0}}, "n"},
      {{{"prompt", "x"}, {"n", 3}, {"best_of", 2}}, "best_of"},
      {{{"prompt", "x"}, {"stream", true}, {"n", 1}, {"best_of", 2}}, "best_of"},
      {{{"prompt", "x"}, {"stream", true}, {"use_beam_search", true}}, "use_beam_search"},
      {{{"prompt", "x"}, {"stream_options", {{"include_usage", true}}}}, "stream_options"},
      {{{"prompt", "x"}, {"stop", 5}}, "stop"},
      {{{"prompt", "x"}, {"logit_bias", {{"abc", 1}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"logit_bias", {{"5", 101}}}}, "logit_bias"},
      {{{"prompt", "x"}, {"stop_token_ids", {99999}}}, "stop_token_ids"},
      {{{"prompt", "x"}, {"presence_penalty", 3}}, "presence_penalty"},
      {{{"prompt", "x"}, {"length_penalty", 2.0}}, "length_penalty"},
      {{{"prompt", "x"}, {"echo", "yes"}}, "echo"},
  };
  for (const auto& c : cases) {
    ApiError e = parse_error(c.body);
    EXPECT_EQ(e.status(), 400) << c.body.dump();
    EXPECT_EQ(e.param(), c.param) << c.body.dump() << " → " << e.what();
  }
  ApiError too_long = parse_error({{"prompt", "x"}, {"max_tokens", 1000}});
  EXPECT_NE(std::string(too_long.what()).find("maximum context length is 256"), std::string::npos);
  EXPECT_NE(std::string(too_long.what()).find("1001"), std::string::npos);
}

TEST(ErrorBodies, HaveOpenAIShape) {
  json b = error_body(bad_request("bad thing", "temperature"));
  EXPECT_EQ(b["error"]["message"], "bad thing");
  EXPECT_EQ(b["error"]["type"], "invalid_request_error");
  EXPECT_EQ(b["error"]["param"], "temperature");
  EXPECT_TRUE(b["error"]["code"].is_null());
  EXPECT_EQ(overloaded("x").status(), 429);
  EXPECT_EQ(unauthorized("x").status(), 401);
}

TEST(Sse, FramesEventsAndDone) {
  EXPECT_EQ(sse::event(json{{"a", "x\ny"}}), "data: {\"a\":\"x\\ny\"}\n\n");
  EXPECT_EQ(sse::done(), "data: [DONE]\n\n");
}

TEST(Router, HealthIs503WhileLoadingAndModelRoutesToo) {
  ServerContext ctx(ServerOptions{}, "demo");
  auto health = std::get<Response>(handle_request(ctx, {"GET", "/health", "", "1", "", ""}));
  EXPECT_EQ(health.status, 503);
  auto comp = std::get<Response>(handle_request(ctx, {"POST", "/v1/completions", "{}", "1", "", ""}));
  EXPECT_EQ(comp.status, 503);
  EXPECT_EQ(json::parse(comp.body)["error"]["type"], "service_unavailable");
  auto models = std::get<Response>(handle_request(ctx, {"GET", "/v1/models", "", "1", "", ""}));
  EXPECT_EQ(models.status, 200);
  auto metrics = std::get<Response>(handle_request(ctx, {"GET", "/metrics", "", "1", "", ""}));
  EXPECT_EQ(metrics.status, 200);
}

TEST(Router, UnknownPathsMethodsAndApiKeys) {
  ServerOptions o;
  o.api_key = "sekrit";
  ServerContext ctx(o, "demo");
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"GET", "/nope", "", "1", "", ""})).status, 404);
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"GET", "/v1/completions", "", "1", "", ""})).status, 405);
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"GET", "/v1/models", "", "1", "", ""})).status, 401);
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"GET", "/v1/models", "", "1", "Bearer wrong", ""})).status, 401);
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"GET", "/v1/models", "", "1", "Bearer sekrit", ""})).status, 200);
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"GET", "/health", "", "1", "", ""})).status, 503);  // public
  EXPECT_EQ(std::get<Response>(handle_request(ctx, {"OPTIONS", "/v1/models", "", "1", "", "http://x"})).status, 405);
  EXPECT_TRUE(cors_headers(ctx, "http://x").empty());
  o.allowed_origins = {"http://x"};
  ServerContext cors(o, "demo");
  EXPECT_EQ(cors_headers(cors, "http://x").front().second, "http://x");
  EXPECT_TRUE(cors_headers(cors, "http://y").empty());
}

TEST(Metrics, ExposesVllmNamesLabelledWithModelName) {
  Metrics m("demo");
  m.set_cache_config(16, 100);
  engine::RequestTiming t;
  t.arrival = engine::Clock::now();
  t.first_scheduled = t.arrival + std::chrono::milliseconds(1);
  t.first_token = t.arrival + std::chrono::milliseconds(5);
  t.finished = t.arrival + std::chrono::milliseconds(9);
  m.observe_request(t, engine::FinishReason::Length, 3, {t.first_token, t.finished});
  m.observe_http("/v1/completions", 200);
  engine::EngineStats s;
  s.num_running = 2;
  s.kv_blocks_total = 100;
  s.kv_blocks_used = 25;
  s.prompt_tokens_total = 10;
  s.generation_tokens_total = 3;
  std::string text = m.scrape(&s);
  for (const char* name :
       {"lmserve:num_requests_running{model_name=\"demo\"} 2", "lmserve:kv_cache_usage_perc{model_name=\"demo\"} 0.25",
        "lmserve:prompt_tokens_total{model_name=\"demo\"} 10", "lmserve:generation_tokens_total{model_name=\"demo\"} 3",
        "lmserve:num_requests_waiting{", "lmserve:request_success_total{", "finished_reason=\"length\"",
        "lmserve:time_to_first_token_seconds_bucket{", "lmserve:inter_token_latency_seconds_count{",
        "lmserve:e2e_request_latency_seconds_sum{", "lmserve:request_queue_time_seconds_count{",
        "lmserve:request_prefill_time_seconds_count{", "lmserve:request_decode_time_seconds_count{",
        "lmserve:cache_config_info{", "block_size=\"16\"", "num_blocks=\"100\"", "http_requests_total{",
        "endpoint=\"/v1/completions\""})
    EXPECT_NE(text.find(name), std::string::npos) << name;
  s.prompt_tokens_total = 15;
  EXPECT_NE(m.scrape(&s).find("lmserve:prompt_tokens_total{model_name=\"demo\"} 15"), std::string::npos);
}

// Response assembly from hand-made engine outputs: the same job the server runs.
struct JobHarness {
  ServerContext ctx{ServerOptions{}, "demo"};
  JobHarness() { ctx.text = &gpt2(); }
  std::unique_ptr<CompletionJob> job(const json& body) {
    return std::make_unique<CompletionJob>(ctx, parse_completion_request(body, gpt2(), limits()), "t1");
  }
};

engine::RequestOutput output(const std::string& id, std::vector<int32_t> tokens, bool finished,
                             engine::FinishReason reason = engine::FinishReason::None) {
  engine::RequestOutput out;
  out.request_id = id;
  engine::SequenceOutput seq;
  for (int32_t t : tokens) seq.new_tokens.push_back({t, -0.5f, {{t, -0.5f}, {13, -1.5f}}});
  seq.finish_reason = reason;
  out.sequences.push_back(seq);
  out.finished = finished;
  out.num_prompt_tokens = 2;
  out.num_generated_tokens = static_cast<int>(tokens.size());
  return out;
}

TEST(CompletionJob, AssemblesTextLogprobsAndUsage) {
  JobHarness h;
  auto job = h.job({{"prompt", "Hello world"}, {"max_tokens", 3}, {"logprobs", 1}});
  ASSERT_EQ(job->requests().size(), 1u);
  // " Hello" " world" "!"
  job->on_output({output("t1-0", {18435, 995}, false), engine::Clock::now()});
  EXPECT_FALSE(job->finished());
  auto last = output("t1-0", {0}, true, engine::FinishReason::Length);
  last.num_generated_tokens = 3;  // the engine's running total
  job->on_output({std::move(last), engine::Clock::now()});
  EXPECT_TRUE(job->finished());
  json body = json::parse(job->final_response().body);
  const json& c = body["choices"][0];
  EXPECT_EQ(c["text"], " Hello world!");
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(c["logprobs"]["tokens"], json({" Hello", " world", "!"}));
  EXPECT_EQ(c["logprobs"]["text_offset"], json({0, 6, 12}));
  EXPECT_EQ(c["logprobs"]["top_logprobs"][0].size(), 2u);
  EXPECT_EQ(body["usage"]["prompt_tokens"], 2);
  EXPECT_EQ(body["usage"]["completion_tokens"], 3);
}

TEST(CompletionJob, StopStringEndsTheChoiceAndAsksTheEngineToStop) {
  JobHarness h;
  auto job = h.job({{"prompt", "Hello"}, {"max_tokens", 10}, {"stop", " world"}, {"stream", true}});
  JobStep step = job->on_output({output("t1-0", {18435, 995, 0}, false), engine::Clock::now()});
  ASSERT_EQ(step.stops.size(), 1u);
  EXPECT_EQ(step.stops[0].request_id, "t1-0");
  auto events = step.stream_data;
  EXPECT_NE(events.find("\"text\":\" Hello\""), std::string::npos) << events;
  EXPECT_NE(events.find("\"finish_reason\":\"stop\""), std::string::npos) << events;
  EXPECT_EQ(events.find("\"text\":\" Hello world"), std::string::npos) << events;
  EXPECT_NE(events.find("\"stop_reason\":\" world\""), std::string::npos) << events;
  job->on_output({output("t1-0", {}, true, engine::FinishReason::Stop), engine::Clock::now()});
  EXPECT_TRUE(job->finished());
  EXPECT_NE(job->final_response().body.find("data: [DONE]"), std::string::npos);
}

TEST(CompletionJob, HeldBackStopPrefixIsReleasedWhenItIsNotAStop) {
  JobHarness h;
  auto job = h.job({{"prompt", "Hello"}, {"max_tokens", 10}, {"stop", " world peace"}, {"stream", true}});
  JobStep a = job->on_output({output("t1-0", {18435, 995}, false), engine::Clock::now()});
  EXPECT_NE(a.stream_data.find("\" Hello\""), std::string::npos);
  EXPECT_EQ(a.stream_data.find("world"), std::string::npos);  // could still be " world peace"
  JobStep b = job->on_output({output("t1-0", {0}, true, engine::FinishReason::Length), engine::Clock::now()});
  EXPECT_NE(b.stream_data.find("\" world!\""), std::string::npos) << b.stream_data;
}

}  // namespace
}  // namespace lmserve::server
