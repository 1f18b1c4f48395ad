"""What a ticket costs at inference: multiply-adds counted, latency measured.

count_macs counts the multiply-adds of the weights of every Linear and Conv layer in one
forward pass of an example input (forward hooks read the output shapes): a Linear layer costs
its weights once per output position (once per example for an image model, once per token for
a GPT), a convolution its weights once per output pixel. "pruned" counts only the kept weights
(the masks), "dense" all of them. Biases, norms, activations, pooling and attention's own
products (QK^T, AV) are not counted: they are not weights a mask removes. A GPT's head (tied to
the embedding, never pruned) counts densely; the embedding lookup costs no multiply-add.

measure_latency times a model on the CPU. A pruned model loaded by load_exported holds zeros in
dense tensors and runs the same dense kernels as the dense model: fewer multiply-adds on paper,
the same time in practice. No speed-up is claimed unless measured with a sparse kernel."""
from __future__ import annotations

import math
import statistics
import time
from typing import Dict, Mapping, Optional

import torch
from torch import Tensor, nn

LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def count_macs(model: nn.Module, example: Tensor,
               masks: Optional[Mapping[str, Tensor]] = None) -> Dict[str, object]:
    """{"dense": int, "pruned": int, "layers": {module: {"dense", "pruned"}}}: the weight
    multiply-adds of one forward of `example` (pass one example, batch 1, for per-example
    numbers; for a GPT one token, shape [1, 1], for per-token numbers). masks: {parameter name:
    bool mask} (a MaskSet's .masks); a weight without one counts densely."""
    masks = dict(masks or {})
    first = {}
    for name, p in model.named_parameters():  # a tied weight under its first name
        first.setdefault(id(p), name)
    counts: Dict[str, Dict[str, int]] = {}

    def hook(name):
        def record(module, inputs, output):
            w = module.weight
            mask = masks.get(first.get(id(w), f"{name}.weight"))
            kept = w.numel() if mask is None else int(mask.sum())
            if isinstance(module, nn.Linear):
                positions = output.numel() // output.shape[-1]
            else:  # batch x output pixels
                positions = output.shape[0] * math.prod(output.shape[2:])
            c = counts.setdefault(name, {"dense": 0, "pruned": 0})
            c["dense"] += w.numel() * positions
            c["pruned"] += kept * positions
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules()
               if isinstance(m, LAYERS)]
    try:
        with torch.inference_mode():
            model(example)
    finally:
        for h in handles:
            h.remove()
    return {"dense": sum(c["dense"] for c in counts.values()),
            "pruned": sum(c["pruned"] for c in counts.values()), "layers": counts}


def measure_latency(models: Mapping[str, nn.Module], example: Tensor, *, repeats: int = 100,
                    warmup: int = 10, threads: int = 1) -> Dict[str, dict]:
    """{name: {"median_ms", "min_ms", "repeats"}} of one forward of `example` per model, under
    torch.inference_mode with `threads` intra-op threads (restored afterwards). The models are
    timed in alternation, one call each per round, so a machine's drift hits them alike."""
    if repeats < 1 or warmup < 0 or threads < 1:
        raise ValueError(f"measure_latency: repeats >= 1, warmup >= 0, threads >= 1; got "
                         f"{repeats}, {warmup}, {threads}")
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    times = {k: [] for k in models}
    try:
        with torch.inference_mode():
            for r in range(warmup + repeats):
                for k, m in models.items():
                    t0 = time.perf_counter()
                    m(example)
                    if r >= warmup:
                        times[k].append(time.perf_counter() - t0)
    finally:
        torch.set_num_threads(before)
    return {k: {"median_ms": 1e3 * statistics.median(v), "min_ms": 1e3 * min(v),
                "repeats": repeats} for k, v in times.items()}
