// Scheduler: which tokens of which sequences the next engine step computes.
//
// There is no prefill or decode phase (vLLM's rule): each step gives every scheduled
// sequence a chunk of the tokens it knows but has not computed yet, within a budget of
// max_num_batched_tokens. Running requests go first, in admission order; then waiting
// requests are admitted first come, first served while seats (max_num_seqs), budget and
// KV blocks last. When a running request cannot get blocks, the most recently admitted
// one is preempted: its blocks are freed and it re-enters the front of the waiting
// queue to be recomputed. Plain logic over SequenceGroup: no model, no kernels.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"
#include "engine/sequence.h"

namespace lmserve::engine {

struct SchedulerLimits {
  int max_num_seqs = 256;             // seats: sum of the running requests' max_seqs
  int max_num_batched_tokens = 2048;  // tokens per step
  int max_queue = 1024;               // waiting requests (preempted ones are always taken back)
};

// Positions [start, start + num_tokens) of `seq` are computed this step.
struct ScheduledChunk {
  SequenceGroup* group = nullptr;
  Sequence* seq = nullptr;
  int start = 0;
  int num_tokens = 0;
  // The chunk reaches the last known token: its last row predicts the next token.
  bool reaches_end() const { return start + num_tokens == seq->num_known(); }
};

struct SchedulerOutput {
  std::vector<ScheduledChunk> chunks;
  std::vector<BlockCopy> copies;               // copy-on-write before the step writes
  std::vector<SequenceGroup*> preempted;       // moved back to the waiting queue
  std::vector<SequenceGroup*> unservable;      // needs more KV blocks than exist; removed
  int num_batched_tokens = 0;
  bool empty() const { return chunks.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerLimits& limits, BlockPool* pool);

  // Appends to the waiting queue; false when it is full.
  bool add(SequenceGroup* group);
  // Plans one step and reserves its KV slots.
  SchedulerOutput schedule();
  // After the step ran: the scheduled tokens are now cached. Sequences that wait for a
  // recomputed shared prefix fork it once it is complete.
  void commit(const SchedulerOutput& out);
  // Takes a finished or aborted group out of the queue or running set and frees its blocks.
  void remove(SequenceGroup* group);

  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  int num_running() const { return static_cast<int>(running_.size()); }
  int seats_taken() const { return seats_taken_; }
  uint64_t num_preemptions() const { return num_preemptions_; }
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  const std::deque<SequenceGroup*>& waiting() const { return waiting_; }
  const std::vector<SequenceGroup*>& running() const { return running_; }
  const SchedulerLimits& limits() const { return limits_; }

 private:
  struct Want {
    Sequence* seq;
    int num_tokens;
  };
  // How many tokens each sequence of `group` would compute with `budget` tokens left.
  std::vector<Want> plan_group(const SequenceGroup& group, int budget) const;
  // Reserves KV slots for every planned chunk of a group, or none of them.
  bool reserve_slots(const std::vector<Want>& wants, std::vector<BlockCopy>* copies);
  void emit(SequenceGroup* group, const std::vector<Want>& wants, SchedulerOutput* out);
  void schedule_running(SchedulerOutput* out, int* budget);
  void admit_waiting(SchedulerOutput* out, int* budget);
  void preempt(SequenceGroup* group, SchedulerOutput* out);

  SchedulerLimits limits_;
  BlockPool* pool_;
  std::deque<SequenceGroup*> waiting_;
  std::vector<SequenceGroup*> running_;
  int seats_taken_ = 0;
  uint64_t num_preemptions_ = 0;
};

// Frees every KV block of the group's sequences and forgets what was computed.
void release_group_blocks(SequenceGroup& group);

}  // namespace lmserve::engine
