// The per-ISA inner kernels (AVX-512, AVX2+FMA, portable) behind one table of function
// pointers, so the drivers in linear.cc / attention.cc are written once.
//
// Every kernel computes each output element in an order that depends only on the
// reduction length: vector-lane partial sums over full vectors in increasing k, a fixed
// horizontal sum, then the scalar tail. Which micro-kernel (how many rows of x and W it
// blocks over) computes an element never changes its value — that is what makes linear()
// batch invariant.
#pragma once

#include <cstdint>

#include "kernels/cpu/isa.h"
#include "kernels/dtype.h"

namespace lmserve::kernels::cpu {

// y[i * ldy + j] = dot(x[i * ldx ...], w[j * ldw ...]) over K (+ bias[j]) for the
// micro-kernel's fixed number of x rows (mr) and W rows (nr).
using MicroKernel = void (*)(const float* x, int64_t ldx, const void* w, int64_t ldw, int64_t K,
                             const float* bias, float* y, int64_t ldy);

struct SimdKernels {
  static constexpr int kMaxMr = 8;
  int max_mr = 4;                      // x rows the widest micro-kernel takes
  int nr_for_mr[kMaxMr] = {};          // W rows of the main kernel for mr = 1..max_mr x rows
  MicroKernel main[kMaxMr] = {};       // [mr - 1]: mr x rows, nr_for_mr[mr - 1] W rows
  MicroKernel single[kMaxMr] = {};     // [mr - 1]: mr x rows, one W row
  // Attention helpers, float32 only.
  float (*dot)(const float* a, const float* b, int64_t n) = nullptr;
  // out[r] = dot(q, rows + r·dim) · scale for r < count.
  void (*dot_rows)(const float* q, const float* rows, int64_t count, int64_t dim, float scale,
                   float* out) = nullptr;
  // x[i] = exp(x[i] - shift) (a polynomial exp, within a few ulp of expf); returns Σ x[i].
  float (*exp_shifted)(float* x, int64_t n, float shift) = nullptr;
  // y += Σ_r p[r] · rows[r·dim ...], adding row by row in increasing r.
  void (*axpy_rows)(float* y, const float* p, const float* rows, int64_t count,
                    int64_t dim) = nullptr;
  // out[i] = widen(src[i]) for a row of a weight matrix.
  void (*widen_row)(const void* src, float* out, int64_t n) = nullptr;
};

SimdKernels simd_kernels(Isa isa, DType weight_dtype);

// Per-ISA tables; only simd_kernels() calls these.
SimdKernels avx512_kernels(DType weight_dtype);
SimdKernels avx2_kernels(DType weight_dtype);
SimdKernels portable_kernels(DType weight_dtype);

}  // namespace lmserve::kernels::cpu
