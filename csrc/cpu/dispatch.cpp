#include "cpu/dispatch.h"

#include <c10/core/ScalarType.h>
#include <c10/util/Exception.h>

#include <stdexcept>

#include "cpu/simd/isa.h"

namespace lth_fast::cpu {
namespace {

simd::Isa checked_isa() {
  try {
    return simd::active_isa();
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK_VALUE(false, e.what());
  } catch (const std::runtime_error& e) {
    TORCH_CHECK(false, e.what());
  }
}

}  // namespace

simd::DType simd_dtype(c10::ScalarType t) {
  switch (t) {
    case c10::kFloat: return simd::DType::f32;
    case c10::kHalf: return simd::DType::f16;
    case c10::kBFloat16: return simd::DType::bf16;
    default: return simd::DType::f64;
  }
}

const simd::SelectKernels& select_kernels() { return *simd::select_kernels(checked_isa()); }
const simd::UpdateKernels& update_kernels() { return *simd::update_kernels(checked_isa()); }
const simd::StreamKernels& stream_kernels() { return *simd::stream_kernels(checked_isa()); }
const simd::NmKernels& nm_kernels() { return *simd::nm_kernels(checked_isa()); }

}  // namespace lth_fast::cpu
