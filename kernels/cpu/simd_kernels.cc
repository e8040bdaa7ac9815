// Picks the kernel table for an ISA.
#include "kernels/cpu/simd_kernels.h"

namespace lmserve::kernels::cpu {

SimdKernels simd_kernels(Isa isa, DType weight_dtype) {
  switch (isa) {
    case Isa::Avx512: return avx512_kernels(weight_dtype);
    case Isa::Avx2: return avx2_kernels(weight_dtype);
    case Isa::Portable: break;
  }
  return portable_kernels(weight_dtype);
}

}  // namespace lmserve::kernels::cpu
