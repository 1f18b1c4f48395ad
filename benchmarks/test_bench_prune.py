"""pytest-benchmark suite for global magnitude pruning (docs/semantics.md, docs/measuring.md): lth_fast.prune_ against
its pure-PyTorch reference on model-shaped workloads. Each round restores the masks first
(untimed, via pedantic's setup), so every round prunes the same 20% of the same alive entries.
These are benchmarks: they record numbers and assert nothing about time."""
import lth_fast
import lth_fast.reference

AMOUNT = 0.2
BYTES_PER_PARAM = 6  # read fp32 |w| + mask, write mask


def test_prune_fast(benchmark, workload, record_floor):
    benchmark.group = f"prune {workload.name} {workload.size}"
    benchmark.pedantic(lth_fast.prune_, args=(workload.weights, workload.masks, AMOUNT),
                       setup=workload.restore_masks, rounds=15, warmup_rounds=1, iterations=1)
    record_floor(workload, BYTES_PER_PARAM)


def test_prune_reference(benchmark, workload, record_floor):
    benchmark.group = f"prune {workload.name} {workload.size}"
    benchmark.pedantic(lth_fast.reference.prune_,
                       args=(workload.weights, workload.masks, AMOUNT),
                       setup=workload.restore_masks, rounds=3, warmup_rounds=1, iterations=1)
    record_floor(workload, BYTES_PER_PARAM)
