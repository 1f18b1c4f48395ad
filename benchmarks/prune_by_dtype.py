"""prune_ by dtype and scope, against the floor measured in the same process.

    python benchmarks/prune_by_dtype.py [--sizes 10M,50M] [--reps 15]

For each size: the transformer workload of `lth-fast bench` in float32, bfloat16 and float16,
pruned 20% with scope="global" and scope="layer". Prints one markdown row per case: the median,
the minimum bytes per parameter (|w| read, mask read and written: 6 for float32, 4 for the
half types) and x floor (docs/measuring.md), with the floor's probes before and after."""
import argparse

import torch

from lth_fast.bench import workloads
from lth_fast.bench.measure import best_of, measure_floor, median, time_op
from lth_fast.ops import cpu_isa, prune_


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="10M,50M")
    ap.add_argument("--reps", type=int, default=15)
    args = ap.parse_args()
    print(f"cpu_isa {cpu_isa()}, {torch.get_num_threads()} threads\n")
    print("| size | dtype | scope | median ms | min B/param | × floor |")
    print("|---|---|---|---:|---:|---:|")
    for size in args.sizes.split(","):
        wl = workloads.make("transformer", size)
        floor = measure_floor(wl.params)
        rows = []
        for dtype in (torch.float32, torch.bfloat16, torch.float16):
            weights = [w.to(dtype) for w in wl.weights]
            nbytes = (weights[0].element_size() + 2) * wl.params
            for scope in ("global", "layer"):
                t = median(time_op(lambda: prune_(weights, wl.masks, 0.2, scope=scope),
                                   wl.restore_masks, reps=args.reps, warmup=1))
                rows.append((size, str(dtype).split(".")[1], scope, t, nbytes))
            del weights
        floor = best_of(floor, measure_floor(wl.params))
        for size_, dtype, scope, t, nbytes in rows:
            print(f"| {size_} | {dtype} | {scope} | {1e3 * t:.2f} | {nbytes // wl.params} | "
                  f"{t / floor.seconds(nbytes):.2f} |")
        probes = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in floor.probe_bps.items())
        print(f"| {size} floor | {floor.bps / 1e9:.1f} GB/s ({floor.method}; {probes}) | | | | |")


if __name__ == "__main__":
    main()
