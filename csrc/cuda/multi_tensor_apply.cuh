// Elementwise work over lists of tensors in as few launches as possible: the tensors' pointers
// and a block -> (tensor, chunk) table travel as kernel arguments (no host buffer, no copy, no
// synchronisation), so the ops using it can be captured in a CUDA graph. A launch covers up
// to kMaxTensors tensors and kMaxBlocks chunks; longer lists take a few launches.
//
// One kernel serves every elementwise op (apply_elementwise below); an op supplies only a
// functor that updates one element:
//   using T = ...;                   the storage type of its float lists
//   static constexpr int kLists;     how many lists it takes
//   static constexpr int kMask;      which of them holds the bool masks
//   static constexpr unsigned kReads, kWrites;  bit l set: list l is loaded / stored
//   __device__ void operator()(E0& x0, E1& x1, ...) const;  E_l = uint8_t for the masks, else T
// A list neither read nor written is never touched, not even to check its alignment.
#pragma once
#include <ATen/core/Tensor.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>
#include <utility>

#include "cuda/elementwise.cuh"

namespace lth_fast::cuda {

constexpr int kApplyThreads = 512;
constexpr int64_t kApplyChunk = int64_t(1) << 16;  // elements per block
constexpr int kMaxTensors = 24;
constexpr int kMaxBlocks = 320;

template <int Lists>
struct ListArgs {  // ~2.9 KB for 6 lists: under the 4 KB kernel-argument limit of every arch
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

namespace detail {

// N consecutive elements of every list of Op, in registers; pack<L>() is list L's.
template <class Op, int N>
struct Lanes {
  Pack<typename Op::T, N> v[Op::kLists];  // the masks' entry is unused
  Pack<uint8_t, N> mask;
  template <int L>
  __device__ __forceinline__ auto& pack() {
    if constexpr (L == Op::kMask) return mask;
    else return v[L];
  }
};

// List L's pack i in and out of registers (base[L]: the chunk's first element of list L),
// compiled in only for the lists Op reads / writes.
template <class Op, int N, int L>
__device__ __forceinline__ void load(Lanes<Op, N>& x, char* const* base, int64_t i) {
  if constexpr (((Op::kReads >> L) & 1u) != 0) {
    auto& pk = x.template pack<L>();
    pk = reinterpret_cast<const std::decay_t<decltype(pk)>*>(base[L])[i];
  }
}
template <class Op, int N, int L>
__device__ __forceinline__ void store(Lanes<Op, N>& x, char* const* base, int64_t i) {
  if constexpr (((Op::kWrites >> L) & 1u) != 0) {
    auto& pk = x.template pack<L>();
    reinterpret_cast<std::decay_t<decltype(pk)>*>(base[L])[i] = pk;
  }
}

// Op on the N elements of pack i of every list.
template <class Op, int N, int... L>
__device__ __forceinline__ void update_pack(const Op& op, char* const* base, int64_t i,
                                            std::integer_sequence<int, L...>) {
  Lanes<Op, N> x;
  (load<Op, N, L>(x, base, i), ...);
#pragma unroll
  for (int j = 0; j < N; ++j) op(x.template pack<L>().v[j]...);
  (store<Op, N, L>(x, base, i), ...);
}

}  // namespace detail

// Block b updates chunk chunk_of[b] of tensor tensor_of[b]: in 16-byte loads and stores when
// every list it touches allows (16-byte aligned; the masks aligned to one Vec16's element
// count), the rest of the chunk (all of it otherwise) one element at a time.
template <class Op>
__global__ void __launch_bounds__(kApplyThreads)
elementwise_kernel(ListArgs<Op::kLists> a, Op op) {
  using T = typename Op::T;
  constexpr int V = Vec16<T>::kSize;
  using Lists = std::make_integer_sequence<int, Op::kLists>;
  const int t = a.tensor_of[blockIdx.x];
  const int64_t start = int64_t(a.chunk_of[blockIdx.x]) * kApplyChunk;
  const int64_t n = min(kApplyChunk, a.numel[t] - start);
  char* base[Op::kLists];
  bool vec = true;
#pragma unroll
  for (int l = 0; l < Op::kLists; ++l) {
    const bool mask = l == Op::kMask;
    base[l] = static_cast<char*>(a.ptr[l][t]) + start * (mask ? 1 : sizeof(T));
    if (((Op::kReads | Op::kWrites) >> l) & 1u) vec = vec && aligned(base[l], mask ? V : 16);
  }
  int64_t done = 0;
  if (vec) {
    const int64_t nv = n / V;
    for (int64_t i = threadIdx.x; i < nv; i += blockDim.x)
      detail::update_pack<Op, V>(op, base, i, Lists{});
    done = nv * V;
  }
  for (int64_t i = done + threadIdx.x; i < n; i += blockDim.x)
    detail::update_pack<Op, 1>(op, base, i, Lists{});
}

// Runs op over every element of the lists (lists[l] is the op's list l; all of one length, the
// tensors of one index of one size) on the current stream.
template <class Op>
void apply_elementwise(const at::TensorList (&lists)[Op::kLists], const Op& op) {
  static_assert(sizeof(ListArgs<Op::kLists>) + sizeof(Op) <= 4096,
                "kernel arguments above the 4 KB limit: lower kMaxTensors or kMaxBlocks");
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for_each_batch<Op::kLists>(lists, [&](const ListArgs<Op::kLists>& args, int blocks) {
    elementwise_kernel<Op><<<blocks, kApplyThreads, 0, stream>>>(args, op);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

}  // namespace lth_fast::cuda
