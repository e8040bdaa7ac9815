// What the engine does with a step's output rows, per request kind: sample the next
// token (greedy / sampling, n sequences forked from the prompt), advance beam search,
// score prompt positions a few rows at a time, pool hidden states.
#include <algorithm>
#include <stdexcept>

#include "engine/engine_core.h"

namespace lmserve::engine {
namespace {

// Rows of logits held at once while scoring: a 150k vocabulary stays under 3 MB.
constexpr int kLogitRowsPerRead = 4;
constexpr int kHiddenRowsPerRead = 64;
constexpr size_t kLogitRowsPerDecodeRead = 16;

bool contains(const std::vector<int32_t>& ids, int32_t id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

}  // namespace

void EngineCore::start_window(SequenceGroup& g, int window) {
  PromptScoring& s = *g.scoring;
  s.window = window;
  const ScoreWindow& w = s.windows.at(window);
  Sequence& seq = *g.seqs.front();
  seq.blocks.release();
  seq.num_computed = 0;
  seq.tokens.assign(g.request.prompt.begin() + w.begin, g.request.prompt.begin() + w.end);
  g.shared_prefix = w.end - w.begin;
}

void EngineCore::score_rows(SequenceGroup& g, const ScheduledChunk& c, RowRange rows, int offset,
                            int score_from, int score_end) {
  PromptScoring& s = *g.scoring;
  // Row of window position q predicts prompt position offset + q + 1.
  const int q_begin = std::max(c.start, score_from - 1 - offset);
  const int q_end = std::min(c.start + c.num_tokens, score_end - 1 - offset);
  const int vocab = vocab_size_;
  rows_.resize(static_cast<size_t>(kLogitRowsPerRead) * vocab);
  for (int q = q_begin; q < q_end; q += kLogitRowsPerRead) {
    const int n = std::min(kLogitRowsPerRead, q_end - q);
    const int row = rows.begin + (q - c.start);
    model_->logits(row, row + n, rows_.data());
    for (int i = 0; i < n; ++i) {
      const int target = offset + q + i + 1;
      if (s.result.token_logprobs[target]) continue;  // recomputed after a preemption
      std::span<const float> logits(rows_.data() + static_cast<size_t>(i) * vocab, vocab);
      s.result.token_logprobs[target] =
          score_row(logits, g.request.prompt[target], s.top_k, &s.result.top[target]);
    }
  }
}

void EngineCore::sample(SequenceGroup& g, Sequence& seq, std::span<const float> logits) {
  const SamplingParams& p = g.request.params;
  if (!seq.rng) seq.rng.emplace(p.seed, seq.index);
  const TokenHistory history{std::span<const int32_t>(g.request.prompt),
                             std::span<const int32_t>(seq.tokens).subspan(g.num_prompt())};
  GeneratedToken t = sample_next_token(logits, scratch_, p, history, g.mask_until_min, *seq.rng);
  // The cumulative log-prob is reported even when per-token log-probs were not asked for.
  if (p.logprobs < 0) t.logprob = logits[t.id] - log_sum_exp(logits);
  seq.tokens.push_back(t.id);
  seq.cumulative_logprob += t.logprob;
  ++g.num_generated;
  ++generation_tokens_total_;
  if (g.timing.first_token == Clock::time_point{}) g.timing.first_token = Clock::now();
  SequenceOutput& so = g.outbox[seq.index];
  so.index = seq.index;
  so.cumulative_logprob = seq.cumulative_logprob;
  const int32_t id = t.id;
  so.new_tokens.push_back(std::move(t));

  const int generated = seq.num_known() - g.num_prompt();
  const bool stops = contains(g.eos_ids, id) || contains(p.stop_token_ids, id);
  if (stops && generated >= p.min_tokens) {
    finish_sequence(g, &seq, FinishReason::Stop, id);
  } else if (generated >= p.max_tokens) {
    finish_sequence(g, &seq, FinishReason::Length, std::nullopt);
  }
}

void EngineCore::score_prompt(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks,
                              const std::vector<RowRange>& rows) {
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    if (g.scoring->done || rows[i].count != c.num_tokens) continue;
    score_rows(g, c, rows[i], 0, 1, g.num_prompt());
    if (c.start + c.num_tokens >= g.num_prompt() - 1) g.scoring->done = true;
  }
}

bool EngineCore::finish_without_tokens(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks) {
  if (g.request.params.max_tokens > 0) return false;
  if (std::none_of(chunks.begin(), chunks.end(), [](const auto& c) { return c.reaches_end(); })) return true;
  // max_tokens = 0: the prompt (and its log-probs) only, as the OpenAI echo + score call wants.
  for (int i = 0; i < g.num_outputs(); ++i) {
    SequenceOutput& so = g.outbox[i];
    so.index = i;
    so.finish_reason = FinishReason::Length;
  }
  g.seqs.clear();
  return true;
}

void EngineCore::process_generate(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks,
                                  const std::vector<RowRange>& rows) {
  std::vector<Sequence*> ready;  // caught up: sample their next token
  std::vector<int> ready_rows;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    if (c.reaches_end()) {
      ready.push_back(c.seq);
      ready_rows.push_back(rows[i].begin + rows[i].count - 1);
    }
  }
  // Decode rows of a request's sequences are consecutive: fetch them a few at a time
  // (one matrix product for the output head instead of one per sequence).
  const size_t vocab = vocab_size_;
  for (size_t i = 0; i < ready.size();) {
    size_t run = 1;
    while (i + run < ready.size() && run < kLogitRowsPerDecodeRead &&
           ready_rows[i + run] == ready_rows[i] + static_cast<int>(run))
      ++run;
    rows_.resize(run * vocab);
    model_->logits(ready_rows[i], ready_rows[i] + static_cast<int>(run), rows_.data());
    for (size_t k = 0; k < run; ++k) {
      std::span<const float> logits(rows_.data() + k * vocab, vocab);
      std::vector<Sequence*> targets{ready[i + k]};
      if (!g.forked) {
        // The n sequences share the prompt's blocks and its last row of logits.
        for (int f = 1; f < g.num_outputs(); ++f) {
          g.seqs.push_back(g.seqs.front()->fork(f));
          targets.push_back(g.seqs.back().get());
        }
        g.forked = true;
      }
      for (Sequence* seq : targets) sample(g, *seq, logits);
    }
    i += run;
  }
}

