// linear(): the matmul driver. Splits W's rows (output features) across threads and
// never the K reduction, so each output element is computed the same way whatever the
// batch size or thread count (see simd_kernels.h).
#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cpu/ops.h"

namespace lmserve::kernels::cpu {

namespace {

// Bytes of x rows kept hot in L2 while a chunk of W rows is swept over them (prefill).
constexpr int64_t kXPassBytes = 256 * 1024;
// Bytes of W per task: small enough to stay in L2 while it is reused for every
// block of x rows, large enough that task overhead does not matter.
constexpr int64_t kWChunkBytes = 96 * 1024;
// Multiply-adds below which a task is not worth handing to another thread.
constexpr int64_t kMinTaskMacs = 64 * 1024;

void linear_chunk(const SimdKernels& simd, const float* x, int64_t n, const char* w,
                  size_t row_bytes, int64_t K, const float* bias, float* y, int64_t ldy,
                  int64_t o0, int64_t o1) {
  const int64_t pass_rows =
      std::clamp<int64_t>(kXPassBytes / (K * static_cast<int64_t>(sizeof(float))), 8, 64) / 8 * 8;
  for (int64_t p0 = 0; p0 < n; p0 += pass_rows) {
    const int64_t p1 = std::min(n, p0 + pass_rows);
    for (int64_t i = p0; i < p1;) {
      const int mr = static_cast<int>(std::min<int64_t>(simd.max_mr, p1 - i));
      const int nr = simd.nr_for_mr[mr - 1];
      const float* xi = x + i * K;
      float* yi = y + i * ldy;
      int64_t o = o0;
      for (; o + nr <= o1; o += nr)
        simd.main[mr - 1](xi, K, w + o * row_bytes, K, K, bias ? bias + o : nullptr, yi + o, ldy);
      for (; o < o1; ++o)
        simd.single[mr - 1](xi, K, w + o * row_bytes, K, K, bias ? bias + o : nullptr, yi + o, ldy);
      i += mr;
    }
  }
}

}  // namespace

void linear(ThreadPool& pool, const SimdKernels& simd, const float* x, int n,
            const WeightMatrix& w, const float* bias, float* y) {
  if (n < 0) throw std::runtime_error("linear: negative row count " + std::to_string(n));
  if (n == 0) return;
  if (!w.data || w.rows <= 0 || w.cols <= 0)
    throw std::runtime_error("linear: empty or unloaded weight matrix");
  if (!x || !y) throw std::runtime_error("linear: null input or output");
  const int64_t N = w.rows;
  const int64_t K = w.cols;
  const size_t row_bytes = static_cast<size_t>(K) * dtype_size(w.dtype);
  const auto* wbytes = static_cast<const char*>(w.data);

  // Enough tasks for the threads to balance, each a whole number of 8-row groups and
  // big enough that waking a thread for it pays off (tiny models run inline).
  int64_t chunk = std::max<int64_t>(1, kWChunkBytes / static_cast<int64_t>(row_bytes));
  chunk = std::min(chunk, (N + 4 * pool.size() - 1) / (4 * pool.size()));
  chunk = std::max(chunk, kMinTaskMacs / (static_cast<int64_t>(n) * K));
  chunk = std::max<int64_t>(8, (chunk + 7) / 8 * 8);
  const int64_t tasks = (N + chunk - 1) / chunk;
  pool.parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t o0 = t * chunk;
      linear_chunk(simd, x, n, wbytes, row_bytes, K, bias, y, N, o0, std::min(N, o0 + chunk));
    }
  });
}

}  // namespace lmserve::kernels::cpu
