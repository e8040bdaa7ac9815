// Element-wise and row-copy ops: add, gelu_new, silu_mul, embedding, gather_rows.
#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/ops.h"

namespace lmserve::kernels::cpu {

namespace {
// Elements per task for the streaming ops; below this, threading costs more than it saves.
constexpr int64_t kElementGrain = 1 << 15;
}  // namespace

void add(ThreadPool& pool, float* x, const float* y, size_t count) {
  if (count == 0) return;
  pool.parallel_for(static_cast<int64_t>(count), kElementGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) x[i] += y[i];
  });
}

void gelu_new(ThreadPool& pool, float* x, size_t count) {
  if (count == 0) return;
  pool.parallel_for(static_cast<int64_t>(count), kElementGrain / 8, [&](int64_t b, int64_t e) {
    const float k = 0.7978845608028654f;  // sqrt(2/pi)
    for (int64_t i = b; i < e; ++i) {
      const float v = x[i];
      x[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
    }
  });
}

void silu_mul(ThreadPool& pool, const float* gate, const float* up, float* out, size_t count) {
  if (count == 0) return;
  pool.parallel_for(static_cast<int64_t>(count), kElementGrain / 8, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  });
}

void embedding(ThreadPool& pool, const SimdKernels& simd, const WeightMatrix& table,
               const int32_t* ids, int n, float* out, bool accumulate) {
  if (n <= 0) return;
  if (!table.data || table.cols <= 0) throw std::runtime_error("embedding: empty table");
  for (int i = 0; i < n; ++i)
    if (ids[i] < 0 || ids[i] >= table.rows)
      throw std::runtime_error("embedding: token id " + std::to_string(ids[i]) +
                               " outside the vocabulary of " + std::to_string(table.rows));
  const int64_t dim = table.cols;
  const size_t row_bytes = static_cast<size_t>(dim) * dtype_size(table.dtype);
  const auto* base = static_cast<const char*>(table.data);
  pool.parallel_for(n, std::max<int64_t>(1, kElementGrain / dim), [&](int64_t b, int64_t e) {
    std::vector<float> row(accumulate ? static_cast<size_t>(dim) : 0);
    for (int64_t i = b; i < e; ++i) {
      const void* src = base + static_cast<size_t>(ids[i]) * row_bytes;
      float* dst = out + i * dim;
      if (!accumulate) {
        simd.widen_row(src, dst, dim);
        continue;
      }
      simd.widen_row(src, row.data(), dim);
      for (int64_t j = 0; j < dim; ++j) dst[j] += row[j];
    }
  });
}

void gather_rows(ThreadPool& pool, const float* x, int dim, const int32_t* rows, int n,
                 float* out) {
  if (n <= 0 || dim <= 0) return;
  for (int i = 0; i < n; ++i)
    if (rows[i] < 0) throw std::runtime_error("gather_rows: negative row " + std::to_string(rows[i]));
  pool.parallel_for(n, std::max<int64_t>(1, kElementGrain / dim), [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float* src = x + static_cast<int64_t>(rows[i]) * dim;
      std::copy(src, src + dim, out + i * dim);
    }
  });
}

}  // namespace lmserve::kernels::cpu
