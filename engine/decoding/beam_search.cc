// BeamSearch: Hugging Face generate() beam search for one prompt, step by step.
// Scores are float32 running sums of log-probs, as in HF, so that decisions and
// reported scores match a float32 reference.
#include "engine/decoding/beam_search.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/sampling/sampler.h"

namespace lmserve::engine {
namespace {

struct Candidate {
  float score;
  int beam;
  int32_t token;
};

// Best first; ties broken by beam then token so the order never depends on the
// platform's sort.
bool better(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) return a.score > b.score;
  if (a.beam != b.beam) return a.beam < b.beam;
  return a.token < b.token;
}

}  // namespace

BeamSearch::BeamSearch(const SamplingParams& params, std::vector<int32_t> eos_ids,
                       std::vector<int32_t> prompt)
    : params_(params), eos_ids_(std::move(eos_ids)), prompt_(std::move(prompt)) {
  if (params_.num_beams < 1) {
    throw InvalidParameter("num_beams", "num_beams must be >= 1, got " +
                                            std::to_string(params_.num_beams));
  }
  live_.push_back(Beam{});  // the prompt itself
  if (params_.max_tokens <= 0) done_ = true;
}

int BeamSearch::num_live() const { return static_cast<int>(live_.size()); }

const std::vector<int32_t>& BeamSearch::live_tokens(int i) const { return live_.at(i).tokens; }

bool BeamSearch::done() const { return done_; }

int BeamSearch::steps_run() const { return steps_; }

float BeamSearch::score_of(float sum_logprobs, int generated_len) const {
  if (generated_len <= 0) return sum_logprobs;
  return static_cast<float>(static_cast<double>(sum_logprobs) /
                            std::pow(static_cast<double>(generated_len),
                                     static_cast<double>(params_.length_penalty)));
}

void BeamSearch::add_hypothesis(BeamHypothesis h) {
  const size_t capacity = static_cast<size_t>(params_.num_beams);
  if (finished_.size() >= capacity && !(h.score > finished_.back().score)) return;
  // After the equal scores already kept: the earlier hypothesis wins a tie.
  auto at = std::upper_bound(finished_.begin(), finished_.end(), h.score,
                             [](float s, const BeamHypothesis& x) { return s > x.score; });
  finished_.insert(at, std::move(h));
  if (finished_.size() > capacity) finished_.pop_back();
}

