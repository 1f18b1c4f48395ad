#include "cpu/dispatch.h"

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

std::vector<Chunk> chunks_of(const std::vector<int64_t>& sizes) {
  std::vector<Chunk> chunks;
  for (int64_t r = 0; r < static_cast<int64_t>(sizes.size()); ++r)
    for (int64_t s = 0; s < sizes[r]; s += kChunk)
      chunks.push_back({r, s, std::min(kChunk, sizes[r] - s)});
  return chunks;
}

int64_t chunk_grain(const std::vector<Chunk>& chunks) {
  int64_t total = 0;
  for (const Chunk& c : chunks) total += c.len;
  return total < kSerialBelow ? std::max<int64_t>(1, static_cast<int64_t>(chunks.size())) : 1;
}

simd::DType simd_dtype(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return simd::DType::f32;
    case at::kHalf: return simd::DType::f16;
    case at::kBFloat16: return simd::DType::bf16;
    default: return simd::DType::f64;
  }
}

const simd::SelectKernels& select_kernels() { return *simd::select_kernels(checked_isa()); }
const simd::UpdateKernels& update_kernels() { return *simd::update_kernels(checked_isa()); }

}  // namespace lth_fast::cpu
