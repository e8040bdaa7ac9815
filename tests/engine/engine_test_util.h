// Test helpers for driving the Engine: load a fixture model, submit requests, and
// gather each request's streamed outputs into whole sequences.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "kernels/backend.h"

namespace lmserve::engine::testing {

inline std::string model_dir(const std::string& name) {
  return std::string(LMSERVE_TEST_DATA_DIR) + "/models/" + name;
}

inline nlohmann::json load_golden(const std::string& name) {
  std::ifstream in(model_dir(name) + "/golden.json");
  return nlohmann::json::parse(in);
}

// A backend and an engine over one fixture model; the backend outlives the engine.
struct EngineFixture {
  explicit EngineFixture(const std::string& model, EngineOptions options = small_options(),
                         int threads = 0) {
    backend = kernels::make_backend("cpu", {.threads = threads});
    engine = std::make_unique<Engine>(Model::load(model_dir(model), *backend), options);
  }
  static EngineOptions small_options() {
    EngineOptions o;
    o.max_num_seqs = 32;
    o.max_num_batched_tokens = 256;
    o.kv_cache_tokens = 8192;
    return o;
  }
  ~EngineFixture() { engine.reset(); }
  std::unique_ptr<kernels::Backend> backend;
  std::unique_ptr<Engine> engine;
};

struct SequenceResult {
  std::vector<int32_t> ids;
  std::vector<GeneratedToken> tokens;
  FinishReason finish_reason = FinishReason::None;
  std::optional<int32_t> stop_token;
  float cumulative_logprob = 0.0f;
  std::optional<float> beam_score;
};

struct RequestResult {
  std::map<int, SequenceResult> sequences;
  std::optional<PromptLogprobs> prompt_logprobs;
  std::vector<float> embedding;
  std::optional<std::string> error;
  int num_outputs = 0;
  bool finished = false;
};

// Gathers outputs of many requests; thread-safe (callbacks run on the engine thread).
class Collector {
 public:
  std::function<void(RequestOutput&&)> callback() {
    return [this](RequestOutput&& o) {
      std::lock_guard lock(mutex_);
      RequestResult& r = results_[o.request_id];
      ++r.num_outputs;
      for (SequenceOutput& so : o.sequences) {
        SequenceResult& s = r.sequences[so.index];
        for (GeneratedToken& t : so.new_tokens) {
          s.ids.push_back(t.id);
          s.tokens.push_back(std::move(t));
        }
        if (so.finish_reason != FinishReason::None) s.finish_reason = so.finish_reason;
        if (so.stop_token) s.stop_token = so.stop_token;
        s.cumulative_logprob = so.cumulative_logprob;
        if (so.beam_score) s.beam_score = so.beam_score;
      }
      if (o.prompt_logprobs) r.prompt_logprobs = std::move(o.prompt_logprobs);
      if (!o.embedding.empty()) r.embedding = std::move(o.embedding);
      if (o.error) r.error = o.error;
      if (o.finished) {
        EXPECT_FALSE(r.finished) << "two final outputs for " << o.request_id;
        r.finished = true;
        ++num_finished_;
        cv_.notify_all();
      }
    };
  }
  // Waits until `count` requests have finished; false on timeout.
  bool wait(int count, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return num_finished_ >= count; });
  }
  RequestResult get(const std::string& id) {
    std::lock_guard lock(mutex_);
    return results_.at(id);
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, RequestResult> results_;
  int num_finished_ = 0;
};

inline Request generate_request(const std::string& id, std::vector<int32_t> prompt,
                                const SamplingParams& params, Collector& collector) {
  Request r;
  r.id = id;
  r.kind = RequestKind::Generate;
  r.prompt = std::move(prompt);
  r.params = params;
  r.on_output = collector.callback();
  return r;
}

// Submits one request and waits for its final result.
inline RequestResult run_one(Engine& engine, Request request) {
  Collector collector;
  request.on_output = collector.callback();
  const std::string id = request.id;
  SubmitResult s = engine.submit(std::move(request));
  EXPECT_EQ(s.status, SubmitStatus::Accepted) << s.message;
  if (s.status != SubmitStatus::Accepted) return {};
  EXPECT_TRUE(collector.wait(1));
  return collector.get(id);
}

inline std::vector<int32_t> ids_of(const nlohmann::json& j) { return j.get<std::vector<int32_t>>(); }

}  // namespace lmserve::engine::testing
