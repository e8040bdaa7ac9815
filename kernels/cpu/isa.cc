// Runtime ISA detection with __builtin_cpu_supports (which also checks OS register support).
#include "kernels/cpu/isa.h"

#include <cstdlib>
#include <cstring>

namespace lmserve::kernels::cpu {

namespace {
Isa hardware_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return Isa::Avx2;
#endif
  return Isa::Portable;
}
}  // namespace

Isa detect_isa() {
  Isa isa = hardware_isa();
  if (const char* env = std::getenv("LMSERVE_CPU_ISA")) {
    Isa wanted = isa;
    if (std::strcmp(env, "portable") == 0) wanted = Isa::Portable;
    else if (std::strcmp(env, "avx2") == 0) wanted = Isa::Avx2;
    else if (std::strcmp(env, "avx512") == 0) wanted = Isa::Avx512;
    if (static_cast<int>(wanted) < static_cast<int>(isa)) isa = wanted;
  }
  return isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Portable: return "portable";
  }
  return "?";
}

}  // namespace lmserve::kernels::cpu
