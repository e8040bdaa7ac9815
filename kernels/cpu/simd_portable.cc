// Portable kernels for CPUs without AVX2: an 8-lane array the compiler may vectorize
// with whatever the baseline ISA offers (SSE2 on x86-64).
#include <cmath>
#include <cstdint>

#include "kernels/dtype.h"

#define LMSERVE_SIMD_TARGET
#define LMSERVE_SIMD_NS portable

namespace lmserve::kernels::cpu::portable {
struct V {
  static constexpr int W = 8;
  static constexpr int kNr[4] = {4, 4, 4, 4};
  struct Vec {
    float v[8];
  };
  static inline Vec zero() { return Vec{}; }
  static inline Vec load(const float* p) {
    Vec r;
    for (int i = 0; i < 8; ++i) r.v[i] = p[i];
    return r;
  }
  static inline Vec load_f16(const uint16_t* p) {
    Vec r;
    for (int i = 0; i < 8; ++i) r.v[i] = f16_to_f32(p[i]);
    return r;
  }
  static inline Vec load_bf16(const uint16_t* p) {
    Vec r;
    for (int i = 0; i < 8; ++i) r.v[i] = bf16_to_f32(p[i]);
    return r;
  }
  // Without hardware FMA a fused multiply-add is a slow library call; a separate
  // multiply and add is just as deterministic.
  static inline Vec fma(Vec a, Vec b, Vec c) {
    for (int i = 0; i < 8; ++i) c.v[i] += a.v[i] * b.v[i];
    return c;
  }
  static inline float fma1(float a, float b, float c) { return c + a * b; }
  static inline Vec add(Vec a, Vec b) {
    for (int i = 0; i < 8; ++i) a.v[i] += b.v[i];
    return a;
  }
  static inline Vec sub(Vec a, Vec b) {
    for (int i = 0; i < 8; ++i) a.v[i] -= b.v[i];
    return a;
  }
  static inline Vec exp(Vec a) {
    for (int i = 0; i < 8; ++i) a.v[i] = std::exp(a.v[i]);
    return a;
  }
  static inline Vec set1(float a) {
    Vec r;
    for (int i = 0; i < 8; ++i) r.v[i] = a;
    return r;
  }
  static inline void store(float* p, Vec v) {
    for (int i = 0; i < 8; ++i) p[i] = v.v[i];
  }
  static inline void reduce4(Vec a, Vec b, Vec c, Vec d, float* out) {
    out[0] = reduce(a);
    out[1] = reduce(b);
    out[2] = reduce(c);
    out[3] = reduce(d);
  }
  static inline float reduce(Vec v) {
    return ((v.v[0] + v.v[4]) + (v.v[2] + v.v[6])) + ((v.v[1] + v.v[5]) + (v.v[3] + v.v[7]));
  }
};
}  // namespace lmserve::kernels::cpu::portable

#include "kernels/cpu/simd_kernels_impl.h"

namespace lmserve::kernels::cpu {
SimdKernels portable_kernels(DType weight_dtype) { return portable::table_for(weight_dtype); }
}  // namespace lmserve::kernels::cpu
