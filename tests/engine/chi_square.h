// Chi-square goodness-of-fit for sampler tests: the statistic with small expected bins
// pooled, and its p-value from the regularized upper incomplete gamma function.
#pragma once

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

namespace lmserve::test {

// Regularized upper incomplete gamma Q(a, x) (series below a + 1, continued fraction
// above), enough for chi-square p-values.
inline double upper_gamma_q(double a, double x) {
  if (x <= 0.0) return 1.0;
  const double log_prefix = -x + a * std::log(x) - std::lgamma(a);
  if (x < a + 1.0) {
    double term = 1.0 / a, sum = term;
    for (int n = 1; n < 10000 && std::abs(term) > std::abs(sum) * 1e-15; ++n) {
      term *= x / (a + n);
      sum += term;
    }
    return 1.0 - sum * std::exp(log_prefix);
  }
  // Lentz's method for the continued fraction of Q.
  const double tiny = 1e-300;
  double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
  for (int i = 1; i < 10000; ++i) {
    const double an = -i * (i - a);
    b += 2.0;
    d = an * d + b;
    if (std::abs(d) < tiny) d = tiny;
    c = b + an / c;
    if (std::abs(c) < tiny) c = tiny;
    d = 1.0 / d;
    const double delta = d * c;
    h *= delta;
    if (std::abs(delta - 1.0) < 1e-15) break;
  }
  return std::exp(log_prefix) * h;
}

struct ChiSquare {
  double statistic = 0.0;
  int dof = 0;
  double p_value = 1.0;
};

// Bins with expected count < 5 are pooled (smallest first) until each bin has >= 5.
inline ChiSquare chi_square(std::vector<double> expected, std::vector<double> observed) {
  std::vector<size_t> order(expected.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return expected[a] < expected[b]; });
  std::vector<std::pair<double, double>> bins;  // (expected, observed)
  double pool_e = 0.0, pool_o = 0.0;
  for (size_t i : order) {
    if (expected[i] < 5.0 || pool_e > 0.0) {
      pool_e += expected[i];
      pool_o += observed[i];
      if (pool_e >= 5.0) {
        bins.push_back({pool_e, pool_o});
        pool_e = pool_o = 0.0;
      }
    } else {
      bins.push_back({expected[i], observed[i]});
    }
  }
  if (pool_e > 0.0 || pool_o > 0.0) {
    if (bins.empty()) {
      bins.push_back({pool_e, pool_o});
    } else {
      bins.back().first += pool_e;
      bins.back().second += pool_o;
    }
  }
  ChiSquare r;
  for (const auto& [e, o] : bins) r.statistic += (o - e) * (o - e) / e;
  r.dof = static_cast<int>(bins.size()) - 1;
  r.p_value = r.dof > 0 ? upper_gamma_q(r.dof / 2.0, r.statistic / 2.0) : 1.0;
  return r;
}

}  // namespace lmserve::test
