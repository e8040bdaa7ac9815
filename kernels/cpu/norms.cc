// add_norm: the fused residual add + LayerNorm / RMSNorm, one row per task.
//
// Row statistics are summed in double: it costs little next to the matmuls and keeps
// the result close to the reference whatever the row's magnitude.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/cpu/ops.h"

namespace lmserve::kernels::cpu {

namespace {
void norm_row(NormKind kind, float* x, const float* delta, const float* weight, const float* bias,
              float eps, int dim, float* out) {
  if (delta)
    for (int j = 0; j < dim; ++j) x[j] += delta[j];
  if (kind == NormKind::RmsNorm) {
    double sq = 0;
    for (int j = 0; j < dim; ++j) sq += static_cast<double>(x[j]) * x[j];
    const float inv = static_cast<float>(1.0 / std::sqrt(sq / dim + eps));
    for (int j = 0; j < dim; ++j) out[j] = x[j] * inv * weight[j];
    return;
  }
  double sum = 0;
  for (int j = 0; j < dim; ++j) sum += x[j];
  const double mean = sum / dim;
  double var = 0;
  for (int j = 0; j < dim; ++j) {
    const double d = x[j] - mean;
    var += d * d;
  }
  var /= dim;
  const float inv = static_cast<float>(1.0 / std::sqrt(var + eps));
  const float meanf = static_cast<float>(mean);
  for (int j = 0; j < dim; ++j) {
    const float v = (x[j] - meanf) * inv * weight[j];
    out[j] = bias ? v + bias[j] : v;
  }
}
}  // namespace

void add_norm(ThreadPool& pool, NormKind kind, float* x, const float* delta, const float* weight,
              const float* bias, float eps, int n, int dim, float* out) {
  if (n <= 0) return;
  if (dim <= 0) throw std::runtime_error("add_norm: dim must be positive");
  if (!weight) throw std::runtime_error("add_norm: null norm weight");
  pool.parallel_for(n, std::max(1, 8192 / dim), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      norm_row(kind, x + i * dim, delta ? delta + i * dim : nullptr, weight, bias, eps, dim,
               out + i * dim);
  });
}

}  // namespace lmserve::kernels::cpu
