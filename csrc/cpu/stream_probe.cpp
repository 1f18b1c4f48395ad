// The bench's bandwidth probe (docs/measuring.md): one STREAM pass over float32 CPU buffers,
// on at::parallel_for's threads, each thread one contiguous slice (so each streams), with the
// active ISA's kernels (cpu/simd/stream.h). A measuring tool, not an lth_fast op: it has its
// own library, lth_fast_bench, and only a CPU kernel.
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <c10/util/Exception.h>
#include <torch/library.h>

#include <atomic>
#include <string>

#include "cpu/dispatch.h"

namespace lth_fast::cpu {
namespace {

void check_buffer(const at::Tensor& t, const char* name, int64_t n) {
  TORCH_CHECK_VALUE(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous(),
                    "stream: ", name, " must be a contiguous float32 CPU tensor");
  TORCH_CHECK_VALUE(t.numel() == n, "stream: ", name, " has ", t.numel(), " elements, a has ", n);
}

// kind: "read" (of a), "write" (a = value), "copy" (a = b), "triad" (a = b + value * c),
// "update" (c = c * value + b, then a = a + c: two buffers rewritten in place).
// Returns the read's checksum, the sum of a's 32-bit words mod 2^32 (0 for the others).
int64_t stream_cpu(const at::Tensor& a, const at::Tensor& b, const at::Tensor& c,
                   c10::string_view kind, double value) {
  const int64_t n = a.numel();
  check_buffer(a, "a", n);
  const std::string k(kind);
  TORCH_CHECK_VALUE(k == "read" || k == "write" || k == "copy" || k == "triad" || k == "update",
                    "stream: kind must be read, write, copy, triad or update, got '", k, "'");
  const bool three = k == "triad" || k == "update";
  if (k == "copy" || three) check_buffer(b, "b", n);
  if (three) check_buffer(c, "c", n);
  const simd::StreamKernels& kern = stream_kernels();
  float* pa = a.data_ptr<float>();
  const float* pb = k == "read" || k == "write" ? nullptr : b.const_data_ptr<float>();
  float* pc = three ? c.data_ptr<float>() : nullptr;
  const float s = static_cast<float>(value);
  const int64_t threads = at::get_num_threads();
  const int64_t slice = ((n + threads - 1) / threads + 63) / 64 * 64;  // whole cache lines
  std::atomic<uint64_t> sum{0};
  at::parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t start = t * slice, len = std::min(slice, n - start);
      if (len <= 0) continue;
      if (k == "read") sum += kern.read(pa + start, len);
      else if (k == "write") kern.write(pa + start, len, s);
      else if (k == "copy") kern.copy(pa + start, pb + start, len);
      else if (k == "triad") kern.triad(pa + start, pb + start, pc + start, s, len);
      else kern.update(pa + start, pb + start, pc + start, s, len);
    }
  });
  return static_cast<int64_t>(sum.load() & 0xFFFFFFFFull);  // the words' sum mod 2^32
}

}  // namespace

TORCH_LIBRARY(lth_fast_bench, m) {
  // One STREAM pass (kind read, write, copy, triad or update) over float32 buffers; see above.
  m.def("stream(Tensor(a!) a, Tensor b, Tensor(c!) c, str kind, float value) -> int");
}

TORCH_LIBRARY_IMPL(lth_fast_bench, CPU, m) { m.impl("stream", &stream_cpu); }

}  // namespace lth_fast::cpu
