// Scheduler unit tests: hand-built requests and a real BlockPool, no model, no weights.
#include "engine/scheduler.h"

#include <gtest/gtest.h>

#include <memory>
#include <numeric>

namespace lmserve::engine {
namespace {

std::unique_ptr<SequenceGroup> make_group(BlockPool* pool, int prompt_len, int n = 1,
                                          bool beams = false) {
  Request r;
  r.id = "r";
  r.prompt.resize(prompt_len);
  std::iota(r.prompt.begin(), r.prompt.end(), 1);
  if (beams) {
    r.params.use_beam_search = true;
    r.params.num_beams = n;
  } else {
    r.params.n = n;
  }
  return std::make_unique<SequenceGroup>(std::move(r), pool);
}

// What the engine does after a step: every sequence that caught up gets a new token.
void append_token_to_caught_up(const SchedulerOutput& out) {
  for (const auto& c : out.chunks)
    if (c.seq->num_computed == c.seq->num_known()) c.seq->tokens.push_back(7);
}

int tokens_of(const SchedulerOutput& out, const SequenceGroup* g) {
  int n = 0;
  for (const auto& c : out.chunks)
    if (c.group == g) n += c.num_tokens;
  return n;
}

TEST(Scheduler, ChunkedPrefillRespectsTheTokenBudget) {
  BlockPool pool(64, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 16, .max_queue = 8}, &pool);
  auto g = make_group(&pool, 40);
  ASSERT_TRUE(s.add(g.get()));
  std::vector<int> chunk_sizes;
  for (int step = 0; step < 3; ++step) {
    SchedulerOutput out = s.schedule();
    ASSERT_EQ(out.chunks.size(), 1u);
    EXPECT_EQ(out.chunks[0].start, step * 16);
    EXPECT_EQ(out.chunks[0].reaches_end(), step == 2);
    chunk_sizes.push_back(out.chunks[0].num_tokens);
    s.commit(out);
  }
  EXPECT_EQ(chunk_sizes, (std::vector<int>{16, 16, 8}));
  EXPECT_EQ(g->seqs[0]->num_computed, 40);
  EXPECT_EQ(pool.num_used(), 10);
  // Nothing new known: nothing to do.
  EXPECT_TRUE(s.schedule().empty());
  g->seqs[0]->tokens.push_back(3);
  SchedulerOutput decode = s.schedule();
  ASSERT_EQ(decode.chunks.size(), 1u);
  EXPECT_EQ(decode.chunks[0].num_tokens, 1);
  EXPECT_EQ(decode.chunks[0].start, 40);
}

TEST(Scheduler, DecodeTokensGoFirstThenPrefillFillsTheBudget) {
  BlockPool pool(64, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 10, .max_queue = 8}, &pool);
  auto a = make_group(&pool, 6);
  auto b = make_group(&pool, 30);
  s.add(a.get());
  s.add(b.get());
  SchedulerOutput first = s.schedule();
  EXPECT_EQ(tokens_of(first, a.get()), 6);
  EXPECT_EQ(tokens_of(first, b.get()), 4);
  s.commit(first);
  append_token_to_caught_up(first);
  SchedulerOutput second = s.schedule();
  EXPECT_EQ(tokens_of(second, a.get()), 1);  // a decodes
  EXPECT_EQ(tokens_of(second, b.get()), 9);  // b's prefill takes the rest
  EXPECT_EQ(second.num_batched_tokens, 10);
  EXPECT_EQ(s.num_running(), 2);
}

TEST(Scheduler, WaitingQueueIsFirstComeFirstServedAndBounded) {
  BlockPool pool(64, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 8, .max_queue = 2}, &pool);
  auto a = make_group(&pool, 8);
  auto b = make_group(&pool, 2);
  auto c = make_group(&pool, 2);
  EXPECT_TRUE(s.add(a.get()));
  EXPECT_TRUE(s.add(b.get()));
  EXPECT_FALSE(s.add(c.get()));  // queue full
  SchedulerOutput out = s.schedule();
  // a takes the whole budget; b, although small, does not overtake it.
  EXPECT_EQ(tokens_of(out, a.get()), 8);
  EXPECT_EQ(tokens_of(out, b.get()), 0);
  EXPECT_EQ(s.num_waiting(), 1);
  EXPECT_TRUE(s.add(c.get()));  // room again
}

