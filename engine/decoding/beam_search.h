// Beam search with Hugging Face generate() semantics (num_beams, length_penalty,
// early_stopping, num_return_sequences, EOS ranked within the first num_beams of the
// 2·num_beams candidates, min_new_tokens, no_repeat_ngram_size), as a state machine that
// knows nothing of the model or the KV cache: the engine feeds it one log-softmax row
// per live beam each step and applies the forks it returns (BlockTable::fork, so beams
// share the prompt's KV blocks and copy a block only when they diverge).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "engine/request.h"
#include "engine/sampling/params.h"

namespace lmserve::engine {

struct BeamHypothesis {
  std::vector<int32_t> tokens;  // new tokens, ending with the EOS when finished_by_eos
  float sum_logprobs = 0.0f;
  float score = 0.0f;  // sum_logprobs / generated_len ** length_penalty
  bool finished_by_eos = false;
  // Per token: its log-prob in the row the search was given (log_softmax of the model's
  // logits, before the request's processors) and, when params.logprobs > 0, the top
  // params.logprobs alternatives of that row.
  std::vector<GeneratedToken> steps;
};

// A running beam after a step: it continues parent beam `parent` (index into the beams
// of the previous step) with `token`.
struct BeamContinuation {
  int parent = 0;
  int32_t token = 0;
  float sum_logprobs = 0.0f;
};

class BeamSearch {
 public:
  // eos_ids empty = no EOS. prompt is used by no_repeat_ngram_size.
  BeamSearch(const SamplingParams& params, std::vector<int32_t> eos_ids,
             std::vector<int32_t> prompt);

  // Live beams before the next step (1 before the first step, then up to num_beams).
  int num_live() const;
  // Tokens generated so far by live beam i.
  const std::vector<int32_t>& live_tokens(int i) const;

  // One step: logprob_rows[i] is log_softmax of the logits of live beam i
  // (size vocab). Returns the new live beams in order (each naming its parent), best
  // first; empty when the search is done after this step (nothing left to run).
  // The request's logits processors (min_new_tokens EOS masking, no_repeat_ngram,
  // repetition penalty, ...) are applied to the rows here, as HF applies them to the
  // log-probs.
  std::vector<BeamContinuation> step(std::span<const std::span<const float>> logprob_rows);

  bool done() const;
  int steps_run() const;
  // After done(): the best num_return_sequences hypotheses, best first.
  std::vector<BeamHypothesis> finalize();

 private:
  struct Beam {
    std::vector<int32_t> tokens;
    std::vector<GeneratedToken> steps;  // parallel to tokens
    float sum_logprobs = 0.0f;
  };
  void add_hypothesis(BeamHypothesis h);
  float score_of(float sum_logprobs, int generated_len) const;

  SamplingParams params_;
  std::vector<int32_t> eos_ids_;
  std::vector<int32_t> prompt_;
  std::vector<Beam> live_;
  std::vector<BeamHypothesis> finished_;  // at most num_beams, kept sorted best first
  std::vector<float> scratch_;  // one processed row
  int steps_ = 0;
  bool done_ = false;
};

}  // namespace lmserve::engine
