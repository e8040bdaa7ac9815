// Test driver for the decoding math on a real model, without the scheduler: prefill a
// prompt in one chunk, run decode steps for several sequences at once over the paged KV
// cache (fork + copy-on-write for beams), and read rows of logits / hidden states.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/decoding/beam_search.h"
#include "engine/kv/block_pool.h"
#include "engine/kv/block_table.h"
#include "engine/model/model.h"
#include "engine/sampling/sampler.h"
#include "kernels/backend.h"
#include "tests/engine/golden.h"

namespace lmserve::test {

using engine::BlockCopy;
using engine::BlockPool;
using engine::BlockTable;
using engine::Model;
using engine::OutputRows;
using engine::SequenceChunk;

class DecodeDriver {
 public:
  explicit DecodeDriver(const std::string& model_name, int num_blocks = 512, int block_size = 16,
                        int threads = 0)
      : backend_(kernels::make_backend("cpu", {threads, 0})),
        model_(Model::load(golden_model_dir(model_name), *backend_)),
        pool_(num_blocks, block_size) {
    model_->allocate_kv_cache(pool_.num_blocks(), pool_.block_size());
  }

  Model& model() { return *model_; }
  BlockPool& pool() { return pool_; }
  int vocab() const { return model_->config().vocab_size; }
  int hidden() const { return model_->config().hidden_size; }

  // Runs `tokens` as a new sequence in one chunk; returns its table. Output rows (the
  // last position, or every position) are then readable with logits()/hidden_states().
  BlockTable prefill(const std::vector<int32_t>& tokens, OutputRows outputs) {
    BlockTable table(&pool_);
    std::vector<BlockCopy> copies;
    if (!table.append_slots(static_cast<int>(tokens.size()), &copies)) {
      throw std::runtime_error("DecodeDriver: KV cache too small for the prompt");
    }
    SequenceChunk chunk{tokens, 0, table.blocks(), outputs};
    model_->forward(std::span<const SequenceChunk>(&chunk, 1));
    return table;
  }

  // One decode step: tables[i] gets token tokens[i] at its next position; one output
  // row per sequence, in order.
  void decode(const std::vector<BlockTable*>& tables, const std::vector<int32_t>& tokens) {
    std::vector<BlockCopy> copies;
    std::vector<int> start(tables.size());
    for (size_t i = 0; i < tables.size(); ++i) {
      start[i] = tables[i]->num_tokens();
      if (!tables[i]->append_slots(1, &copies)) throw std::runtime_error("DecodeDriver: KV cache full");
    }
    model_->copy_kv_blocks(copies);
    std::vector<SequenceChunk> chunks;
    for (size_t i = 0; i < tables.size(); ++i) {
      chunks.push_back(SequenceChunk{std::span<const int32_t>(&tokens[i], 1), start[i],
                                     tables[i]->blocks(), OutputRows::Last});
    }
    model_->forward(chunks);
  }

  std::vector<float> logits(int row) {
    std::vector<float> out(vocab());
    model_->logits(row, row + 1, out.data());
    return out;
  }

  std::vector<float> log_softmax(int row) {
    std::vector<float> out = logits(row);
    const float lse = engine::log_sum_exp(out);
    for (float& x : out) x -= lse;
    return out;
  }

 private:
  std::unique_ptr<kernels::Backend> backend_;
  std::unique_ptr<Model> model_;
  BlockPool pool_;
};

struct BeamRun {
  std::vector<engine::BeamHypothesis> hypotheses;
  int steps_run = 0;
};

// Beam search the way the engine runs it: beams fork their parent's table (sharing its
// blocks), write their new token (copy-on-write of a shared last block), and every live
// beam runs in one forward step. `on_step` sees the live tables after each step.
template <typename OnStep>
BeamRun run_beam_search(DecodeDriver& d, const std::vector<int32_t>& prompt,
                        const engine::SamplingParams& params, const std::vector<int32_t>& eos,
                        OnStep on_step) {
  engine::BeamSearch search(params, eos, prompt);
  std::vector<BlockTable> tables;
  tables.push_back(d.prefill(prompt, OutputRows::Last));
  std::vector<std::vector<float>> rows = {d.log_softmax(0)};
  while (!search.done()) {
    std::vector<std::span<const float>> spans(rows.begin(), rows.end());
    const std::vector<engine::BeamContinuation> next = search.step(spans);
    if (search.done()) break;
    std::vector<BlockTable> forked;
    std::vector<int32_t> tokens;
    for (const auto& c : next) {
      forked.push_back(tables.at(c.parent).fork());
      tokens.push_back(c.token);
    }
    tables = std::move(forked);  // the parents' references go back to the pool here
    std::vector<BlockTable*> live;
    for (BlockTable& t : tables) live.push_back(&t);
    d.decode(live, tokens);
    on_step(tables);
    rows.clear();
    for (size_t i = 0; i < tables.size(); ++i) rows.push_back(d.log_softmax(static_cast<int>(i)));
  }
  return BeamRun{search.finalize(), search.steps_run()};
}

}  // namespace lmserve::test
