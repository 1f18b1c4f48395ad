#include "cpu/diagnostics.h"

#include <ATen/Parallel.h>

#include <atomic>

namespace lth_fast::cpu {

int64_t parallel_threads() {
  std::atomic<uint64_t> seen{0};
  at::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) {
    seen.fetch_or(uint64_t(1) << (at::get_thread_num() % 64));
  });
  return __builtin_popcountll(seen.load());
}

}  // namespace lth_fast::cpu
