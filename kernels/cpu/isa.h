// Which x86-64 vector instruction set the CPU kernels use; chosen once per backend.
#pragma once

#include <string>

namespace lmserve::kernels::cpu {

enum class Isa { Portable, Avx2, Avx512 };

// The best ISA this CPU (and OS) supports. LMSERVE_CPU_ISA=portable|avx2|avx512 in the
// environment lowers the choice (never raises it past what the CPU supports), which is
// how the tests exercise every code path on one machine.
Isa detect_isa();
const char* isa_name(Isa isa);

}  // namespace lmserve::kernels::cpu