void EngineCore::process_beam(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks,
                              const std::vector<RowRange>& rows) {
  std::vector<int> row_of(g.seqs.size(), -1);
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (!chunks[i].reaches_end()) continue;
    for (size_t k = 0; k < g.seqs.size(); ++k)
      if (g.seqs[k].get() == chunks[i].seq) row_of[k] = rows[i].begin + rows[i].count - 1;
  }
  for (size_t k = 0; k < g.seqs.size(); ++k)
    if (g.seqs[k]->num_computed != g.seqs[k]->num_known()) return;  // not every beam is ready
  if (std::find(row_of.begin(), row_of.end(), -1) != row_of.end())
    throw std::logic_error("beam search: a live beam got no logits row in its step");

  const int vocab = vocab_size_;
  const size_t live = g.seqs.size();
  rows_.resize(live * vocab);
  std::vector<std::span<const float>> logprob_rows;
  for (size_t k = 0; k < live; ++k) {
    float* row = rows_.data() + k * vocab;
    model_->logits(row_of[k], row_of[k] + 1, row);
    const float lse = log_sum_exp(std::span<const float>(row, vocab));
    for (int j = 0; j < vocab; ++j) row[j] -= lse;
    logprob_rows.emplace_back(row, vocab);
  }
  const std::vector<BeamContinuation> next = g.beam->step(logprob_rows);
  generation_tokens_total_ += next.size();
  if (g.timing.first_token == Clock::time_point{}) g.timing.first_token = Clock::now();
  if (g.beam->done() || next.empty()) {
    const std::vector<BeamHypothesis> best = g.beam->finalize();
    g.num_generated = 0;
    for (size_t r = 0; r < best.size(); ++r) {
      SequenceOutput& so = g.outbox[static_cast<int>(r)];
      so.index = static_cast<int>(r);
      so.new_tokens = best[r].steps;
      so.finish_reason = best[r].finished_by_eos ? FinishReason::Stop : FinishReason::Length;
      if (best[r].finished_by_eos && !best[r].tokens.empty()) so.stop_token = best[r].tokens.back();
      so.cumulative_logprob = best[r].sum_logprobs;
      so.beam_score = best[r].score;
      g.num_generated += static_cast<int>(best[r].tokens.size());
    }
    g.seqs.clear();
    return;
  }
  // Each continuation forks its parent: shared blocks, copy-on-write on the next write.
  std::vector<std::unique_ptr<Sequence>> beams;
  for (size_t k = 0; k < next.size(); ++k) {
    auto beam = g.seqs.at(next[k].parent)->fork(static_cast<int>(k));
    beam->tokens.push_back(next[k].token);
    beam->cumulative_logprob = next[k].sum_logprobs;
    beams.push_back(std::move(beam));
  }
  g.seqs = std::move(beams);
}

