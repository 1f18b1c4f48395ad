// Elementwise work over lists of tensors in as few launches as possible: the tensors' pointers
// and a block -> (tensor, chunk) table travel as kernel arguments (no host buffer, no copy, no
// synchronisation), so the ops using it can be captured in a CUDA graph. A launch covers up
// to kMaxTensors tensors and kMaxBlocks chunks; longer lists take a few launches.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace lth_fast::cuda {

constexpr int kApplyThreads = 512;
constexpr int64_t kApplyChunk = int64_t(1) << 16;  // elements per block
constexpr int kMaxTensors = 24;
constexpr int kMaxBlocks = 320;

template <int Lists>
struct ListArgs {  // ~2.7 KB for 4 lists: under the 4 KB kernel-argument limit of every arch
  void* ptr[Lists][kMaxTensors];
  int64_t numel[kMaxTensors];
  uint8_t tensor_of[kMaxBlocks];
  int32_t chunk_of[kMaxBlocks];
};

// Calls launch(args, blocks) for every batch; lists[l][i] is tensor i of list l, all lists
// the same length and the tensors of one index the same size. Empty tensors are skipped.
template <int Lists, class Launch>
void for_each_batch(const at::TensorList (&lists)[Lists], Launch&& launch) {
  ListArgs<Lists> args;
  int tensors = 0, blocks = 0;
  const size_t n = lists[0].size();
  for (size_t i = 0; i < n; ++i) {
    const int64_t numel = lists[0][i].numel();
    if (numel == 0) continue;
    for (int l = 0; l < Lists; ++l) args.ptr[l][tensors] = lists[l][i].data_ptr();
    args.numel[tensors] = numel;
    const int64_t chunks = (numel + kApplyChunk - 1) / kApplyChunk;
    for (int64_t c = 0; c < chunks; ++c) {
      args.tensor_of[blocks] = static_cast<uint8_t>(tensors);
      args.chunk_of[blocks] = static_cast<int32_t>(c);
      if (++blocks == kMaxBlocks) {
        launch(args, blocks);
        blocks = 0;
        if (c + 1 < chunks) {  // the same tensor goes on in the next batch, as entry 0
          for (int l = 0; l < Lists; ++l) args.ptr[l][0] = args.ptr[l][tensors];
          args.numel[0] = numel;
          tensors = 0;
        } else {
          tensors = -1;  // start afresh after this tensor
        }
      }
    }
    if (++tensors == kMaxTensors) {
      if (blocks > 0) launch(args, blocks);
      tensors = blocks = 0;
    }
  }
  if (blocks > 0) launch(args, blocks);
}

// True when p is aligned to `bytes`.
__device__ __forceinline__ bool aligned(const void* p, int bytes) {
  return (reinterpret_cast<uintptr_t>(p) & (bytes - 1)) == 0;
}

}  // namespace lth_fast::cuda
