// Metrics: the server's Prometheus series, named after vLLM's (lmserve:…) so dashboards
// port. Engine-wide numbers come from engine::EngineStats, polled at scrape time;
// per-request timings are observed when each request finishes. This header hides
// prometheus-cpp: metrics.cc is the only file that includes it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/request.h"
#include "engine/stats.h"

namespace lmserve::server {

class Metrics {
 public:
  explicit Metrics(std::string model_name);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // Once the engine exists: lmserve:cache_config_info{block_size,num_blocks}.
  void set_cache_config(int block_size, int num_blocks);

  // A finished engine request (one per prompt of an API call). token_times are the
  // arrival times of its generated tokens, used for the inter-token latency histogram.
  void observe_request(const engine::RequestTiming& timing, engine::FinishReason reason,
                       int num_generated_tokens, const std::vector<engine::Clock::time_point>& token_times);
  void observe_http(const std::string& endpoint, int status);

  // Text exposition format; updates the gauges and token counters from `stats` first.
  std::string scrape(const engine::EngineStats* stats);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmserve::server
