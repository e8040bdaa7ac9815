// Scheduler: budget, admission, preemption and block accounting (see scheduler.h).
#include "engine/scheduler.h"

#include <algorithm>
#include <stdexcept>

namespace lmserve::engine {

void release_group_blocks(SequenceGroup& group) {
  for (auto& seq : group.seqs) {
    seq->blocks.release();
    seq->num_computed = 0;
  }
}

Scheduler::Scheduler(const SchedulerLimits& limits, BlockPool* pool)
    : limits_(limits), pool_(pool) {
  if (limits.max_num_seqs < 1) throw std::invalid_argument("max_num_seqs must be >= 1");
  if (limits.max_num_batched_tokens < limits.max_num_seqs)
    throw std::invalid_argument("max_num_batched_tokens must be >= max_num_seqs, so that every running sequence can decode in one step");
  if (limits.max_queue < 0) throw std::invalid_argument("max_queue must be >= 0");
}

bool Scheduler::add(SequenceGroup* group) {
  if (static_cast<int>(waiting_.size()) >= limits_.max_queue) return false;
  group->status = GroupStatus::Waiting;
  waiting_.push_back(group);
  return true;
}

std::vector<Scheduler::Want> Scheduler::plan_group(const SequenceGroup& group, int budget) const {
  std::vector<Want> wants;
  if (group.seqs.empty() || budget <= 0) return wants;
  Sequence* leader = group.seqs.front().get();
  // After a preemption only the leader recomputes the shared prefix; the others fork it.
  if (group.seqs.size() > 1 && leader->num_computed < group.shared_prefix) {
    const int n = std::min(group.shared_prefix - leader->num_computed, budget);
    wants.push_back({leader, n});
    return wants;
  }
  int total_need = 0;
  for (const auto& seq : group.seqs) total_need += seq->num_known() - seq->num_computed;
  // Lockstep groups (beams) either all reach their last token this step, or none does:
  // the beam step needs every live beam's next-token row at once.
  const bool hold_back_last = group.lockstep && total_need > budget;
  for (const auto& seq : group.seqs) {
    int need = seq->num_known() - seq->num_computed;
    if (hold_back_last) need -= 1;
    const int n = std::min(need, budget);
    if (n <= 0) continue;
    wants.push_back({seq.get(), n});
    budget -= n;
  }
  return wants;
}

bool Scheduler::reserve_slots(const std::vector<Want>& wants, std::vector<BlockCopy>* copies) {
  std::vector<int> before;
  before.reserve(wants.size());
  for (size_t i = 0; i < wants.size(); ++i) {
    BlockTable& table = wants[i].seq->blocks;
    before.push_back(table.num_tokens());
    if (!table.append_slots(wants[i].num_tokens, copies)) {
      // Copies already made for earlier sequences stay valid: their tables keep them.
      for (size_t j = 0; j < i; ++j) wants[j].seq->blocks.truncate(before[j]);
      return false;
    }
  }
  return true;
}

void Scheduler::emit(SequenceGroup* group, const std::vector<Want>& wants, SchedulerOutput* out) {
  for (const Want& w : wants) {
    out->chunks.push_back({group, w.seq, w.seq->num_computed, w.num_tokens});
    out->num_batched_tokens += w.num_tokens;
  }
}

void Scheduler::preempt(SequenceGroup* group, SchedulerOutput* out) {
  release_group_blocks(*group);
  running_.erase(std::find(running_.begin(), running_.end(), group));
  seats_taken_ -= group->max_seqs;
  group->status = GroupStatus::Waiting;
  waiting_.push_front(group);
  out->preempted.push_back(group);
  ++num_preemptions_;
}

void Scheduler::schedule_running(SchedulerOutput* out, int* budget) {
  size_t i = 0;
  while (i < running_.size() && *budget > 0) {
    SequenceGroup* group = running_[i];
    const std::vector<Want> wants = plan_group(*group, *budget);
    if (wants.empty()) {
      ++i;
      continue;
    }
    bool scheduled = false;
    while (true) {
      if (reserve_slots(wants, &out->copies)) {
        scheduled = true;
        break;
      }
      SequenceGroup* victim = running_.back();
      const bool alone = running_.size() == 1;
      preempt(victim, out);
      if (victim == group) {
        if (alone) {  // even an empty cache cannot hold it
          waiting_.pop_front();
          out->preempted.pop_back();
          out->unservable.push_back(group);
        }
        break;
      }
    }
    if (!scheduled) break;  // the group itself was the last running one
    emit(group, wants, out);
    for (const Want& w : wants) *budget -= w.num_tokens;
    ++i;
  }
}

void Scheduler::admit_waiting(SchedulerOutput* out, int* budget) {
  while (!waiting_.empty() && *budget > 0) {
    SequenceGroup* group = waiting_.front();
    if (seats_taken_ + group->max_seqs > limits_.max_num_seqs && !running_.empty()) break;
    const std::vector<Want> wants = plan_group(*group, *budget);
    if (!reserve_slots(wants, &out->copies)) {
      if (running_.empty() && out->chunks.empty()) {
        release_group_blocks(*group);
        waiting_.pop_front();
        out->unservable.push_back(group);
        continue;
      }
      break;  // first come, first served: nobody overtakes the head of the queue
    }
    waiting_.pop_front();
    running_.push_back(group);
    group->status = GroupStatus::Running;
    seats_taken_ += group->max_seqs;
    emit(group, wants, out);
    for (const Want& w : wants) *budget -= w.num_tokens;
  }
}

SchedulerOutput Scheduler::schedule() {
  SchedulerOutput out;
  int budget = limits_.max_num_batched_tokens;
  schedule_running(&out, &budget);
  // A step that had to preempt is short of blocks: admitting more would only thrash.
  if (out.preempted.empty()) admit_waiting(&out, &budget);
  return out;
}

void Scheduler::commit(const SchedulerOutput& out) {
  for (const ScheduledChunk& c : out.chunks) c.seq->num_computed += c.num_tokens;
  for (const ScheduledChunk& c : out.chunks) {
    SequenceGroup& group = *c.group;
    if (c.seq != group.seqs.front().get() || c.seq->num_computed != group.shared_prefix) continue;
    for (size_t k = 1; k < group.seqs.size(); ++k) {
      Sequence& follower = *group.seqs[k];
      if (follower.num_computed != 0 || follower.blocks.num_tokens() != 0) continue;
      follower.blocks = c.seq->blocks.fork();
      follower.num_computed = group.shared_prefix;
    }
  }
}

void Scheduler::remove(SequenceGroup* group) {
  release_group_blocks(*group);
  if (auto it = std::find(running_.begin(), running_.end(), group); it != running_.end()) {
    running_.erase(it);
    seats_taken_ -= group->max_seqs;
  }
  if (auto it = std::find(waiting_.begin(), waiting_.end(), group); it != waiting_.end())
    waiting_.erase(it);
  group->status = GroupStatus::Finished;
}

}  // namespace lmserve::engine
