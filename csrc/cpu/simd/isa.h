// Which CPU instruction set the kernels use: the best this CPU supports, or the one named by
// LTH_FAST_CPU_ISA=scalar|avx2|avx512 (read at every call, so tests can run every path).
#pragma once
#include <string>

#include "cpu/simd/select.h"

namespace lth_fast::simd {

bool cpu_supports(Isa isa);
const char* isa_name(Isa isa);
// Throws std::invalid_argument for an unknown name and std::runtime_error for an ISA this CPU lacks.
Isa active_isa();

}  // namespace lth_fast::simd
