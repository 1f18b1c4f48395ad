// What every CPU op file shares: the kernels of the active ISA, dtype mapping, and one parallel
// region over all tensors of a list in pieces of at most kChunk elements.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <vector>

#include "cpu/simd/select.h"
#include "cpu/simd/update.h"

namespace lth_fast::cpu {

constexpr int64_t kChunk = int64_t(1) << 16;  // elements; an index in a chunk packs in 16 bits

struct Chunk {  // a piece of one tensor: the unit of parallel work and of tie order
  int64_t run, start, len;
};

std::vector<Chunk> chunks_of(const std::vector<int64_t>& sizes);
simd::DType simd_dtype(at::ScalarType t);
// The kernels of the active ISA (LTH_FAST_CPU_ISA); a bad setting raises a clear error.
const simd::SelectKernels& select_kernels();
const simd::UpdateKernels& update_kernels();

// The grain of at::parallel_for over `chunks`: all of them (one thread, no parallel region)
// when they hold fewer than kSerialBelow elements in all, else one chunk.
constexpr int64_t kSerialBelow = int64_t(1) << 15;
int64_t chunk_grain(const std::vector<Chunk>& chunks);

// fn(chunk) for every chunk, all in one parallel region.
template <typename F>
void parallel_chunks(const std::vector<Chunk>& chunks, F&& fn) {
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), chunk_grain(chunks),
                   [&](int64_t b, int64_t e) {
                     for (int64_t c = b; c < e; ++c) fn(chunks[c]);
                   });
}

}  // namespace lth_fast::cpu
