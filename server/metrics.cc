// Prometheus series of the server (the only file that includes prometheus-cpp).
#include "server/metrics.h"

#include <map>
#include <mutex>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>
#include <sstream>

namespace lmserve::server {

namespace {

using prometheus::Histogram;

double seconds_between(engine::Clock::time_point a, engine::Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}
bool is_set(engine::Clock::time_point t) { return t.time_since_epoch().count() != 0; }

// vLLM's bucket choices, so panels and alerts written for it keep their meaning.
const Histogram::BucketBoundaries kTtftBuckets = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25,
                                                  0.5,   0.75,  1.0,  2.5,  5.0,  7.5,  10.0, 20.0, 40.0,
                                                  80.0,  160.0, 640.0, 2560.0};
const Histogram::BucketBoundaries kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4,
                                                 0.5,  0.75,  1.0,  2.5,   5.0, 7.5,  10.0, 20.0, 40.0, 80.0};
const Histogram::BucketBoundaries kLatencyBuckets = {0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0, 15.0,
                                                     20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0,
                                                     1920.0, 7680.0};

}  // namespace

struct Metrics::Impl {
  std::string model_name;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Gauge* running = nullptr;
  prometheus::Gauge* waiting = nullptr;
  prometheus::Gauge* kv_usage = nullptr;
  prometheus::Counter* prompt_tokens = nullptr;
  prometheus::Counter* generation_tokens = nullptr;
  prometheus::Family<prometheus::Counter>* success = nullptr;
  prometheus::Histogram* ttft = nullptr;
  prometheus::Histogram* itl = nullptr;
  prometheus::Histogram* e2e = nullptr;
  prometheus::Histogram* queue = nullptr;
  prometheus::Histogram* prefill = nullptr;
  prometheus::Histogram* decode = nullptr;
  prometheus::Family<prometheus::Gauge>* cache_info = nullptr;
  prometheus::Family<prometheus::Counter>* http = nullptr;
  std::mutex mutex;  // guards the token-counter baselines and family Add() calls
  uint64_t last_prompt_tokens = 0;
  uint64_t last_generation_tokens = 0;

  prometheus::Labels labels() const { return {{"model_name", model_name}}; }

  Histogram* histogram(const std::string& name, const std::string& help, const Histogram::BucketBoundaries& b) {
    return &prometheus::BuildHistogram().Name(name).Help(help).Register(*registry).Add(labels(), b);
  }
};

Metrics::Metrics(std::string model_name) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.model_name = std::move(model_name);
  auto& reg = *m.registry;
  m.running = &prometheus::BuildGauge()
                   .Name("lmserve:num_requests_running")
                   .Help("Requests with sequences in the running batch.")
                   .Register(reg)
                   .Add(m.labels());
  m.waiting = &prometheus::BuildGauge()
                   .Name("lmserve:num_requests_waiting")
                   .Help("Requests waiting to be scheduled (including preempted ones).")
                   .Register(reg)
                   .Add(m.labels());
  m.kv_usage = &prometheus::BuildGauge()
                    .Name("lmserve:kv_cache_usage_perc")
                    .Help("Fraction of KV cache blocks in use (1 = full).")
                    .Register(reg)
                    .Add(m.labels());
  m.prompt_tokens = &prometheus::BuildCounter()
                         .Name("lmserve:prompt_tokens_total")
                         .Help("Prompt tokens computed (prefill).")
                         .Register(reg)
                         .Add(m.labels());
  m.generation_tokens = &prometheus::BuildCounter()
                             .Name("lmserve:generation_tokens_total")
                             .Help("Tokens generated.")
                             .Register(reg)
                             .Add(m.labels());
  m.success = &prometheus::BuildCounter()
                   .Name("lmserve:request_success_total")
                   .Help("Finished engine requests by finish reason.")
                   .Register(reg);
  m.ttft = m.histogram("lmserve:time_to_first_token_seconds", "Time from arrival to the first generated token.",
                       kTtftBuckets);
  m.itl = m.histogram("lmserve:inter_token_latency_seconds", "Time between consecutive generated tokens.",
                      kItlBuckets);
  m.e2e = m.histogram("lmserve:e2e_request_latency_seconds", "Time from arrival to the last output.",
                      kLatencyBuckets);
  m.queue = m.histogram("lmserve:request_queue_time_seconds", "Time from arrival to first being scheduled.",
                        kLatencyBuckets);
  m.prefill = m.histogram("lmserve:request_prefill_time_seconds",
                          "Time from first being scheduled to the first generated token.", kLatencyBuckets);
  m.decode = m.histogram("lmserve:request_decode_time_seconds",
                         "Time from the first generated token to the last output.", kLatencyBuckets);
  m.cache_info = &prometheus::BuildGauge()
                      .Name("lmserve:cache_config_info")
                      .Help("KV cache configuration (value is always 1).")
                      .Register(reg);
  m.http = &prometheus::BuildCounter()
                .Name("http_requests_total")
                .Help("HTTP requests by endpoint and status.")
                .Register(reg);
  // Every finish reason exists from the start, so rate() works before the first finish.
  for (const char* reason : {"stop", "length", "abort"})
    m.success->Add({{"model_name", m.model_name}, {"finished_reason", reason}});
}

