#include "cpu/parallel.h"

#include <algorithm>

namespace lth_fast::cpu {

int64_t chunk_len(int64_t total) {
  const int64_t pieces = kChunksPerThread * at::get_num_threads();
  const int64_t len = ((total + pieces - 1) / pieces + 63) / 64 * 64;
  return std::clamp(len, kMinChunk, kChunk);
}

std::vector<Chunk> chunks_of(const std::vector<int64_t>& sizes) {
  int64_t total = 0;
  for (const int64_t n : sizes) total += n;
  const int64_t len = chunk_len(total);
  std::vector<Chunk> chunks;
  for (int64_t r = 0; r < static_cast<int64_t>(sizes.size()); ++r)
    for (int64_t s = 0; s < sizes[r]; s += len)
      chunks.push_back({r, s, std::min(len, sizes[r] - s)});
  return chunks;
}

int64_t chunk_grain(const std::vector<Chunk>& chunks) {
  int64_t total = 0;
  for (const Chunk& c : chunks) total += c.len;
  return total < kSerialBelow ? std::max<int64_t>(1, static_cast<int64_t>(chunks.size())) : 1;
}

}  // namespace lth_fast::cpu
