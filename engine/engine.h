// Engine: what the server and the CLI call. Requests go in through submit(); the engine
// thread batches them step by step (continuous batching over the paged KV cache) and
// reports through each request's on_output callback. All public methods are
// thread-safe; none blocks on model work.
#pragma once

#include <memory>
#include <string>

#include "engine/model/model.h"
#include "engine/request.h"
#include "engine/stats.h"

namespace lmserve::engine {

struct EngineOptions {
  int max_num_seqs = 256;             // running sequences at most
  int max_num_batched_tokens = 2048;  // tokens per step (decode + chunked prefill)
  int max_queue = 1024;               // waiting requests at most; beyond: rejected
  int max_model_len = 0;              // 0 = the model's max_position_embeddings
  // KV capacity in tokens. 0: on CUDA, what gpu_memory_utilization leaves after the
  // weights; on CPU, max_num_seqs · min(512, max_model_len).
  int kv_cache_tokens = 0;
  float gpu_memory_utilization = 0.9f;  // CUDA: fraction of device memory for weights + KV
  int block_size = 16;
};

enum class SubmitStatus : uint8_t { Accepted, QueueFull, Invalid, ShuttingDown };

struct SubmitResult {
  SubmitStatus status = SubmitStatus::Accepted;
  std::string message;  // why, when not accepted
  std::string param;    // the offending parameter for Invalid
};

class Engine {
 public:
  // Takes the model; allocates the KV cache; starts the engine thread.
  Engine(std::unique_ptr<Model> model, const EngineOptions& options);
  ~Engine();  // stops the thread; unfinished requests get finish_reason Abort
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates (params, prompt length vs max_model_len) and queues the request.
  SubmitResult submit(Request request);
  // Cancels a queued or running request and frees its KV blocks; it gets a final
  // output with finish_reason Abort. Unknown ids are ignored.
  void abort(const std::string& request_id);
  // Finishes one sequence of a request with reason Stop (a stop string matched in the
  // caller's detokenized text).
  void stop_sequence(const std::string& request_id, int sequence_index);

  // Stops admitting; returns when every accepted request has finished or `timeout`
  // passed (then the rest are aborted).
  void drain(std::chrono::milliseconds timeout);

  EngineStats stats() const;
  const ModelConfig& model_config() const;
  int max_model_len() const;
  const EngineOptions& options() const;
  std::string device_name() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lmserve::engine