Metrics::~Metrics() = default;

void Metrics::set_cache_config(int block_size, int num_blocks) {
  std::lock_guard lock(impl_->mutex);
  impl_->cache_info
      ->Add({{"model_name", impl_->model_name},
             {"block_size", std::to_string(block_size)},
             {"num_blocks", std::to_string(num_blocks)}})
      .Set(1);
}

void Metrics::observe_request(const engine::RequestTiming& t, engine::FinishReason reason,
                              int num_generated_tokens,
                              const std::vector<engine::Clock::time_point>& token_times) {
  Impl& m = *impl_;
  {
    const char* name = engine::finish_reason_name(reason);
    std::lock_guard lock(m.mutex);
    m.success->Add({{"model_name", m.model_name}, {"finished_reason", *name ? name : "stop"}}).Increment();
  }
  if (!is_set(t.arrival)) return;
  if (is_set(t.finished)) m.e2e->Observe(seconds_between(t.arrival, t.finished));
  if (is_set(t.first_scheduled)) m.queue->Observe(seconds_between(t.arrival, t.first_scheduled));
  if (num_generated_tokens > 0 && is_set(t.first_token)) {
    m.ttft->Observe(seconds_between(t.arrival, t.first_token));
    if (is_set(t.first_scheduled)) m.prefill->Observe(seconds_between(t.first_scheduled, t.first_token));
    if (is_set(t.finished)) m.decode->Observe(seconds_between(t.first_token, t.finished));
  }
  for (size_t i = 1; i < token_times.size(); ++i) m.itl->Observe(seconds_between(token_times[i - 1], token_times[i]));
}

void Metrics::observe_http(const std::string& endpoint, int status) {
  std::lock_guard lock(impl_->mutex);
  impl_->http
      ->Add({{"model_name", impl_->model_name}, {"endpoint", endpoint}, {"status", std::to_string(status)}})
      .Increment();
}

std::string Metrics::scrape(const engine::EngineStats* stats) {
  Impl& m = *impl_;
  if (stats) {
    m.running->Set(stats->num_running);
    m.waiting->Set(stats->num_waiting);
    m.kv_usage->Set(stats->kv_cache_usage());
    std::lock_guard lock(m.mutex);
    // The engine's totals only grow; the counters follow them by their increments.
    if (stats->prompt_tokens_total > m.last_prompt_tokens) {
      m.prompt_tokens->Increment(static_cast<double>(stats->prompt_tokens_total - m.last_prompt_tokens));
      m.last_prompt_tokens = stats->prompt_tokens_total;
    }
    if (stats->generation_tokens_total > m.last_generation_tokens) {
      m.generation_tokens->Increment(
          static_cast<double>(stats->generation_tokens_total - m.last_generation_tokens));
      m.last_generation_tokens = stats->generation_tokens_total;
    }
  }
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, m.registry->Collect());
  return out.str();
}

}  // namespace lmserve::server
