// One sampling decision per sequence (sampler.h's pipeline) and the per-sequence random
// stream that makes seeded requests reproducible.
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/sampling/filters.h"
#include "engine/sampling/sampler.h"

namespace lmserve::engine {
namespace {

std::mt19937_64 make_engine(std::optional<uint64_t> seed, int sequence_index) {
  if (!seed) {
    std::random_device device;
    std::seed_seq seq{device(), device(), device(), device()};
    return std::mt19937_64(seq);
  }
  // seed_seq's mixing and mt19937_64's seeding are fully specified by the standard, so
  // the stream is the same on every platform and depends on (seed, index) only.
  std::seed_seq seq{static_cast<uint32_t>(*seed), static_cast<uint32_t>(*seed >> 32),
                    static_cast<uint32_t>(sequence_index), 0x6c6d7376u /* "lmsv" */};
  return std::mt19937_64(seq);
}

// Greedy choice: the highest logit, the lowest id on ties; NaN never wins.
int32_t argmax(std::span<const float> logits) {
  int32_t best = -1;
  float best_value = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    if (logits[i] > best_value) {
      best_value = logits[i];
      best = static_cast<int32_t>(i);
    }
  }
  if (best < 0) throw std::runtime_error("greedy: every token of the row is masked");
  return best;
}

}  // namespace

SequenceRng::SequenceRng(std::optional<uint64_t> seed, int sequence_index)
    : engine_(make_engine(seed, sequence_index)) {}

double SequenceRng::uniform() {
  // 53 random bits → a double in [0, 1), never 1 (std::generate_canonical can round to 1).
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

GeneratedToken sample_next_token(std::span<const float> raw, std::span<float> scratch,
                                 const SamplingParams& params, const TokenHistory& history,
                                 std::span<const int32_t> eos_ids, SequenceRng& rng) {
  if (raw.empty() || scratch.size() != raw.size()) {
    throw std::invalid_argument("sample_next_token: scratch must have the size of the logits row (" +
                                std::to_string(raw.size()) + "), got " +
                                std::to_string(scratch.size()));
  }
  std::copy(raw.begin(), raw.end(), scratch.begin());
  apply_logits_processors(scratch, params, history, eos_ids);

  const int k = params.logprobs;
  GeneratedToken out;
  if (params.temperature == 0.0f) {
    out.id = argmax(scratch);
    if (params.processed_logprobs) {
      const float lse = log_sum_exp(scratch);
      out.logprob = scratch[out.id] - lse;
      out.top = top_logprobs(scratch, k, lse);
    }
  } else {
    if (!params.processed_logprobs) {
      out.id = detail::sample_filtered(scratch, params, rng.uniform());
    } else {
      detail::ProcessedLogprobs processed;
      processed.k = k;
      out.id = detail::sample_filtered(scratch, params, rng.uniform(), &processed);
      out.logprob = processed.logprob;
      out.top = std::move(processed.top);
    }
  }
  if (!params.processed_logprobs) {
    // Default: log-softmax of the unmodified model logits (what the model believes,
    // independent of the sampling settings).
    const float lse = log_sum_exp(raw);
    out.logprob = raw[out.id] - lse;
    out.top = top_logprobs(raw, k, lse);
  }
  return out;
}

}  // namespace lmserve::engine
