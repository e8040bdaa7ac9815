// Engine behaviour: seeded reproducibility in any batch and thread count, abort and
// block freeing, prompt sharing (n-sampling and beams), queue limits, preemption,
// stop_sequence, streaming modes, validation, drain.
#include <gtest/gtest.h>

#include <atomic>
#include <numeric>
#include <thread>

#include "tests/engine/engine_test_util.h"

namespace lmserve::engine::testing {
namespace {

std::vector<int32_t> prompt_of(int n, int salt = 0) {
  std::vector<int32_t> p(n);
  for (int i = 0; i < n; ++i) p[i] = (i * 7919 + salt * 104729 + 13) % 31000;
  return p;
}

SamplingParams seeded_sampling() {
  SamplingParams p;
  p.temperature = 0.9f;
  p.top_p = 0.95f;
  p.top_k = 40;
  p.seed = 1234;
  p.n = 3;
  p.max_tokens = 20;
  p.ignore_eos = true;
  return p;
}

std::map<int, std::vector<int32_t>> ids_by_sequence(const RequestResult& r) {
  std::map<int, std::vector<int32_t>> out;
  for (const auto& [i, s] : r.sequences) out[i] = s.ids;
  return out;
}

// Waits until the engine's published stats say `pred`.
template <typename Pred>
bool eventually(Engine& e, Pred pred) {
  for (int i = 0; i < 2000; ++i) {
    if (pred(e.stats())) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

TEST(Engine, SeededSamplingIsTheSameAloneInABatchAndWithOneThread) {
  const std::vector<int32_t> prompt = prompt_of(37);
  std::map<int, std::vector<int32_t>> alone;
  {
    EngineFixture f("llama-tiny");
    Collector c;
    RequestResult r = run_one(*f.engine, generate_request("seeded", prompt, seeded_sampling(), c));
    alone = ids_by_sequence(r);
    ASSERT_EQ(alone.size(), 3u);
    EXPECT_EQ(alone[0].size(), 20u);
    EXPECT_NE(alone[0], alone[1]);  // different streams per sequence index
  }
  {
    EngineFixture f("llama-tiny");
    Collector c;
    // 16 other requests of every kind, submitted around the seeded one.
    for (int k = 0; k < 16; ++k) {
      Request r;
      r.id = "other" + std::to_string(k);
      r.prompt = prompt_of(5 + 11 * k, k + 1);
      r.on_output = c.callback();
      if (k % 4 == 0) {
        r.params.temperature = 1.0f;  // unseeded sampling
        r.params.max_tokens = 8 + k;
      } else if (k % 4 == 1) {
        r.params.use_beam_search = true;
        r.params.num_beams = 3;
        r.params.n = 2;
        r.params.max_tokens = 6;
      } else if (k % 4 == 2) {
        r.kind = RequestKind::Score;
      } else {
        r.kind = RequestKind::Embed;
      }
      ASSERT_EQ(f.engine->submit(std::move(r)).status, SubmitStatus::Accepted);
      if (k == 7) {
        ASSERT_EQ(f.engine->submit(generate_request("seeded", prompt, seeded_sampling(), c)).status,
                  SubmitStatus::Accepted);
      }
    }
    ASSERT_TRUE(c.wait(17));
    EXPECT_EQ(ids_by_sequence(c.get("seeded")), alone);
  }
  {
    EngineFixture f("llama-tiny", EngineFixture::small_options(), /*threads=*/1);
    Collector c;
    RequestResult r = run_one(*f.engine, generate_request("seeded", prompt, seeded_sampling(), c));
    EXPECT_EQ(ids_by_sequence(r), alone);
  }
}

TEST(Engine, AbortFreesBlocksAtOnce) {
  EngineFixture f("llama-tiny");
  Collector c;
  std::atomic<bool> aborted{false};
  Engine* engine = f.engine.get();
  SamplingParams p;
  p.max_tokens = 400;
  p.ignore_eos = true;
  for (int k = 0; k < 4; ++k) {
    Request r = generate_request("long" + std::to_string(k), prompt_of(40, k), p, c);
    auto inner = r.on_output;
    r.on_output = [inner, engine, &aborted](RequestOutput&& o) {
      if (o.request_id == "long0" && !aborted.exchange(true)) {
        for (int j = 0; j < 4; ++j) engine->abort("long" + std::to_string(j));
      }
      inner(std::move(o));
    };
    ASSERT_EQ(f.engine->submit(std::move(r)).status, SubmitStatus::Accepted);
  }
  ASSERT_TRUE(c.wait(4));
  for (int k = 0; k < 4; ++k) {
    RequestResult r = c.get("long" + std::to_string(k));
    EXPECT_EQ(r.sequences[0].finish_reason, FinishReason::Abort);
    EXPECT_LT(r.sequences[0].ids.size(), 400u);
  }
  EXPECT_TRUE(eventually(*f.engine, [](const EngineStats& s) {
    return s.kv_blocks_used == 0 && s.num_running == 0 && s.num_waiting == 0;
  }));
  f.engine->abort("unknown-id");  // ignored
}

// Peak KV blocks while a request runs, read from its own callbacks.
int peak_blocks(Engine& engine, Request r) {
  Collector c;
  std::atomic<int> peak{0};
  auto inner = c.callback();
  r.on_output = [&](RequestOutput&& o) {
    peak = std::max(peak.load(), engine.stats().kv_blocks_used);
    inner(std::move(o));
  };
  const std::string id = r.id;
  EXPECT_EQ(engine.submit(std::move(r)).status, SubmitStatus::Accepted);
  EXPECT_TRUE(c.wait(1));
  RequestResult res = c.get(id);
  EXPECT_FALSE(res.error);
  return peak;
}

TEST(Engine, NSamplesShareThePromptBlocks) {
  EngineFixture f("llama-tiny");
  SamplingParams p;
  p.temperature = 1.0f;
  p.n = 8;
  p.max_tokens = 24;
  p.ignore_eos = true;
  Request r;
  r.id = "n8";
  r.prompt = prompt_of(200);  // 13 blocks of 16
  r.params = p;
  const int peak = peak_blocks(*f.engine, std::move(r));
  // Shared: 13 prompt blocks + per sample a copy of the last one and up to 2 new ones.
  // Unshared it would be 8 · 14.
  EXPECT_GT(peak, 13);
  EXPECT_LE(peak, 13 + 8 * 3);
  EXPECT_TRUE(eventually(*f.engine, [](const EngineStats& s) { return s.kv_blocks_used == 0; }));
}

TEST(Engine, BeamSearchAllocatesThePromptOnce) {
  EngineFixture f("llama-tiny");
  SamplingParams p;
  p.use_beam_search = true;
  p.num_beams = 4;
  p.n = 4;
  p.max_tokens = 16;
  p.ignore_eos = true;
  Request r;
  r.id = "beam";
  r.prompt = prompt_of(200);
  r.params = p;
  r.stream = true;
  // Beam search reports once, at the end: the peak is read from a parallel streaming request.
  Collector c;
  std::atomic<int> peak{0};
  Engine* engine = f.engine.get();
  SamplingParams probe;
  probe.max_tokens = 30;
  probe.ignore_eos = true;
  Request watcher = generate_request("watch", prompt_of(3, 9), probe, c);
  auto inner = watcher.on_output;
  watcher.on_output = [&, engine, inner](RequestOutput&& o) {
    peak = std::max(peak.load(), engine->stats().kv_blocks_used);
    inner(std::move(o));
  };
  r.on_output = c.callback();
  ASSERT_EQ(f.engine->submit(std::move(r)).status, SubmitStatus::Accepted);
  ASSERT_EQ(f.engine->submit(std::move(watcher)).status, SubmitStatus::Accepted);
  ASSERT_TRUE(c.wait(2));
  EXPECT_EQ(c.get("beam").sequences.size(), 4u);
  // 13 prompt blocks once, plus per beam at most two blocks of new tokens and a copy;
  // copying the prompt per beam would need 52.
  EXPECT_GT(peak, 13);
  EXPECT_LE(peak, 13 + 4 * 3 + 3);
}

TEST(Engine, PreemptionUnderASmallCacheGivesTheSameResults) {
  const std::vector<int32_t> prompts[3] = {prompt_of(20, 1), prompt_of(25, 2), prompt_of(30, 3)};
  SamplingParams p;
  p.max_tokens = 40;
  p.ignore_eos = true;
  std::vector<std::vector<int32_t>> alone;
  {
    EngineFixture f("gpt2-tiny");
    for (int k = 0; k < 3; ++k) {
      Collector c;
      alone.push_back(run_one(*f.engine, generate_request("a", prompts[k], p, c)).sequences[0].ids);
    }
  }
  EngineOptions o = EngineFixture::small_options();
  o.kv_cache_tokens = 128;  // 8 blocks: three 60-70 token sequences cannot all fit
  EngineFixture f("gpt2-tiny", o);
  Collector c;
  for (int k = 0; k < 3; ++k)
    ASSERT_EQ(f.engine->submit(generate_request("p" + std::to_string(k), prompts[k], p, c)).status,
              SubmitStatus::Accepted);
  ASSERT_TRUE(c.wait(3));
  for (int k = 0; k < 3; ++k) EXPECT_EQ(c.get("p" + std::to_string(k)).sequences[0].ids, alone[k]);
  EXPECT_GT(f.engine->stats().num_preemptions, 0u);
  EXPECT_TRUE(eventually(*f.engine, [](const EngineStats& s) { return s.kv_blocks_used == 0; }));
}

TEST(Engine, ARequestLargerThanTheCacheFailsWithAnError) {
  EngineOptions o = EngineFixture::small_options();
  o.kv_cache_tokens = 32;
  EngineFixture f("llama-tiny", o);
  SamplingParams p;
  p.max_tokens = 4;
  Collector c;
  RequestResult r = run_one(*f.engine, generate_request("big", prompt_of(40), p, c));
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->find("KV cache"), std::string::npos) << *r.error;
}

TEST(Engine, FullQueueRejectsAtOnce) {
  EngineOptions o = EngineFixture::small_options();
  o.max_num_seqs = 1;
  o.max_queue = 2;
  EngineFixture f("llama-tiny", o);
  Collector c;
  SamplingParams p;
  p.max_tokens = 300;
  p.ignore_eos = true;
  std::atomic<bool> started{false};
  Request first = generate_request("first", prompt_of(10), p, c);
  auto inner = first.on_output;
  first.on_output = [&started, inner](RequestOutput&& o) {
    started = true;
    inner(std::move(o));
  };
  ASSERT_EQ(f.engine->submit(std::move(first)).status, SubmitStatus::Accepted);
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int accepted = 0, full = 0;
  SamplingParams small;
  small.max_tokens = 2;
  for (int k = 0; k < 10; ++k) {
    SubmitResult s = f.engine->submit(generate_request("q" + std::to_string(k), prompt_of(4, k), small, c));
    if (s.status == SubmitStatus::Accepted) ++accepted;
    if (s.status == SubmitStatus::QueueFull) ++full;
  }
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(full, 8);
  f.engine->abort("first");
  ASSERT_TRUE(c.wait(3));
  // Room again afterwards.
  EXPECT_EQ(run_one(*f.engine, generate_request("later", prompt_of(4), small, c)).sequences[0].ids.size(), 2u);
}

TEST(Engine, StopSequenceFinishesOneSequence) {
  EngineFixture f("llama-tiny");
  Collector c;
  Engine* engine = f.engine.get();
  SamplingParams p;
  p.temperature = 1.0f;
  p.seed = 5;
  p.n = 2;
  p.max_tokens = 50;
  p.ignore_eos = true;
  Request r = generate_request("stop", prompt_of(8), p, c);
  auto inner = r.on_output;
  std::atomic<bool> sent{false};
  r.on_output = [engine, inner, &sent](RequestOutput&& o) {
    if (!sent.exchange(true)) engine->stop_sequence("stop", 1);
    inner(std::move(o));
  };
  ASSERT_EQ(f.engine->submit(std::move(r)).status, SubmitStatus::Accepted);
  ASSERT_TRUE(c.wait(1));
  RequestResult res = c.get("stop");
  EXPECT_EQ(res.sequences[1].finish_reason, FinishReason::Stop);
  EXPECT_FALSE(res.sequences[1].stop_token);
  EXPECT_LT(res.sequences[1].ids.size(), 50u);
  EXPECT_EQ(res.sequences[0].finish_reason, FinishReason::Length);
  EXPECT_EQ(res.sequences[0].ids.size(), 50u);
}

TEST(Engine, NonStreamingDeliversOneOutputAndStreamingOnePerToken) {
  EngineFixture f("gpt2-tiny");
  SamplingParams p;
  p.max_tokens = 5;
  p.ignore_eos = true;
  p.logprobs = 2;
  Collector c1, c2;
  Request once = generate_request("once", prompt_of(6), p, c1);
  once.stream = false;
  RequestResult r1 = run_one(*f.engine, std::move(once));
  EXPECT_EQ(r1.num_outputs, 1);
  RequestResult r2 = run_one(*f.engine, generate_request("stream", prompt_of(6), p, c2));
  EXPECT_EQ(r2.num_outputs, 5);
  EXPECT_EQ(r1.sequences[0].ids, r2.sequences[0].ids);
  float sum = 0;
  for (const GeneratedToken& t : r2.sequences[0].tokens) {
    EXPECT_EQ(t.top.size(), 2u);
    EXPECT_LE(t.logprob, 0.0f);
    sum += t.logprob;
  }
  EXPECT_NEAR(r2.sequences[0].cumulative_logprob, sum, 1e-4);
}

TEST(Engine, MinTokensAndStopTokenIds) {
  EngineFixture f("llama-tiny");
  Collector c;
  SamplingParams greedy;
  greedy.max_tokens = 10;
  greedy.ignore_eos = true;
  const std::vector<int32_t> ids = run_one(*f.engine, generate_request("g", prompt_of(9), greedy, c)).sequences[0].ids;
  ASSERT_EQ(ids.size(), 10u);
  SamplingParams stop = greedy;
  stop.stop_token_ids = {ids[3]};
  RequestResult r = run_one(*f.engine, generate_request("s", prompt_of(9), stop, c));
  const size_t first = std::find(ids.begin(), ids.end(), ids[3]) - ids.begin();
  EXPECT_EQ(r.sequences[0].ids, std::vector<int32_t>(ids.begin(), ids.begin() + first + 1));
  EXPECT_EQ(r.sequences[0].finish_reason, FinishReason::Stop);
  EXPECT_EQ(r.sequences[0].stop_token, ids[3]);
  SamplingParams min = stop;
  min.min_tokens = 8;
  RequestResult m = run_one(*f.engine, generate_request("m", prompt_of(9), min, c));
  EXPECT_GE(m.sequences[0].ids.size(), 8u);
}

TEST(Engine, InvalidRequestsNameTheParameter) {
  EngineFixture f("llama-tiny");
  auto check = [&](Request r, const std::string& param) {
    SubmitResult s = f.engine->submit(std::move(r));
    EXPECT_EQ(s.status, SubmitStatus::Invalid) << param;
    EXPECT_EQ(s.param, param) << s.message;
    EXPECT_FALSE(s.message.empty());
  };
  Request base;
  base.id = "x";
  base.prompt = {1, 2, 3};
  Request r = base;
  r.params.temperature = -1;
  check(r, "temperature");
  r = base;
  r.prompt.clear();
  check(r, "prompt");
  r = base;
  r.prompt = {1, 99999};
  check(r, "prompt");
  r = base;
  r.params.max_tokens = 600;  // 3 + 600 > 512
  check(r, "max_tokens");
  r = base;
  r.params.n = 64;  // more than max_num_seqs 32
  check(r, "n");
  r = base;
  r.kind = RequestKind::Score;
  r.score.top_logprobs = 21;
  check(r, "top_logprobs");
  r.score.top_logprobs = 0;
  r.score.window = 1000;
  check(r, "window");
  r = base;
  r.kind = RequestKind::Embed;
  r.prompt.assign(600, 5);
  check(r, "prompt");
}

TEST(Engine, DrainFinishesWorkThenRefusesNewRequests) {
  EngineFixture f("gpt2-tiny");
  Collector c;
  SamplingParams p;
  p.max_tokens = 8;
  p.ignore_eos = true;
  for (int k = 0; k < 5; ++k)
    ASSERT_EQ(f.engine->submit(generate_request("d" + std::to_string(k), prompt_of(10, k), p, c)).status,
              SubmitStatus::Accepted);
  f.engine->drain(std::chrono::seconds(30));
  EXPECT_TRUE(c.wait(5, std::chrono::seconds(1)));
  for (int k = 0; k < 5; ++k) EXPECT_EQ(c.get("d" + std::to_string(k)).sequences[0].ids.size(), 8u);
  EXPECT_EQ(f.engine->submit(generate_request("late", prompt_of(4), p, c)).status, SubmitStatus::ShuttingDown);
}

TEST(Engine, DrainTimeoutAbortsTheRest) {
  EngineFixture f("gpt2-tiny");
  Collector c;
  SamplingParams p;
  p.max_tokens = 250;
  p.ignore_eos = true;
  ASSERT_EQ(f.engine->submit(generate_request("slow", prompt_of(4), p, c)).status, SubmitStatus::Accepted);
  f.engine->drain(std::chrono::milliseconds(1));
  ASSERT_TRUE(c.wait(1, std::chrono::seconds(1)));
  EXPECT_EQ(c.get("slow").sequences[0].finish_reason, FinishReason::Abort);
}

}  // namespace
}  // namespace lmserve::engine::testing

namespace lmserve::engine::testing {
namespace {

TEST(Engine, ZeroMaxTokensReturnsOnlyPromptLogprobs) {
  EngineFixture f("llama-tiny");
  Collector c;
  SamplingParams p;
  p.max_tokens = 0;
  p.prompt_logprobs = 1;
  RequestResult echo = run_one(*f.engine, generate_request("echo", prompt_of(30), p, c));
  ASSERT_TRUE(echo.prompt_logprobs);
  ASSERT_EQ(echo.sequences.size(), 1u);
  EXPECT_TRUE(echo.sequences[0].ids.empty());
  EXPECT_EQ(echo.sequences[0].finish_reason, FinishReason::Length);
  Request score;
  score.id = "score";
  score.kind = RequestKind::Score;
  score.prompt = prompt_of(30);
  RequestResult s = run_one(*f.engine, std::move(score));
  ASSERT_TRUE(s.prompt_logprobs);
  EXPECT_EQ(echo.prompt_logprobs->token_logprobs, s.prompt_logprobs->token_logprobs);
  // Beam search with prompt log-probs scores the prompt too.
  SamplingParams beam;
  beam.use_beam_search = true;
  beam.num_beams = 2;
  beam.max_tokens = 3;
  beam.prompt_logprobs = 0;
  RequestResult b = run_one(*f.engine, generate_request("beam", prompt_of(30), beam, c));
  ASSERT_TRUE(b.prompt_logprobs);
  EXPECT_EQ(b.prompt_logprobs->token_logprobs, s.prompt_logprobs->token_logprobs);
}

}  // namespace
}  // namespace lmserve::engine::testing
