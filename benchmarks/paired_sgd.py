"""masked_sgd_ against torch.optim.SGD(fused=True) without masks, timed in alternation.

Two memory-bound steps that differ by a few percent cannot be told apart by separate runs on a
shared machine: its bandwidth drifts by more than that between runs. Here the two steps
alternate in one process, and the median of the per-pair time ratios is reported.

    python benchmarks/paired_sgd.py [--params 50M] [--pairs 25] [--threads N] [--device cpu]
"""
import argparse
import statistics

import torch

import lth_fast
from lth_fast.bench import time_op, workloads


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--params", default="50M")
    ap.add_argument("--pairs", type=int, default=25)
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    shapes = workloads.SHAPES["transformer"](workloads.parse_size(args.params))
    params = [torch.randn(s, generator=gen).to(args.device) for s in shapes]
    grads = [torch.randn(s, generator=gen).to(args.device) for s in shapes]
    masks = [(torch.rand(s, generator=gen) > 0.5).to(args.device) for s in shapes]
    bufs = [torch.randn(s, generator=gen).to(args.device) for s in shapes]
    plain = [p.clone().requires_grad_() for p in params]
    for p, g in zip(plain, grads):
        p.grad = g.clone()
    hyper = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)
    fused = torch.optim.SGD(plain, fused=True, **hyper)
    fused.step()  # creates the momentum buffers: every timed step below is a steady one

    def timed(step) -> float:
        return time_op(step, reps=1, warmup=0, device=args.device)[0]

    ours, theirs = [], []
    for _ in range(args.pairs):
        ours.append(timed(lambda: lth_fast.masked_sgd_(params, grads, masks, bufs, **hyper)))
        theirs.append(timed(fused.step))
    ratios = [a / b for a, b in zip(ours, theirs)]
    n = sum(p.numel() for p in params)
    print(f"{n / 1e6:.1f}M parameters, {args.pairs} pairs, {torch.get_num_threads()} threads: "
          f"masked_sgd_ {1e3 * statistics.median(ours):.2f} ms, SGD(fused=True) "
          f"{1e3 * statistics.median(theirs):.2f} ms, median ratio "
          f"{statistics.median(ratios):.3f} (bytes: 21/20 = 1.05)")


if __name__ == "__main__":
    main()
