// AVX2 + FMA + F16C kernels (8 float lanes), compiled with a function attribute.
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#define LMSERVE_SIMD_TARGET __attribute__((target("avx2,fma,f16c")))
#define LMSERVE_SIMD_NS avx2

namespace lmserve::kernels::cpu::avx2 {
struct V {
  static constexpr int W = 8;
  // 16 ymm registers: 4 x rows × 3 W rows = 12 accumulators + 3 W vectors (x is a
  // memory operand of the FMA).
  static constexpr int kNr[4] = {8, 4, 3, 3};
  using Vec = __m256;
  LMSERVE_SIMD_TARGET static inline Vec zero() { return _mm256_setzero_ps(); }
  LMSERVE_SIMD_TARGET static inline Vec load(const float* p) { return _mm256_loadu_ps(p); }
  LMSERVE_SIMD_TARGET static inline Vec load_f16(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  LMSERVE_SIMD_TARGET static inline Vec load_bf16(const uint16_t* p) {
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  LMSERVE_SIMD_TARGET static inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  LMSERVE_SIMD_TARGET static inline float fma1(float a, float b, float c) { return std::fma(a, b, c); }
  LMSERVE_SIMD_TARGET static inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  LMSERVE_SIMD_TARGET static inline Vec sub(Vec a, Vec b) { return _mm256_sub_ps(a, b); }
  // Cephes expf: exp(x) = 2^n · exp(r), |r| <= ln2/2, degree-6 polynomial for exp(r).
  // The clamp keeps n within the normal exponent range, so 2^n is built from bits.
  LMSERVE_SIMD_TARGET static inline Vec exp(Vec x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    const Vec n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                  _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    Vec r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    Vec p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
  }
  LMSERVE_SIMD_TARGET static inline Vec set1(float a) { return _mm256_set1_ps(a); }
  LMSERVE_SIMD_TARGET static inline void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }
  LMSERVE_SIMD_TARGET static inline void reduce4(Vec a, Vec b, Vec c, Vec d, float* out) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  LMSERVE_SIMD_TARGET static inline float reduce(Vec v) {
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4);
  }
};
}  // namespace lmserve::kernels::cpu::avx2

#include "kernels/cpu/simd_kernels_impl.h"

namespace lmserve::kernels::cpu {
SimdKernels avx2_kernels(DType weight_dtype) { return avx2::table_for(weight_dtype); }
}  // namespace lmserve::kernels::cpu