TEST(Scheduler, SeatsLimitRunningSequences) {
  BlockPool pool(64, 4);
  Scheduler s({.max_num_seqs = 3, .max_num_batched_tokens = 64, .max_queue = 8}, &pool);
  auto a = make_group(&pool, 4, /*n=*/2);
  auto b = make_group(&pool, 4, /*n=*/2);
  s.add(a.get());
  s.add(b.get());
  SchedulerOutput out = s.schedule();
  EXPECT_EQ(tokens_of(out, a.get()), 4);
  EXPECT_EQ(tokens_of(out, b.get()), 0);
  EXPECT_EQ(s.seats_taken(), 2);
  s.commit(out);
  s.remove(a.get());
  EXPECT_EQ(s.seats_taken(), 0);
  EXPECT_EQ(tokens_of(s.schedule(), b.get()), 4);
}

TEST(Scheduler, PreemptsTheNewestRequestWhenBlocksRunOutAndRecomputesIt) {
  BlockPool pool(4, 4);  // 16 token slots
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64, .max_queue = 8}, &pool);
  auto a = make_group(&pool, 8);
  auto b = make_group(&pool, 8);
  s.add(a.get());
  s.add(b.get());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.num_batched_tokens, 16);
  EXPECT_EQ(pool.num_free(), 0);
  s.commit(out);
  append_token_to_caught_up(out);
  // a needs a fifth block for its 9th token: b (admitted last) is preempted.
  SchedulerOutput step2 = s.schedule();
  ASSERT_EQ(step2.preempted.size(), 1u);
  EXPECT_EQ(step2.preempted[0], b.get());
  EXPECT_EQ(tokens_of(step2, a.get()), 1);
  EXPECT_EQ(tokens_of(step2, b.get()), 0);  // not re-admitted in the step that preempted
  EXPECT_EQ(b->status, GroupStatus::Waiting);
  EXPECT_EQ(b->seqs[0]->num_computed, 0);
  EXPECT_EQ(b->seqs[0]->blocks.num_tokens(), 0);
  EXPECT_EQ(s.waiting().front(), b.get());
  EXPECT_EQ(s.num_preemptions(), 1u);
  EXPECT_EQ(pool.num_used(), 3);
  s.commit(step2);
  // a finishes: its blocks come back and b recomputes all 9 known tokens.
  s.remove(a.get());
  EXPECT_EQ(pool.num_used(), 0);
  SchedulerOutput step3 = s.schedule();
  ASSERT_EQ(step3.chunks.size(), 1u);
  EXPECT_EQ(step3.chunks[0].group, b.get());
  EXPECT_EQ(step3.chunks[0].num_tokens, 9);
  EXPECT_TRUE(step3.chunks[0].reaches_end());
}

TEST(Scheduler, ARequestLargerThanTheWholeCacheIsUnservable) {
  BlockPool pool(2, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64, .max_queue = 8}, &pool);
  auto big = make_group(&pool, 9);
  auto small = make_group(&pool, 3);
  s.add(big.get());
  s.add(small.get());
  SchedulerOutput out = s.schedule();
  ASSERT_EQ(out.unservable.size(), 1u);
  EXPECT_EQ(out.unservable[0], big.get());
  EXPECT_EQ(tokens_of(out, small.get()), 3);
  EXPECT_EQ(s.num_waiting(), 0);
}

TEST(Scheduler, RemoveFreesBlocksOfWaitingAndRunningRequests) {
  BlockPool pool(16, 4);
  Scheduler s({.max_num_seqs = 1, .max_num_batched_tokens = 64, .max_queue = 8}, &pool);
  auto a = make_group(&pool, 10);
  auto b = make_group(&pool, 10);
  s.add(a.get());
  s.add(b.get());
  s.commit(s.schedule());
  EXPECT_EQ(pool.num_used(), 3);
  s.remove(b.get());  // aborted while waiting
  s.remove(a.get());  // aborted while running
  EXPECT_EQ(pool.num_used(), 0);
  EXPECT_FALSE(s.has_work());
  EXPECT_EQ(a->status, GroupStatus::Finished);
}

