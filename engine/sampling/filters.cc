// The sampling filters, with Hugging Face logits-warper semantics (TopK, TopP, MinP,
// Typical warpers, min_tokens_to_keep = 1), and the inverse-CDF draw.
//
// Work happens on a list of (id, scaled logit) candidates. Sorting is done only as far
// as a filter needs it: top-k selects with nth_element, top-p sorts a growing head of
// the list until the kept mass is reached, so a 150k vocabulary is fully sorted only
// when a filter really needs every token in order.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "engine/sampling/filters.h"

namespace lmserve::engine {
namespace {

struct Candidate {
  int32_t id;
  float s;  // logit / temperature
};

// A strict total order: more probable first, lower id on ties.
bool more_probable(const Candidate& a, const Candidate& b) {
  return a.s > b.s || (a.s == b.s && a.id < b.id);
}

void scaled_candidates(std::span<const float> logits, float temperature, std::vector<Candidate>& c) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const bool any_pos_inf = std::find(logits.begin(), logits.end(), kInf) != logits.end();
  c.clear();
  c.reserve(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    const float x = logits[i];
    if (any_pos_inf) {
      // A +inf logit takes all the mass: only such tokens remain, equally likely.
      if (x == kInf) c.push_back({static_cast<int32_t>(i), 0.0f});
    } else if (x > -kInf) {  // also drops NaN
      // A tiny temperature may overflow the quotient; clamping keeps the order.
      const float s = std::clamp(x / temperature, -FLT_MAX, FLT_MAX);
      c.push_back({static_cast<int32_t>(i), s});
    }
  }
}

float max_scaled(const std::vector<Candidate>& c) {
  float m = -FLT_MAX;
  for (const Candidate& x : c) m = std::max(m, x.s);
  return m;
}

// Unnormalized probability relative to the most probable token, in float64.
double weight(const Candidate& x, float smax) {
  return std::exp(static_cast<double>(x.s) - static_cast<double>(smax));
}

// TopKLogitsWarper: tokens whose score is below the k-th largest are dropped (ties with
// the k-th stay).
void keep_top_k(std::vector<Candidate>& c, int k) {
  if (k <= 0 || static_cast<size_t>(k) >= c.size()) return;
  std::nth_element(c.begin(), c.begin() + (k - 1), c.end(), more_probable);
  const float kth = c[k - 1].s;
  c.erase(std::partition(c.begin(), c.end(), [kth](const Candidate& x) { return x.s >= kth; }),
          c.end());
}

// TopPLogitsWarper: drop tokens whose ascending cumulative probability is <= 1 - top_p,
// i.e. keep the most probable tokens while the mass before them is < top_p. Leaves the
// kept candidates sorted, most probable first. Returns whether it sorted them.
bool keep_top_p(std::vector<Candidate>& c, float top_p) {
  if (top_p >= 1.0f || c.size() <= 1) return false;
  const float smax = max_scaled(c);
  double total = 0.0;
  for (const Candidate& x : c) total += weight(x, smax);
  const double target = static_cast<double>(top_p) * total;
  // Sort a head of 1024, then 4x more while the mass is not reached; with a strict
  // total order the sorted head of a wider partial sort starts with the narrower one.
  size_t sorted = std::min<size_t>(c.size(), 1024);
  size_t i = 0;
  double before = 0.0;
  while (true) {
    std::partial_sort(c.begin(), c.begin() + sorted, c.end(), more_probable);
    for (; i < sorted; ++i) {
      if (i > 0 && before >= target) {
        c.resize(i);
        return true;
      }
      before += weight(c[i], smax);
    }
    if (sorted == c.size()) return true;
    sorted = std::min(c.size(), sorted * 4);
  }
}

// MinPLogitsWarper: drop tokens with probability < min_p · (max probability).
void keep_min_p(std::vector<Candidate>& c, float min_p) {
  if (min_p <= 0.0f || c.size() <= 1) return;
  const float smax = max_scaled(c);
  c.erase(std::remove_if(c.begin(), c.end(),
                         [&](const Candidate& x) { return weight(x, smax) < min_p; }),
          c.end());
}

// TypicalLogitsWarper: rank tokens by |−log p − entropy|, keep the closest ones until
// their mass reaches typical_p (ties with the last kept distance stay). Like top-p, it
// sorts only as much of the ranking as the kept mass needs.
void keep_typical(std::vector<Candidate>& c, float mass) {
  if (mass >= 1.0f || c.size() <= 1) return;
  const float smax = max_scaled(c);
  double total = 0.0;
  for (const Candidate& x : c) total += weight(x, smax);
  const double lse = smax + std::log(total);
  struct Ranked {
    double shifted;  // |−log p − H|
    double p;
    size_t index;    // into c
  };
  std::vector<Ranked> ranked(c.size());
  double entropy = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double logp = c[i].s - lse;
    ranked[i] = {logp, std::exp(logp), i};
    if (ranked[i].p > 0.0) entropy -= ranked[i].p * logp;
  }
  for (Ranked& r : ranked) r.shifted = std::abs(-r.shifted - entropy);
  auto closer = [&](const Ranked& a, const Ranked& b) {
    if (a.shifted != b.shifted) return a.shifted < b.shifted;
    return more_probable(c[a.index], c[b.index]);
  };
  // HF keeps ranks up to the first whose cumulative mass reaches `mass` (or the last).
  size_t sorted = std::min<size_t>(ranked.size(), 1024);
  size_t i = 0, last = ranked.size() - 1;
  double cumulative = 0.0;
  bool found = false;
  while (!found) {
    std::partial_sort(ranked.begin(), ranked.begin() + sorted, ranked.end(), closer);
    for (; i < sorted; ++i) {
      cumulative += ranked[i].p;
      if (!(cumulative < mass)) {
        last = i;
        found = true;
        break;
      }
    }
    if (sorted == ranked.size()) break;
    sorted = std::min(ranked.size(), sorted * 4);
  }
  const double threshold = ranked[last].shifted;
  const size_t most_typical = ranked[0].index;
  std::vector<char> keep(c.size(), 0);
  for (const Ranked& r : ranked) keep[r.index] = r.shifted <= threshold || r.index == most_typical;
  size_t kept = 0;
  for (size_t k = 0; k < c.size(); ++k) {
    if (keep[k]) c[kept++] = c[k];
  }
  c.resize(kept);
}

