// Per-request and per-sequence state the engine thread keeps between steps: the tokens
// of each live sequence, how many of them are in the KV cache, its block table, its
// random stream, and what has not yet been reported to the caller. The scheduler reads
// and advances the token counts; the engine (engine_step.cc) does the rest.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "engine/decoding/beam_search.h"
#include "engine/kv/block_table.h"
#include "engine/request.h"
#include "engine/sampling/sampler.h"
#include "engine/scoring/scoring.h"

namespace lmserve::engine {

// One sequence of tokens with its own slice of the KV cache.
struct Sequence {
  explicit Sequence(BlockPool* pool) : blocks(pool) {}

  // The same tokens and cached positions, sharing every KV block (copy-on-write).
  std::unique_ptr<Sequence> fork(int new_index) const;

  int num_known() const { return static_cast<int>(tokens.size()); }

  int index = 0;                // output index (n-sampling); position in the beam list
  std::vector<int32_t> tokens;  // the shared prefix (prompt or score window), then new tokens
  int num_computed = 0;         // leading tokens whose keys and values are in the cache
  BlockTable blocks;
  std::optional<SequenceRng> rng;  // created on first draw (seeded: from seed and index)
  float cumulative_logprob = 0.0f;
};

enum class GroupStatus : uint8_t { Waiting, Running, Finished };

// Prompt scoring (Score requests, prompt_logprobs on Generate): which positions have
// been scored, so a recomputation after preemption does not score them twice.
struct PromptScoring {
  int top_k = 0;
  PromptLogprobs result;
  std::vector<ScoreWindow> windows;  // Score: the sliding-window plan; Generate: one window
  int window = 0;                    // the window being computed
  bool done = false;
  bool sent = false;
};

// Running mean / last row of the final hidden states (Embed requests).
struct EmbedPooling {
  std::vector<double> sum;
  std::vector<float> last;
  int next_position = 0;  // rows at earlier positions were already pooled
  std::vector<float> embedding;  // the result, once every position is in
};

// All the state of one request: its live sequences (one until the prompt is computed),
// decoding strategy state and the outputs not yet delivered.
struct SequenceGroup {
  SequenceGroup(Request req, BlockPool* pool);

  Request request;
  BlockPool* pool;
  GroupStatus status = GroupStatus::Waiting;
  // Tokens every live sequence starts with (the prompt, or the current score window);
  // after a preemption the first sequence recomputes them once and the others fork it.
  int shared_prefix = 0;
  std::vector<std::unique_ptr<Sequence>> seqs;  // live sequences; seqs[0] leads the prefix
  int max_seqs = 1;          // seats taken in the running set (n, or num_beams)
  bool lockstep = false;     // beam search: every live sequence gets its next row in one step
  bool forked = false;       // n-sampling: the n sequences exist
  std::vector<int32_t> eos_ids;         // EOS ids in force (empty with ignore_eos)
  std::vector<int32_t> mask_until_min;  // ids masked while below min_tokens (EOS + stop ids)
  std::optional<BeamSearch> beam;
  std::optional<PromptScoring> scoring;
  std::optional<EmbedPooling> pooling;

  // Undelivered per-sequence news, by output index (stream=false keeps all of it).
  std::map<int, SequenceOutput> outbox;
  int num_generated = 0;
  int num_finished_seqs = 0;
  RequestTiming timing;
  std::optional<std::string> error;

  const std::vector<int32_t>& prompt() const { return request.prompt; }
  int num_prompt() const { return static_cast<int>(request.prompt.size()); }
  // Sequences this request returns (n, or num_return_sequences for beam search).
  int num_outputs() const;
};

}  // namespace lmserve::engine