TEST(Scheduler, ForkedSequencesShareThePromptAndCopyOnWrite) {
  BlockPool pool(16, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64, .max_queue = 8}, &pool);
  auto g = make_group(&pool, 6, /*n=*/3);
  s.add(g.get());
  s.commit(s.schedule());
  EXPECT_EQ(pool.num_used(), 2);
  // The engine forks the n sequences when it samples their first tokens.
  for (int i = 1; i < 3; ++i) g->seqs.push_back(g->seqs[0]->fork(i));
  for (auto& seq : g->seqs) seq->tokens.push_back(100 + seq->index);
  EXPECT_EQ(pool.num_used(), 2);  // shared
  SchedulerOutput out = s.schedule();
  EXPECT_EQ(out.num_batched_tokens, 3);
  // The partly filled second block is shared three ways: two writers copy it, the last
  // one owns it alone by then.
  EXPECT_EQ(out.copies.size(), 2u);
  EXPECT_EQ(pool.num_used(), 4);
}

TEST(Scheduler, PreemptedForkedGroupRecomputesTheSharedPrefixOnce) {
  BlockPool pool(16, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 64, .max_queue = 8}, &pool);
  auto g = make_group(&pool, 8, /*n=*/2, /*beams=*/true);
  s.add(g.get());
  s.commit(s.schedule());
  g->seqs.push_back(g->seqs[0]->fork(1));
  g->seqs[0]->tokens.push_back(11);
  g->seqs[1]->tokens.push_back(12);
  s.commit(s.schedule());
  EXPECT_EQ(g->seqs[1]->num_computed, 9);
  // Simulate a preemption: everything is freed.
  release_group_blocks(*g);
  EXPECT_EQ(pool.num_used(), 0);
  SchedulerOutput lead = s.schedule();
  ASSERT_EQ(lead.chunks.size(), 1u);
  EXPECT_EQ(lead.chunks[0].seq, g->seqs[0].get());
  EXPECT_EQ(lead.chunks[0].num_tokens, 8);  // the prompt only
  s.commit(lead);
  EXPECT_EQ(g->seqs[1]->num_computed, 8);  // forked
  EXPECT_EQ(pool.num_used(), 2);
  SchedulerOutput rest = s.schedule();
  ASSERT_EQ(rest.chunks.size(), 2u);
  EXPECT_EQ(rest.num_batched_tokens, 2);
  EXPECT_TRUE(rest.chunks[0].reaches_end());
  EXPECT_TRUE(rest.chunks[1].reaches_end());
}

TEST(Scheduler, LockstepBeamsReachTheirLastTokenTogether) {
  BlockPool pool(64, 4);
  Scheduler s({.max_num_seqs = 4, .max_num_batched_tokens = 5, .max_queue = 8}, &pool);
  auto g = make_group(&pool, 4, /*n=*/2, /*beams=*/true);
  g->seqs.push_back(g->seqs[0]->fork(1));
  for (auto& seq : g->seqs) seq->tokens.resize(8, 5);  // 8 known, none computed
  ASSERT_TRUE(s.add(g.get()));
  SchedulerOutput prefix = s.schedule();  // the leader computes the shared prompt alone
  ASSERT_EQ(prefix.chunks.size(), 1u);
  EXPECT_EQ(prefix.chunks[0].num_tokens, 4);
  s.commit(prefix);
  // 8 tokens left over two beams, budget 5: nobody reaches the last token yet.
  SchedulerOutput partial = s.schedule();
  EXPECT_EQ(partial.num_batched_tokens, 5);
  for (const auto& c : partial.chunks) EXPECT_FALSE(c.reaches_end());
  s.commit(partial);
  SchedulerOutput last = s.schedule();
  ASSERT_EQ(last.chunks.size(), 2u);
  for (const auto& c : last.chunks) EXPECT_TRUE(c.reaches_end());
}

TEST(Scheduler, RejectsABudgetSmallerThanTheSeats) {
  BlockPool pool(4, 4);
  EXPECT_THROW(Scheduler({.max_num_seqs = 8, .max_num_batched_tokens = 4, .max_queue = 1}, &pool),
               std::invalid_argument);
}

}  // namespace
}  // namespace lmserve::engine
