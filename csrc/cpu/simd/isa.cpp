#include "cpu/simd/isa.h"

#include "cpu/simd/nm.h"
#include "cpu/simd/stream.h"
#include "cpu/simd/update.h"

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace lth_fast::simd {

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::scalar: return true;
    case Isa::avx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
             __builtin_cpu_supports("f16c") && __builtin_cpu_supports("popcnt");
    case Isa::avx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vbmi2") &&
             cpu_supports(Isa::avx2);
  }
  return false;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "?";
}

extern const SelectKernels kSelectScalar, kSelectAvx2, kSelectAvx512;

const SelectKernels* select_kernels(Isa isa) {
  if (!cpu_supports(isa)) return nullptr;
  switch (isa) {
    case Isa::scalar: return &kSelectScalar;
    case Isa::avx2: return &kSelectAvx2;
    case Isa::avx512: return &kSelectAvx512;
  }
  return nullptr;
}

extern const UpdateKernels kUpdateScalar, kUpdateAvx2, kUpdateAvx512;

const UpdateKernels* update_kernels(Isa isa) {
  if (!cpu_supports(isa)) return nullptr;
  switch (isa) {
    case Isa::scalar: return &kUpdateScalar;
    case Isa::avx2: return &kUpdateAvx2;
    case Isa::avx512: return &kUpdateAvx512;
  }
  return nullptr;
}

extern const StreamKernels kStreamScalar, kStreamAvx2, kStreamAvx512;

const StreamKernels* stream_kernels(Isa isa) {
  if (!cpu_supports(isa)) return nullptr;
  switch (isa) {
    case Isa::scalar: return &kStreamScalar;
    case Isa::avx2: return &kStreamAvx2;
    case Isa::avx512: return &kStreamAvx512;
  }
  return nullptr;
}

extern const NmKernels kNmScalar, kNmAvx2, kNmAvx512;

const NmKernels* nm_kernels(Isa isa) {
  if (!cpu_supports(isa)) return nullptr;
  switch (isa) {
    case Isa::scalar: return &kNmScalar;
    case Isa::avx2: return &kNmAvx2;
    case Isa::avx512: return &kNmAvx512;
  }
  return nullptr;
}

Isa active_isa() {
  const char* env = std::getenv("LTH_FAST_CPU_ISA");
  if (env == nullptr || *env == '\0' || std::strcmp(env, "auto") == 0) {
    if (cpu_supports(Isa::avx512)) return Isa::avx512;
    if (cpu_supports(Isa::avx2)) return Isa::avx2;
    return Isa::scalar;
  }
  for (Isa isa : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(env, isa_name(isa)) == 0) {
      if (!cpu_supports(isa))
        throw std::runtime_error(std::string("LTH_FAST_CPU_ISA=") + env +
                                 ": this CPU does not support it");
      return isa;
    }
  }
  throw std::invalid_argument(std::string("LTH_FAST_CPU_ISA=") + env +
                              ": expected one of scalar, avx2, avx512, auto");
}

}  // namespace lth_fast::simd
