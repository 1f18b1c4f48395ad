// Which simd kernels the CPU ops run: those of the active ISA (cpu/simd/isa.h), and the simd
// dtype of a tensor's scalar type.
#pragma once
#include <c10/core/ScalarType.h>

#include "cpu/simd/nm.h"
#include "cpu/simd/select.h"
#include "cpu/simd/stream.h"
#include "cpu/simd/update.h"

namespace lth_fast::cpu {

simd::DType simd_dtype(c10::ScalarType t);
// The kernels of the active ISA (LTH_FAST_CPU_ISA); a bad setting raises a clear error.
const simd::SelectKernels& select_kernels();
const simd::UpdateKernels& update_kernels();
const simd::StreamKernels& stream_kernels();
const simd::NmKernels& nm_kernels();

}  // namespace lth_fast::cpu
