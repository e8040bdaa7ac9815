// The body of one ISA's kernel table, written once over a vector-ops struct V.
//
// Included by simd_avx512.cc / simd_avx2.cc / simd_portable.cc after they define
// LMSERVE_SIMD_TARGET (a function attribute) and LMSERVE_SIMD_NS (a namespace name
// unique to that file, so the differently compiled templates never collide), and a
// struct V with: W (lanes), Vec, zero(), load(const float*), load_f16(const uint16_t*),
// load_bf16(const uint16_t*), fma(a, b, acc), fma1 (scalar), add, reduce(v), set1(f),
// store(float*, v), sub, exp (vector exp), reduce4(a, b, c, d, float[4]), and kNr[]: W rows of the main micro-kernel for
// 1, 2, ... x rows (its length is the widest x block, at most SimdKernels::kMaxMr).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <utility>

#include "kernels/cpu/simd_kernels.h"

namespace lmserve::kernels::cpu::LMSERVE_SIMD_NS {

struct LoadF32 {
  using T = float;
  LMSERVE_SIMD_TARGET static inline typename V::Vec load(const T* p) { return V::load(p); }
  LMSERVE_SIMD_TARGET static inline float scalar(const T* p) { return *p; }
};
struct LoadF16 {
  using T = uint16_t;
  LMSERVE_SIMD_TARGET static inline typename V::Vec load(const T* p) { return V::load_f16(p); }
  LMSERVE_SIMD_TARGET static inline float scalar(const T* p) { return f16_to_f32(*p); }
};
struct LoadBF16 {
  using T = uint16_t;
  LMSERVE_SIMD_TARGET static inline typename V::Vec load(const T* p) { return V::load_bf16(p); }
  LMSERVE_SIMD_TARGET static inline float scalar(const T* p) { return bf16_to_f32(*p); }
};

// The micro-kernel: each W vector is loaded once and used for all MR rows of x.
template <class L, int MR, int NR>
LMSERVE_SIMD_TARGET void micro(const float* x, int64_t ldx, const void* w_void, int64_t ldw,
                               int64_t K, const float* bias, float* y, int64_t ldy) {
  const auto* w = static_cast<const typename L::T*>(w_void);
  typename V::Vec acc[MR][NR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) acc[i][j] = V::zero();
  int64_t k = 0;
  for (; k + V::W <= K; k += V::W) {
    typename V::Vec wr[NR];
#pragma GCC unroll 16
    for (int j = 0; j < NR; ++j) wr[j] = L::load(w + j * ldw + k);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const typename V::Vec xv = V::load(x + i * ldx + k);
#pragma GCC unroll 16
      for (int j = 0; j < NR; ++j) acc[i][j] = V::fma(xv, wr[j], acc[i][j]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    for (int j = 0; j < NR; ++j) {
      float s = V::reduce(acc[i][j]);
      for (int64_t t = k; t < K; ++t) s = V::fma1(x[i * ldx + t], L::scalar(w + j * ldw + t), s);
      if (bias) s += bias[j];
      y[i * ldy + j] = s;
    }
  }
}

LMSERVE_SIMD_TARGET float dot(const float* a, const float* b, int64_t n) {
  typename V::Vec acc0 = V::zero(), acc1 = V::zero();
  int64_t k = 0;
  for (; k + 2 * V::W <= n; k += 2 * V::W) {
    acc0 = V::fma(V::load(a + k), V::load(b + k), acc0);
    acc1 = V::fma(V::load(a + k + V::W), V::load(b + k + V::W), acc1);
  }
  for (; k + V::W <= n; k += V::W) acc0 = V::fma(V::load(a + k), V::load(b + k), acc0);
  float s = V::reduce(V::add(acc0, acc1));
  for (; k < n; ++k) s = V::fma1(a[k], b[k], s);
  return s;
}

LMSERVE_SIMD_TARGET float exp_shifted(float* x, int64_t n, float shift) {
  const typename V::Vec sv = V::set1(shift);
  typename V::Vec acc = V::zero();
  int64_t k = 0;
  for (; k + V::W <= n; k += V::W) {
    const typename V::Vec e = V::exp(V::sub(V::load(x + k), sv));
    V::store(x + k, e);
    acc = V::add(acc, e);
  }
  float sum = V::reduce(acc);
  for (; k < n; ++k) sum += (x[k] = std::exp(x[k] - shift));
  return sum;
}

// Four rows at a time share one combined horizontal reduction; which rows form a group
// depends only on `count`, so a token's scores do not depend on its batch.
LMSERVE_SIMD_TARGET void dot_rows(const float* q, const float* rows, int64_t count, int64_t dim,
                                  float scale, float* out) {
  int64_t r = 0;
  const int64_t vec_dim = dim / V::W * V::W;
  for (; r + 4 <= count; r += 4) {
    const float* k0 = rows + r * dim;
    typename V::Vec a0 = V::zero(), a1 = V::zero(), a2 = V::zero(), a3 = V::zero();
    for (int64_t k = 0; k < vec_dim; k += V::W) {
      const typename V::Vec qv = V::load(q + k);
      a0 = V::fma(qv, V::load(k0 + k), a0);
      a1 = V::fma(qv, V::load(k0 + dim + k), a1);
      a2 = V::fma(qv, V::load(k0 + 2 * dim + k), a2);
      a3 = V::fma(qv, V::load(k0 + 3 * dim + k), a3);
    }
    float s[4];
    V::reduce4(a0, a1, a2, a3, s);
    for (int j = 0; j < 4; ++j) {
      for (int64_t k = vec_dim; k < dim; ++k) s[j] = V::fma1(q[k], k0[j * dim + k], s[j]);
      out[r + j] = s[j] * scale;
    }
  }
  for (; r < count; ++r) out[r] = dot(q, rows + r * dim, dim) * scale;
}

LMSERVE_SIMD_TARGET void axpy_rows(float* y, const float* p, const float* rows, int64_t count,
                                   int64_t dim) {
  int64_t k = 0;
  // Four output vectors stay in registers across the rows.
  for (; k + 4 * V::W <= dim; k += 4 * V::W) {
    typename V::Vec a0 = V::load(y + k), a1 = V::load(y + k + V::W),
                    a2 = V::load(y + k + 2 * V::W), a3 = V::load(y + k + 3 * V::W);
    for (int64_t r = 0; r < count; ++r) {
      const typename V::Vec pv = V::set1(p[r]);
      const float* x = rows + r * dim + k;
      a0 = V::fma(pv, V::load(x), a0);
      a1 = V::fma(pv, V::load(x + V::W), a1);
      a2 = V::fma(pv, V::load(x + 2 * V::W), a2);
      a3 = V::fma(pv, V::load(x + 3 * V::W), a3);
    }
    V::store(y + k, a0);
    V::store(y + k + V::W, a1);
    V::store(y + k + 2 * V::W, a2);
    V::store(y + k + 3 * V::W, a3);
  }
  for (; k + V::W <= dim; k += V::W) {
    typename V::Vec a0 = V::load(y + k);
    for (int64_t r = 0; r < count; ++r) a0 = V::fma(V::set1(p[r]), V::load(rows + r * dim + k), a0);
    V::store(y + k, a0);
  }
  for (; k < dim; ++k)
    for (int64_t r = 0; r < count; ++r) y[k] = V::fma1(p[r], rows[r * dim + k], y[k]);
}

template <class L>
LMSERVE_SIMD_TARGET void widen_row(const void* src_void, float* out, int64_t n) {
  const auto* src = static_cast<const typename L::T*>(src_void);
  int64_t k = 0;
  for (; k + V::W <= n; k += V::W) V::store(out + k, L::load(src + k));
  for (; k < n; ++k) out[k] = L::scalar(src + k);
}

template <class L, int... I>
void fill_mr(SimdKernels& t, std::integer_sequence<int, I...>) {
  static_assert(sizeof...(I) <= SimdKernels::kMaxMr);
  t.max_mr = sizeof...(I);
  ((t.nr_for_mr[I] = V::kNr[I], t.main[I] = &micro<L, I + 1, V::kNr[I]>,
    t.single[I] = &micro<L, I + 1, 1>), ...);
}

template <class L>
SimdKernels make_table() {
  SimdKernels t;
  fill_mr<L>(t, std::make_integer_sequence<int, sizeof(V::kNr) / sizeof(int)>{});
  t.dot = &dot;
  t.dot_rows = &dot_rows;
  t.exp_shifted = &exp_shifted;
  t.axpy_rows = &axpy_rows;
  t.widen_row = &widen_row<L>;
  return t;
}

inline SimdKernels table_for(DType dtype) {
  switch (dtype) {
    case DType::F16: return make_table<LoadF16>();
    case DType::BF16: return make_table<LoadBF16>();
    case DType::F32: break;
  }
  return make_table<LoadF32>();
}

}  // namespace lmserve::kernels::cpu::LMSERVE_SIMD_NS
