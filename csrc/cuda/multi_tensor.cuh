// A device-side chunk table over a list of tensors, and the one-upload argument buffer that
// carries it. Kernels never see the list itself: a block takes chunks (tensor index, start,
// length: 64-bit offsets, so totals above 2^31 elements work) from the table in a grid-stride
// loop, so one launch covers every tensor, large or tiny, and chunk order is list order
// (tensor index, then element index), which the tie order of prune_ relies on.
#pragma once
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAException.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lth_fast::cuda {

// Elements per chunk: large enough that a 256-thread block streams 256 of them per thread,
// small enough that per-chunk counts fit 32 bits and a table for 2^34 elements stays ~6 MB.
constexpr int64_t kChunkLen = int64_t(1) << 16;

struct Chunk {
  int64_t start;   // first element, within the tensor
  int64_t len;     // 1..kChunkLen elements
  int32_t tensor;  // index in the caller's list
  int32_t group;   // which ranking it belongs to (0, or the tensor index for per-tensor work)
};

// Splits every tensor (zero-size ones give no chunk) in list order. With per_tensor, chunk
// groups are tensor indices; else all are group 0. first[g] is the index of group g's first
// chunk (its chunk count so far when the group has none), so the chunks of a group are
// chunks[first[g] .. first[g + 1]).
inline void make_chunk_table(at::TensorList tensors, bool per_tensor, std::vector<Chunk>& chunks,
                             std::vector<int64_t>& first) {
  chunks.clear();
  first.assign(per_tensor ? tensors.size() : 1, 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (per_tensor) first[i] = static_cast<int64_t>(chunks.size());
    const int64_t n = tensors[i].numel();
    for (int64_t s = 0; s < n; s += kChunkLen)
      chunks.push_back({s, std::min(kChunkLen, n - s), static_cast<int32_t>(i),
                        per_tensor ? static_cast<int32_t>(i) : 0});
  }
}

// One device allocation per op call holding every kernel argument array: an `upload` part
// filled on the host in one pinned buffer and sent with a single cudaMemcpyAsync on the
// stream, then a `zeroed` part cleared with cudaMemsetAsync. Reserve everything first, then
// allocate(), fill host<T>(), and send(). The pinned buffer must outlive the copy: the owner
// keeps this object alive until it has synchronised the stream (prune_ does, to read its
// error flags); pinned memory also lets the final small device-to-host read go through it.
class ArgBuffer {
 public:
  template <class T>
  size_t upload(size_t n) { return reserve(upload_bytes_, n * sizeof(T)); }
  template <class T>
  size_t zeroed(size_t n) { return reserve(zeroed_bytes_, n * sizeof(T)); }

  void allocate(const c10::Device& device) {
    zeroed_base_ = align(upload_bytes_);
    host_ = at::empty({static_cast<int64_t>(std::max<size_t>(upload_bytes_, 1))},
                      at::TensorOptions().dtype(at::kByte).pinned_memory(true));
    dev_ = at::empty({static_cast<int64_t>(std::max<size_t>(zeroed_base_ + zeroed_bytes_, 1))},
                     at::TensorOptions().dtype(at::kByte).device(device));
  }
  template <class T>
  T* host(size_t offset) { return reinterpret_cast<T*>(host_.data_ptr<uint8_t>() + offset); }
  template <class T>
  T* dev_upload(size_t offset) { return reinterpret_cast<T*>(dev_.data_ptr<uint8_t>() + offset); }
  template <class T>
  T* dev_zeroed(size_t offset) {
    return reinterpret_cast<T*>(dev_.data_ptr<uint8_t>() + zeroed_base_ + offset);
  }
  void send(cudaStream_t stream) {
    if (upload_bytes_ > 0)
      C10_CUDA_CHECK(cudaMemcpyAsync(dev_.data_ptr<uint8_t>(), host_.data_ptr<uint8_t>(),
                                     upload_bytes_, cudaMemcpyHostToDevice, stream));
    if (zeroed_bytes_ > 0)
      C10_CUDA_CHECK(cudaMemsetAsync(dev_.data_ptr<uint8_t>() + zeroed_base_, 0, zeroed_bytes_,
                                     stream));
  }

 private:
  static size_t align(size_t b) { return (b + 255) & ~size_t(255); }
  static size_t reserve(size_t& bytes, size_t n) {
    const size_t offset = align(bytes);
    bytes = offset + n;
    return offset;
  }
  size_t upload_bytes_ = 0, zeroed_bytes_ = 0, zeroed_base_ = 0;
  at::Tensor host_, dev_;
};

}  // namespace lth_fast::cuda
