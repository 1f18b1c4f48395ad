// Every op of the library lth_fast, declared once, here. Device files register their kernels
// with TORCH_LIBRARY_IMPL; lth_fast/ops/library.py registers their fake kernels and the
// pure-PyTorch reference as their default kernel, and lth_fast/ops/api.py is their front door.
// Semantics: docs/semantics.md. Two internal libraries declare their ops beside their kernels:
// lth_fast_shard (cpu/select/shard_ops.cpp: the one-pass engine's passes, which each rank of
// a sharded prune_ runs) and lth_fast_bench (cpu/stream_probe.cpp: the bench's bandwidth probe).
#include <torch/library.h>

#include <string>

#include "cpu/diagnostics.h"
#include "cpu/simd/isa.h"

#ifdef LTH_FAST_PYTHON_MODULE
#include <Python.h>
// `import lth_fast._C` loads this library, and with it the registrations below.
extern "C" PyObject* PyInit__C(void) {
  static struct PyModuleDef def = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, nullptr};
  return PyModule_Create(&def);
}
#endif

namespace {
std::string cpu_isa() { return lth_fast::simd::isa_name(lth_fast::simd::active_isa()); }
}  // namespace

TORCH_LIBRARY(lth_fast, m) {
  // Magnitude selection: among alive entries (mask true) prune the k of smallest |weight|,
  // ties to the earlier (list index, element index). Exactly one of `fractions` (k =
  // round(f * alive)) and `counts` (k itself) is non-empty: one value for the global ranking,
  // or with `layerwise` one value or one per tensor. Returns per ranking (1 global, n layerwise)
  // int64 [G, 2] = (alive before, pruned) and float64 [G] = largest pruned |w| (NaN if none).
  m.def("prune_(Tensor[] weights, Tensor(a!)[] masks, float[] fractions, int[] counts, "
        "bool layerwise) -> (Tensor, Tensor)");
  // One step of torch.optim.SGD (weight decay, momentum with dampening, first-step buffer =
  // gradient when init_buffers, nesterov, maximize) on alive entries; pruned entries of params
  // and momentum_buffers end exactly 0. momentum_buffers is empty when momentum is 0.
  m.def("masked_sgd_(Tensor(a!)[] params, Tensor[] grads, Tensor[] masks, "
        "Tensor(b!)[] momentum_buffers, float lr, float momentum, float dampening, "
        "float weight_decay, bool nesterov, bool maximize, bool init_buffers) -> ()");
  // One step of torch.optim.Adam (weight decay as Adam's L2 term in the gradient, or AdamW's
  // decoupled decay of the weight; amsgrad; maximize) on alive entries; pruned entries of
  // params, exp_avgs, exp_avg_sqs and max_exp_avg_sqs end exactly 0. `step` is the step count
  // after this step's increment (>= 1), the same for every tensor. max_exp_avg_sqs is empty
  // unless amsgrad.
  m.def("masked_adam_(Tensor(a!)[] params, Tensor[] grads, Tensor[] masks, "
        "Tensor(b!)[] exp_avgs, Tensor(c!)[] exp_avg_sqs, Tensor(d!)[] max_exp_avg_sqs, "
        "float lr, float beta1, float beta2, float eps, float weight_decay, float step, "
        "bool amsgrad, bool maximize, bool decoupled_weight_decay) -> ()");
  // params = snapshot where masks else 0.
  m.def("rewind_(Tensor(a!)[] params, Tensor[] snapshot, Tensor[] masks) -> ()");
  // N:M selection: in every group of m consecutive entries along the input dimension (dim 1 of
  // [O, C, *K], the only dim of a 1-D tensor), an alive entry is kept iff fewer than n alive
  // entries of its group have a larger |weight|, or an equal one at an earlier position.
  // Returns int64 [len(weights), 2] = (alive before, pruned) per tensor.
  m.def("prune_nm_(Tensor[] weights, Tensor(a!)[] masks, int n, int m) -> Tensor");
  // Per pair of masks (masks_a[i], masks_b[i]), how many entries differ: int64 [n]. Masks are
  // torch.bool (numels empty) or bit-packed torch.uint8 as pack_bits writes them (numels[i] is
  // the element count of mask i; padding bits are not entries).
  m.def("mask_distance(Tensor[] masks_a, Tensor[] masks_b, int[] numels) -> Tensor");
  // The CPU instruction set the kernels use now: scalar, avx2 or avx512.
  m.def("cpu_isa() -> str", &cpu_isa);
  // Distinct threads one at::parallel_for of this library ran on (a check on the build).
  m.def("parallel_threads() -> int", &lth_fast::cpu::parallel_threads);
}