// Per-thread work buffers: a fresh 150k-entry candidate list per token would cost new
// pages (and their faults) every time, more than the filtering itself.
struct Workspace {
  std::vector<Candidate> candidates;
  std::vector<double> weights;
};
Workspace& workspace() {
  thread_local Workspace w;
  return w;
}

// Runs the filters; leaves the kept candidates in w.candidates (most probable first when
// `sorted`) and their unnormalized weights in w.weights. Returns the total weight.
double run_filters(std::span<const float> logits, const SamplingParams& params, bool sorted,
                   Workspace& w) {
  if (!(params.temperature > 0.0f)) {
    throw InvalidParameter("temperature", "the filtered distribution needs temperature > 0");
  }
  std::vector<Candidate>& c = w.candidates;
  scaled_candidates(logits, params.temperature, c);
  if (c.empty()) throw std::runtime_error("sampling: every token of the row is masked");
  keep_top_k(c, params.top_k);
  const bool is_sorted = keep_top_p(c, params.top_p);
  keep_min_p(c, params.min_p);  // order-preserving
  if (params.typical_p < 1.0f && c.size() > 1) {
    keep_typical(c, params.typical_p);  // order-preserving too
  }
  if (sorted && !is_sorted) std::sort(c.begin(), c.end(), more_probable);
  const float smax = max_scaled(c);
  w.weights.resize(c.size());
  double total = 0.0;
  for (size_t i = 0; i < c.size(); ++i) total += (w.weights[i] = weight(c[i], smax));
  return total;
}

}  // namespace

namespace detail {

SparseDistribution filter_distribution(std::span<const float> logits,
                                       const SamplingParams& params, bool sorted) {
  Workspace& w = workspace();
  const double total = run_filters(logits, params, sorted, w);
  SparseDistribution dist;
  dist.ids.resize(w.candidates.size());
  dist.probs.resize(w.candidates.size());
  for (size_t i = 0; i < w.candidates.size(); ++i) {
    dist.ids[i] = w.candidates[i].id;
    dist.probs[i] = static_cast<float>(w.weights[i] / total);
  }
  return dist;
}

int32_t sample_filtered(std::span<const float> logits, const SamplingParams& params,
                        double uniform, ProcessedLogprobs* processed) {
  Workspace& w = workspace();
  const double total = run_filters(logits, params, /*sorted=*/false, w);
  const std::vector<Candidate>& c = w.candidates;
  const double target = std::clamp(uniform, 0.0, 1.0) * total;
  size_t chosen = c.size() - 1;  // rounding at the very top; every weight is > 0
  double cumulative = 0.0;
  for (size_t i = 0; i < c.size(); ++i) {
    cumulative += w.weights[i];
    if (target < cumulative) {
      chosen = i;
      break;
    }
  }
  if (processed) {
    const double log_total = std::log(total);
    processed->logprob = static_cast<float>(std::log(w.weights[chosen]) - log_total);
    processed->top.clear();
    const size_t k = std::min(c.size(), static_cast<size_t>(std::max(processed->k, 0)));
    if (k > 0) {
      std::vector<size_t> order(c.size());
      std::iota(order.begin(), order.end(), size_t{0});
      std::partial_sort(order.begin(), order.begin() + k, order.end(),
                        [&](size_t a, size_t b) { return more_probable(c[a], c[b]); });
      for (size_t i = 0; i < k; ++i) {
        processed->top.push_back(
            {c[order[i]].id, static_cast<float>(std::log(w.weights[order[i]]) - log_total)});
      }
    }
  }
  return c[chosen].id;
}

}  // namespace detail

SparseDistribution filtered_distribution(std::span<const float> processed_logits,
                                         const SamplingParams& params) {
  return detail::filter_distribution(processed_logits, params, /*sorted=*/true);
}

int32_t draw(const SparseDistribution& dist, double uniform) {
  if (dist.ids.empty() || dist.ids.size() != dist.probs.size()) {
    throw std::invalid_argument("draw: empty or malformed distribution");
  }
  // probs sum to 1 up to rounding, so no normalizing pass: a draw costs only the walk,
  // which is short when the ids are most probable first.
  const double target = std::clamp(uniform, 0.0, 1.0);
  double cumulative = 0.0;
  for (size_t i = 0; i < dist.ids.size(); ++i) {
    cumulative += dist.probs[i];
    if (target < cumulative) return dist.ids[i];
  }
  // Rounding left the target above the total: the last token with non-zero mass.
  for (size_t i = dist.ids.size(); i-- > 0;) {
    if (dist.probs[i] > 0.0f) return dist.ids[i];
  }
  return dist.ids.back();
}

}  // namespace lmserve::engine
