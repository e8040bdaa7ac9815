// EngineCore: request bookkeeping, the step loop and output delivery. The per-kind
// handling of a step's rows (sampling, beams, scoring, pooling) is in engine_decode.cc.
#include "engine/engine_core.h"

#include <algorithm>
#include <climits>
#include <stdexcept>

namespace lmserve::engine {

int resolve_max_model_len(const ModelConfig& config, const EngineOptions& options) {
  int model_max = config.max_position_embeddings;
  if (config.sliding_window && *config.sliding_window > 0)
    model_max = std::min(model_max, *config.sliding_window);
  if (options.max_model_len < 0) throw std::invalid_argument("max_model_len must be >= 0");
  if (options.max_model_len == 0) return model_max;
  if (options.max_model_len > model_max)
    throw std::invalid_argument("max_model_len " + std::to_string(options.max_model_len) +
                                " exceeds the model's maximum of " + std::to_string(model_max));
  return options.max_model_len;
}

int kv_blocks_for(const Model& model, const EngineOptions& options) {
  if (options.block_size < 1) throw std::invalid_argument("block_size must be >= 1");
  const int64_t max_len = resolve_max_model_len(model.config(), options);
  int64_t tokens = options.kv_cache_tokens;
  if (tokens < 0) throw std::invalid_argument("kv_cache_tokens must be >= 0");
  const kernels::Backend::MemoryInfo memory = model.backend().memory_info();
  if (tokens == 0 && memory.total_bytes > 0) {
    // vLLM's rule: the cache gets what is left of gpu_memory_utilization·total once the
    // weights (already loaded) and everything else on the device are counted.
    const double budget = options.gpu_memory_utilization * static_cast<double>(memory.total_bytes) -
                          static_cast<double>(memory.total_bytes - memory.free_bytes);
    tokens = static_cast<int64_t>(budget / static_cast<double>(model.kv_bytes_per_token()));
    if (tokens < max_len) {
      throw std::invalid_argument("gpu_memory_utilization " + std::to_string(options.gpu_memory_utilization) +
                                  " leaves room for " + std::to_string(std::max<int64_t>(tokens, 0)) +
                                  " KV tokens, fewer than one sequence of max_model_len " + std::to_string(max_len));
    }
  }
  if (tokens == 0) tokens = int64_t{options.max_num_seqs} * std::min<int64_t>(512, max_len);
  const int64_t blocks = (tokens + options.block_size - 1) / options.block_size;
  if (blocks > INT_MAX) throw std::invalid_argument("kv_cache_tokens is too large");
  return static_cast<int>(std::max<int64_t>(blocks, 1));
}

namespace {
SchedulerLimits limits_from(const EngineOptions& o) {
  // The engine enforces max_queue on submit; the scheduler's own bound leaves room for
  // requests it preempted itself (each held at least one seat).
  return {.max_num_seqs = o.max_num_seqs,
          .max_num_batched_tokens = o.max_num_batched_tokens,
          .max_queue = o.max_queue + o.max_num_seqs};
}
}  // namespace

EngineCore::EngineCore(std::unique_ptr<Model> model, const EngineOptions& options,
                       FinishedHook on_finished)
    : model_(std::move(model)),
      options_(options),
      max_model_len_(resolve_max_model_len(model_->config(), options)),
      vocab_size_(model_->config().vocab_size),
      pool_(kv_blocks_for(*model_, options), options.block_size),
      scheduler_(limits_from(options), &pool_),
      on_finished_(std::move(on_finished)) {
  model_->allocate_kv_cache(pool_.num_blocks(), pool_.block_size());
  scratch_.resize(vocab_size_);
}

EngineCore::~EngineCore() = default;

bool EngineCore::add(Request request, Clock::time_point arrival) {
  const std::string id = request.id;
  auto group = std::make_unique<SequenceGroup>(std::move(request), &pool_);
  SequenceGroup& g = *group;
  g.timing.arrival = arrival;
  const Request& r = g.request;
  if (r.kind == RequestKind::Generate) {
    const SamplingParams& p = r.params;
    std::vector<int32_t> eos = p.eos_token_ids ? *p.eos_token_ids
                                                : std::vector<int32_t>(model_->config().eos_token_ids.begin(),
                                                                       model_->config().eos_token_ids.end());
    if (!p.ignore_eos) g.eos_ids = eos;
    g.mask_until_min = g.eos_ids;
    g.mask_until_min.insert(g.mask_until_min.end(), p.stop_token_ids.begin(), p.stop_token_ids.end());
    if (p.use_beam_search) g.beam.emplace(p, g.eos_ids, r.prompt);
    if (p.prompt_logprobs >= 0) {
      PromptScoring s;
      s.top_k = p.prompt_logprobs;
      s.windows = {{0, g.num_prompt(), 1}};
      s.done = g.num_prompt() < 2;
      g.scoring = std::move(s);
    }
  } else if (r.kind == RequestKind::Score) {
    PromptScoring s;
    s.top_k = r.score.top_logprobs;
    const int window = r.score.window > 0 ? r.score.window : max_model_len_;
    const int stride = r.score.stride > 0 ? r.score.stride : std::max(window / 2, 1);
    if (g.num_prompt() <= window) s.windows = {{0, g.num_prompt(), 1}};
    else s.windows = plan_score_windows(g.num_prompt(), window, stride);
    g.scoring = std::move(s);
    start_window(g, 0);
  } else {
    g.pooling.emplace();
    g.pooling->sum.assign(model_->config().hidden_size, 0.0);
  }
  if (g.scoring) {
    g.scoring->result.token_logprobs.assign(g.num_prompt(), std::nullopt);
    g.scoring->result.top.assign(g.num_prompt(), {});
  }
  groups_[id] = std::move(group);
  if (!scheduler_.add(&g)) {
    fail_group(g, "the waiting queue is full");
    return false;
  }
  return true;
}

void EngineCore::abort(const std::string& request_id) {
  auto it = groups_.find(request_id);
  if (it != groups_.end()) abort_group(*it->second);
}

void EngineCore::abort_all() {
  std::vector<SequenceGroup*> all;
  for (auto& [id, g] : groups_) all.push_back(g.get());
  for (SequenceGroup* g : all) abort_group(*g);
}

void EngineCore::stop_sequence(const std::string& request_id, int sequence_index) {
  auto it = groups_.find(request_id);
  if (it == groups_.end()) return;
  SequenceGroup& g = *it->second;
  if (g.request.kind != RequestKind::Generate || g.beam || !g.forked) return;
  for (auto& seq : g.seqs) {
    if (seq->index != sequence_index) continue;
    finish_sequence(g, seq.get(), FinishReason::Stop, std::nullopt);
    emit(g, group_done(g));
    return;
  }
}

void EngineCore::abort_group(SequenceGroup& g) {
  if (g.request.kind == RequestKind::Generate) {
    auto mark = [&](int index) {
      SequenceOutput& so = g.outbox[index];
      so.index = index;
      if (so.finish_reason == FinishReason::None) so.finish_reason = FinishReason::Abort;
    };
    if (g.beam || !g.forked) {
      for (int i = 0; i < g.num_outputs(); ++i) mark(i);
    } else {
      for (auto& seq : g.seqs) mark(seq->index);
    }
  }
  g.seqs.clear();
  emit(g, true);
}

void EngineCore::fail_group(SequenceGroup& g, const std::string& message) {
  g.error = message;
  abort_group(g);
}

bool EngineCore::group_done(const SequenceGroup& g) const { return g.seqs.empty(); }

void EngineCore::finish_sequence(SequenceGroup& g, Sequence* seq, FinishReason reason,
                                 std::optional<int32_t> stop_token) {
  SequenceOutput& so = g.outbox[seq->index];
  so.index = seq->index;
  so.finish_reason = reason;
  so.stop_token = stop_token;
  so.cumulative_logprob = seq->cumulative_logprob;
  auto it = std::find_if(g.seqs.begin(), g.seqs.end(), [&](const auto& s) { return s.get() == seq; });
  if (it != g.seqs.end()) g.seqs.erase(it);  // frees its blocks now
}

OutputRows EngineCore::output_rows_for(const ScheduledChunk& c) const {
  const SequenceGroup& g = *c.group;
  switch (g.request.kind) {
    case RequestKind::Score:
      return OutputRows::All;
    case RequestKind::Embed:
      if (g.request.embed.pooling == Pooling::Mean) return OutputRows::All;
      return c.reaches_end() ? OutputRows::Last : OutputRows::None;
    case RequestKind::Generate:
      if (g.scoring && !g.scoring->done && c.start < g.num_prompt() - 1) return OutputRows::All;
      return c.reaches_end() ? OutputRows::Last : OutputRows::None;
  }
  return OutputRows::None;
}

bool EngineCore::step() {
  SchedulerOutput out = scheduler_.schedule();
  for (SequenceGroup* g : out.unservable) {
    fail_group(*g, "the request needs more KV cache than the engine has (" +
                       std::to_string(pool_.num_blocks()) + " blocks of " +
                       std::to_string(pool_.block_size()) + " tokens); raise kv_cache_tokens");
  }
  if (out.empty()) return !out.unservable.empty();
  ++steps_total_;

  std::vector<SequenceChunk> chunks;
  std::vector<RowRange> rows;
  std::vector<SequenceGroup*> groups;  // in order of first appearance
  chunks.reserve(out.chunks.size());
  int next_row = 0;
  const auto now = Clock::now();
  for (const ScheduledChunk& c : out.chunks) {
    const OutputRows o = output_rows_for(c);
    chunks.push_back({std::span<const int32_t>(c.seq->tokens).subspan(c.start, c.num_tokens),
                      c.start, std::span<const int32_t>(c.seq->blocks.blocks()), o});
    const int count = o == OutputRows::All ? c.num_tokens : o == OutputRows::Last ? 1 : 0;
    rows.push_back({next_row, count});
    next_row += count;
    SequenceGroup& g = *c.group;
    if (g.timing.first_scheduled == Clock::time_point{}) g.timing.first_scheduled = now;
    prompt_tokens_total_ += std::max(0, std::min(c.start + c.num_tokens, g.shared_prefix) - c.start);
    if (std::find(groups.begin(), groups.end(), &g) == groups.end()) groups.push_back(&g);
  }
  try {
    model_->copy_kv_blocks(out.copies);
    model_->forward(chunks);
  } catch (const std::exception& e) {
    for (SequenceGroup* g : groups) fail_group(*g, std::string("model step failed: ") + e.what());
    return true;
  }
  scheduler_.commit(out);

  for (SequenceGroup* g : groups) {
    std::vector<ScheduledChunk> mine;
    std::vector<RowRange> my_rows;
    for (size_t i = 0; i < out.chunks.size(); ++i) {
      if (out.chunks[i].group != g) continue;
      mine.push_back(out.chunks[i]);
      my_rows.push_back(rows[i]);
    }
    try {
      process_group(*g, mine, my_rows);
    } catch (const std::exception& e) {
      fail_group(*g, e.what());
      continue;
    }
    emit(*g, group_done(*g));
  }
  return true;
}

void EngineCore::process_group(SequenceGroup& g, const std::vector<ScheduledChunk>& chunks,
                               const std::vector<RowRange>& rows) {
  switch (g.request.kind) {
    case RequestKind::Generate:
      if (g.scoring) score_prompt(g, chunks, rows);
      if (finish_without_tokens(g, chunks)) return;
      if (g.beam) process_beam(g, chunks, rows);
      else process_generate(g, chunks, rows);
      return;
    case RequestKind::Score:
      process_score(g, chunks, rows);
      return;
    case RequestKind::Embed:
      process_embed(g, chunks, rows);
      return;
  }
}

void EngineCore::emit(SequenceGroup& g, bool finished) {
  if (finished) {
    g.timing.finished = Clock::now();
    scheduler_.remove(&g);  // frees every block it still holds
  }
  if (!finished && !g.request.stream) return;
  RequestOutput o;
  o.request_id = g.request.id;
  for (auto& [index, so] : g.outbox) o.sequences.push_back(std::move(so));
  g.outbox.clear();
  PromptScoring* s = g.scoring ? &*g.scoring : nullptr;
  if (s && s->done && !s->sent && (finished || g.request.kind == RequestKind::Generate)) {
    o.prompt_logprobs = std::move(s->result);
    s->sent = true;
  }
  if (finished && g.pooling) o.embedding = std::move(g.pooling->embedding);
  o.finished = finished;
  o.error = g.error;
  o.num_prompt_tokens = g.num_prompt();
  o.num_generated_tokens = g.num_generated;
  o.timing = g.timing;
  if (!finished && o.sequences.empty() && !o.prompt_logprobs) return;
  const std::string id = g.request.id;
  if (finished && on_finished_) on_finished_(id, false);
  if (g.request.on_output) {
    try {
      g.request.on_output(std::move(o));
    } catch (...) {
      // A caller's callback must not take the engine thread down.
    }
  }
  if (finished) {
    groups_.erase(id);  // g is gone from here on
    if (on_finished_) on_finished_(id, true);
  }
}

EngineStats EngineCore::stats() const {
  EngineStats s;
  s.num_running = scheduler_.num_running();
  s.num_waiting = scheduler_.num_waiting();
  s.kv_blocks_total = pool_.num_blocks();
  s.kv_blocks_used = pool_.num_used();
  s.block_size = pool_.block_size();
  s.num_preemptions = scheduler_.num_preemptions();
  s.prompt_tokens_total = prompt_tokens_total_;
  s.generation_tokens_total = generation_tokens_total_;
  s.steps_total = steps_total_;
  return s;
}

}  // namespace lmserve::engine