std::vector<BeamContinuation> BeamSearch::step(
    std::span<const std::span<const float>> logprob_rows) {
  if (done_) throw std::logic_error("BeamSearch::step called after the search is done");
  if (logprob_rows.size() != live_.size()) {
    throw std::invalid_argument("BeamSearch::step: got " + std::to_string(logprob_rows.size()) +
                                " rows for " + std::to_string(live_.size()) + " live beams");
  }
  const size_t vocab = logprob_rows[0].size();
  for (const auto& row : logprob_rows) {
    if (row.size() != vocab || vocab == 0) {
      throw std::invalid_argument("BeamSearch::step: rows must all have the vocabulary size");
    }
  }
  const int width = params_.num_beams;
  // HF keeps max(2, 1 + #eos) · num_beams candidates so that enough non-EOS ones remain.
  const size_t wanted = static_cast<size_t>(std::max<int>(2, 1 + static_cast<int>(eos_ids_.size()))) *
                        static_cast<size_t>(width);
  const bool process = !params_.logit_bias.empty() || params_.repetition_penalty != 1.0f ||
                       params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f ||
                       params_.no_repeat_ngram_size > 0 || steps_ < params_.min_tokens;

  // The `wanted` best (beam, token) pairs: a heap whose front is the worst kept.
  std::vector<Candidate> heap;
  heap.reserve(wanted + 1);
  for (size_t b = 0; b < live_.size(); ++b) {
    std::span<const float> row = logprob_rows[b];
    if (process) {
      scratch_.assign(row.begin(), row.end());
      apply_logits_processors(scratch_, params_, TokenHistory{prompt_, live_[b].tokens}, eos_ids_);
      row = scratch_;
    }
    const float base = live_[b].sum_logprobs;
    for (size_t t = 0; t < vocab; ++t) {
      const float lp = row[t];
      if (!(lp > -INFINITY)) continue;  // masked or NaN
      Candidate c{base + lp, static_cast<int>(b), static_cast<int32_t>(t)};
      if (heap.size() < wanted) {
        heap.push_back(c);
        std::push_heap(heap.begin(), heap.end(), better);
      } else if (better(c, heap.front())) {
        std::pop_heap(heap.begin(), heap.end(), better);
        heap.back() = c;
        std::push_heap(heap.begin(), heap.end(), better);
      }
    }
  }
  std::sort(heap.begin(), heap.end(), better);

  // What each chosen token reports: its log-prob in the given (unprocessed) row and, on
  // request, that row's top alternatives — computed once per parent beam.
  const int top_k = std::max(params_.logprobs, 0);
  std::vector<std::vector<TokenLogprob>> parent_top(live_.size());
  std::vector<bool> parent_top_done(live_.size(), false);
  auto step_of = [&](const Candidate& c) {
    if (top_k > 0 && !parent_top_done[c.beam]) {
      parent_top[c.beam] = top_logprobs(logprob_rows[c.beam], top_k, 0.0f);
      parent_top_done[c.beam] = true;
    }
    return GeneratedToken{c.token, logprob_rows[c.beam][c.token], parent_top[c.beam]};
  };

  ++steps_;
  const int generated_len = steps_;
  std::vector<Beam> next;
  std::vector<BeamContinuation> continuations;
  for (size_t rank = 0; rank < heap.size() && static_cast<int>(next.size()) < width; ++rank) {
    const Candidate& c = heap[rank];
    const Beam& parent = live_[c.beam];
    const bool is_eos = std::find(eos_ids_.begin(), eos_ids_.end(), c.token) != eos_ids_.end();
    if (is_eos) {
      // Only an EOS within the first num_beams candidates finishes a hypothesis.
      if (rank < static_cast<size_t>(width)) {
        BeamHypothesis h;
        h.tokens = parent.tokens;
        h.tokens.push_back(c.token);
        h.steps = parent.steps;
        h.steps.push_back(step_of(c));
        h.sum_logprobs = c.score;
        h.score = score_of(c.score, generated_len);
        h.finished_by_eos = true;
        add_hypothesis(std::move(h));
      }
      continue;
    }
    Beam beam;
    beam.tokens.reserve(parent.tokens.size() + 1);
    beam.tokens = parent.tokens;
    beam.tokens.push_back(c.token);
    beam.steps = parent.steps;
    beam.steps.push_back(step_of(c));
    beam.sum_logprobs = c.score;
    next.push_back(std::move(beam));
    continuations.push_back(BeamContinuation{c.beam, c.token, c.score});
  }
  live_ = std::move(next);

  if (static_cast<int>(finished_.size()) >= width) {
    if (params_.early_stopping) {
      done_ = true;
    } else if (!live_.empty()) {
      // HF's heuristic: stop when the best running beam, scored at its current length,
      // cannot beat the worst kept hypothesis.
      const float best_possible = score_of(live_.front().sum_logprobs, generated_len);
      if (!(best_possible > finished_.back().score)) done_ = true;
    }
  }
  if (!done_ && steps_ >= params_.max_tokens) {
    for (const Beam& beam : live_) {
      BeamHypothesis h;
      h.tokens = beam.tokens;
      h.steps = beam.steps;
      h.sum_logprobs = beam.sum_logprobs;
      h.score = score_of(beam.sum_logprobs, params_.max_tokens);
      add_hypothesis(std::move(h));
    }
    done_ = true;
  }
  if (live_.empty()) done_ = true;
  if (done_) {
    live_.clear();
    continuations.clear();
  }
  return continuations;
}

std::vector<BeamHypothesis> BeamSearch::finalize() {
  if (!done_) throw std::logic_error("BeamSearch::finalize called before the search is done");
  std::vector<BeamHypothesis> out;
  if (finished_.empty()) {
    // max_tokens == 0: the prompt alone, with nothing generated.
    out.push_back(BeamHypothesis{});
    return out;
  }
  const size_t n = std::min(finished_.size(), static_cast<size_t>(std::max(params_.n, 1)));
  out.assign(finished_.begin(), finished_.begin() + n);
  return out;
}

}  // namespace lmserve::engine
