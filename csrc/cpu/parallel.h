// The one parallel region the CPU ops share: every tensor of a list cut into chunks of at most
// kChunk elements, in list order (tensor index, then element index), the unit of parallel work
// and, for prune_, of tie order.
#pragma once
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

namespace lth_fast::cpu {

constexpr int64_t kChunk = int64_t(1) << 16;  // elements; an index in a chunk packs in 16 bits

struct Chunk {  // a piece of one tensor
  int64_t run, start, len;
};

// Chunks are kChunk long where the list is large. A small list (a LeNet is 266K weights, four
// full chunks) is cut shorter, down to kMinChunk, into about kChunksPerThread chunks a thread,
// so the threads' shares differ by one short chunk instead of a full one. Lengths are whole
// multiples of 64 elements: a mask chunk starts on its own cache line (no two threads write
// one line).
constexpr int64_t kMinChunk = int64_t(1) << 12;
constexpr int64_t kChunksPerThread = 8;
int64_t chunk_len(int64_t total);
std::vector<Chunk> chunks_of(const std::vector<int64_t>& sizes);

// The grain of at::parallel_for over `chunks`: all of them (one thread, no parallel region)
// when they hold fewer than kSerialBelow elements in all, else one chunk.
constexpr int64_t kSerialBelow = int64_t(1) << 15;
int64_t chunk_grain(const std::vector<Chunk>& chunks);

// fn(tensor, start, len) for every chunk of the tensors of `list` (elements [start, start +
// len) of list[tensor]), all in one parallel region.
template <typename F>
void for_each_chunk(at::TensorList list, F&& fn) {
  std::vector<int64_t> sizes;
  sizes.reserve(list.size());
  for (const at::Tensor& t : list) sizes.push_back(t.numel());
  const std::vector<Chunk> chunks = chunks_of(sizes);
  at::parallel_for(0, static_cast<int64_t>(chunks.size()), chunk_grain(chunks),
                   [&](int64_t b, int64_t e) {
                     for (int64_t c = b; c < e; ++c)
                       fn(chunks[c].run, chunks[c].start, chunks[c].len);
                   });
}

// The address of element `start` of list[tensor], as bytes: what the simd kernels take. The
// const form is for the lists an op only reads.
inline char* element_ptr(at::TensorList list, int64_t tensor, int64_t start) {
  const at::Tensor& t = list[tensor];
  return static_cast<char*>(t.data_ptr()) + start * t.element_size();
}
inline const char* const_element_ptr(at::TensorList list, int64_t tensor, int64_t start) {
  const at::Tensor& t = list[tensor];
  return static_cast<const char*>(t.const_data_ptr()) + start * t.element_size();
}

}  // namespace lth_fast::cpu
