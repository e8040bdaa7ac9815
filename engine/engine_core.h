// EngineCore: the engine thread's side of the Engine. Owns the model, the KV block
// pool, the scheduler and every request's state; one step() runs
//   schedule → copy-on-write copies → model.forward → per request: sample / beam step /
//   score rows / pool hidden states → outputs through each request's callback.
// Not thread-safe: only the engine thread (engine.cc) calls it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/engine.h"
#include "engine/kv/block_pool.h"
#include "engine/model/model.h"
#include "engine/scheduler.h"
#include "engine/sequence.h"

namespace lmserve::engine {

// The context length the engine serves: options.max_model_len, or the model's maximum
// (capped by a sliding window). Throws std::invalid_argument when the option exceeds it.
int resolve_max_model_len(const ModelConfig& config, const EngineOptions& options);
// Number of KV blocks to allocate. The cache holds options.kv_cache_tokens tokens, or by
// default enough for max_num_seqs sequences of min(512, max_model_len) tokens.
int kv_blocks_for(const Model& model, const EngineOptions& options);

class EngineCore {
 public:
  // Called twice per request: just before its final output is handed to the callback
  // (delivered = false: the id may be reused from now on), and right after (true).
  using FinishedHook = std::function<void(const std::string& request_id, bool delivered)>;

  EngineCore(std::unique_ptr<Model> model, const EngineOptions& options, FinishedHook on_finished);
  ~EngineCore();

  // Queues a validated request; false when the waiting queue is full (the request then
  // gets a final output with an error).
  bool add(Request request, Clock::time_point arrival);
  void abort(const std::string& request_id);
  void stop_sequence(const std::string& request_id, int sequence_index);
  void abort_all();

  bool has_work() const { return scheduler_.has_work(); }
  // Runs one step; false when nothing could be scheduled.
  bool step();

  EngineStats stats() const;
  Model& model() { return *model_; }
  int max_model_len() const { return max_model_len_; }

 private:
  struct RowRange {
    int begin = 0;
    int count = 0;
  };
  OutputRows output_rows_for(const ScheduledChunk& chunk) const;
  void process_group(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks,
                     const std::vector<RowRange>& rows);
  // Prompt log-probs of a Generate request (prompt_logprobs >= 0).
  void score_prompt(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks,
                    const std::vector<RowRange>& rows);
  // max_tokens = 0: finishes the request once its prompt is computed; true when nothing
  // is to be generated.
  bool finish_without_tokens(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks);
  void process_generate(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks,
                        const std::vector<RowRange>& rows);
  void process_beam(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks,
                    const std::vector<RowRange>& rows);
  void process_score(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks,
                     const std::vector<RowRange>& rows);
  void process_embed(SequenceGroup& group, const std::vector<ScheduledChunk>& chunks,
                     const std::vector<RowRange>& rows);
  // Scores prompt positions predicted by rows of a chunk: row for position p gives
  // log p(tokens[p + 1]); `offset` maps window positions to prompt positions.
  void score_rows(SequenceGroup& group, const ScheduledChunk& chunk, RowRange rows, int offset,
                  int score_from, int score_end);
  void sample(SequenceGroup& group, Sequence& seq, std::span<const float> logits);
  void start_window(SequenceGroup& group, int window);
  // Marks a sequence finished with `reason`; it leaves the group (blocks freed) at once.
  void finish_sequence(SequenceGroup& group, Sequence* seq, FinishReason reason,
                       std::optional<int32_t> stop_token);
  bool group_done(const SequenceGroup& group) const;
  // Delivers news; with `finished`, removes the group for good.
  void emit(SequenceGroup& group, bool finished);
  void fail_group(SequenceGroup& group, const std::string& message);
  void abort_group(SequenceGroup& group);

  std::unique_ptr<Model> model_;
  EngineOptions options_;
  int max_model_len_ = 0;
  int vocab_size_ = 0;
  BlockPool pool_;
  Scheduler scheduler_;
  FinishedHook on_finished_;
  std::unordered_map<std::string, std::unique_ptr<SequenceGroup>> groups_;
  std::vector<float> scratch_;  // one row, for the sampler
  std::vector<float> rows_;     // a few rows (scoring, beams, pooling)
  uint64_t prompt_tokens_total_ = 0;
  uint64_t generation_tokens_total_ = 0;
  uint64_t steps_total_ = 0;
};

}  // namespace lmserve::engine
