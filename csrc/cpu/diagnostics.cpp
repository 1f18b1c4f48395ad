// Checks on the build itself, for the tests.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <atomic>

namespace lth_fast::cpu {
namespace {

// How many distinct threads an at::parallel_for of this library runs on: 1 means the library
// was built without the parallel backend torch uses (e.g. OpenMP flags missing).
int64_t parallel_threads() {
  std::atomic<uint64_t> seen{0};
  at::parallel_for(0, 1 << 16, 1, [&](int64_t, int64_t) {
    seen.fetch_or(uint64_t(1) << (at::get_thread_num() % 64));
  });
  return __builtin_popcountll(seen.load());
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(lth_fast, m) {
  // Distinct threads one at::parallel_for of this library ran on.
  m.def("parallel_threads() -> int", &parallel_threads);
}

}  // namespace lth_fast::cpu
