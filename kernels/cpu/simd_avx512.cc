// AVX-512 kernels (16 float lanes); compiled for AVX-512 with a function attribute so
// the rest of the binary still runs on any x86-64.
// GCC 12's AVX-512 headers build some vectors from _mm*_undefined_*() and warn about it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cmath>
#include <cstdint>

#define LMSERVE_SIMD_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c")))
#define LMSERVE_SIMD_NS avx512

namespace lmserve::kernels::cpu::avx512 {
struct V {
  static constexpr int W = 16;
  // Accumulators (x rows × W rows) plus the W vectors fit the 32 zmm registers. A single
  // x row takes 8 W rows to keep enough independent FMAs in flight. Blocks of up to 8 x
  // rows (8×3) measured slower than 4×4 on Zen 4, whose 512-bit ops are split in two.
  static constexpr int kNr[4] = {8, 4, 4, 4};
  using Vec = __m512;
  LMSERVE_SIMD_TARGET static inline Vec zero() { return _mm512_setzero_ps(); }
  LMSERVE_SIMD_TARGET static inline Vec load(const float* p) { return _mm512_loadu_ps(p); }
  LMSERVE_SIMD_TARGET static inline Vec load_f16(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  LMSERVE_SIMD_TARGET static inline Vec load_bf16(const uint16_t* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  LMSERVE_SIMD_TARGET static inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  LMSERVE_SIMD_TARGET static inline float fma1(float a, float b, float c) { return std::fma(a, b, c); }
  LMSERVE_SIMD_TARGET static inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  LMSERVE_SIMD_TARGET static inline Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  // Cephes expf: exp(x) = 2^n · exp(r), |r| <= ln2/2, degree-6 polynomial for exp(r).
  LMSERVE_SIMD_TARGET static inline Vec exp(Vec x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.3f)), _mm512_set1_ps(88.3f));
    const Vec n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                       _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    Vec r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    Vec p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
  }
  LMSERVE_SIMD_TARGET static inline Vec set1(float a) { return _mm512_set1_ps(a); }
  LMSERVE_SIMD_TARGET static inline void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  LMSERVE_SIMD_TARGET static inline __m256 fold(Vec v) {
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  LMSERVE_SIMD_TARGET static inline void reduce4(Vec a, Vec b, Vec c, Vec d, float* out) {
    const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
    _mm_storeu_ps(out, _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1)));
  }
  LMSERVE_SIMD_TARGET static inline float reduce(Vec v) {
    const __m256 lo = _mm512_castps512_ps256(v);
    const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 s8 = _mm256_add_ps(lo, hi);
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4);
  }
};
}  // namespace lmserve::kernels::cpu::avx512

#include "kernels/cpu/simd_kernels_impl.h"

namespace lmserve::kernels::cpu {
SimdKernels avx512_kernels(DType weight_dtype) { return avx512::table_for(weight_dtype); }
}  // namespace lmserve::kernels::cpu