void EngineCore::process_score(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks,
                               const std::vector<RowRange>& rows) {
  PromptScoring& s = *g.scoring;
  const ScoreWindow w = s.windows[s.window];
  for (size_t i = 0; i < chunks.size(); ++i)
    if (rows[i].count == chunks[i].num_tokens)
      score_rows(g, chunks[i], rows[i], w.begin, w.score_from, w.end);
  const Sequence& seq = *g.seqs.front();
  if (seq.num_computed < seq.num_known()) return;
  if (s.window + 1 < static_cast<int>(s.windows.size())) {
    start_window(g, s.window + 1);  // a fresh sequence: the old window's blocks go back now
  } else {
    s.done = true;
    g.seqs.clear();
  }
}

void EngineCore::process_embed(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks,
                               const std::vector<RowRange>& rows) {
  EmbedPooling& e = *g.pooling;
  const int hidden = model_->config().hidden_size;
  const bool mean = g.request.embed.pooling == Pooling::Mean;
  for (size_t i = 0; i < chunks.size(); ++i) {
    const ScheduledChunk& c = chunks[i];
    if (mean && rows[i].count == c.num_tokens) {
      rows_.resize(static_cast<size_t>(kHiddenRowsPerRead) * hidden);
      const int end = c.start + c.num_tokens;
      for (int q = std::max(c.start, e.next_position); q < end; q += kHiddenRowsPerRead) {
        const int n = std::min(kHiddenRowsPerRead, end - q);
        const int row = rows[i].begin + (q - c.start);
        model_->hidden_states(row, row + n, rows_.data());
        for (int r = 0; r < n; ++r)
          for (int j = 0; j < hidden; ++j) e.sum[j] += rows_[static_cast<size_t>(r) * hidden + j];
        e.next_position = q + n;
      }
    } else if (!mean && c.reaches_end()) {
      e.last.resize(hidden);
      const int row = rows[i].begin + rows[i].count - 1;
      model_->hidden_states(row, row + 1, e.last.data());
    }
  }
  const Sequence& seq = *g.seqs.front();
  if (seq.num_computed < seq.num_known()) return;
  std::vector<float> pooled(hidden);
  if (mean) {
    for (int j = 0; j < hidden; ++j) pooled[j] = static_cast<float>(e.sum[j] / g.num_prompt());
  } else {
    pooled = e.last;
  }
  // One row pooled by Last is the row itself; pool_hidden_states owns normalization.
  e.embedding = pool_hidden_states(pooled, 1, hidden, Pooling::Last, g.request.embed.normalize);
  g.seqs.clear();
}

}  // namespace lmserve::engine
