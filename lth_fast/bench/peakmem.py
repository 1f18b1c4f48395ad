"""Peak extra memory of one call of an op's fast implementation, measured in a fresh process.

CPU: the child builds the workload in place (every page touched, no temporaries), resets the
kernel's RSS high-water mark (/proc/self/clear_refs '5') so that peak == current RSS, reads the
peak, runs the op once, and reads the peak again. The difference is the memory the op touched
beyond its inputs, reported as a percentage of the weights' bytes. The peak is VmHWM from
/proc/self/status (getrusage's ru_maxrss is recorded too, but in a child it is floored at the
parent's size, see child()); without clear_refs it falls back to ru_maxrss.
`slack_bytes` is peak - current before the call: memory the op could use unseen (0 when the
reset worked). CUDA: the same with torch.cuda.max_memory_allocated.

Run as `python -m lth_fast.bench.peakmem OP WORKLOAD SIZE [--device D] [--threads N]`; it
prints one JSON object.
"""
from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
from typing import Optional


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _maxrss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def child(op: str, workload: str, size: str, device: str, threads: Optional[int]) -> dict:
    import torch

    from . import suite, workloads

    if threads:
        torch.set_num_threads(threads)
    case = suite.get(op)
    cuda = torch.device(device).type == "cuda"
    torch.ones(1 << 22, device=device).add_(1)  # start the thread pool / CUDA context first
    tiny = workloads.make(workload, "20K", device=device)  # first call: page in the op's code
    warm = case.fast.prepare(tiny)
    warm.setup()
    warm.op()
    del warm, tiny
    wl = workloads.make(workload, size, device=device)
    prep = case.fast.prepare(wl)
    prep.setup()
    gc.collect()
    row = {"op": op, "impl": case.fast.name, "workload": workload, "size": size,
           "params": wl.params, "weight_bytes": wl.weight_bytes, "device": device}
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        prep.op()
        torch.cuda.synchronize()
        extra = torch.cuda.max_memory_allocated() - before
        row.update(method="torch.cuda.max_memory_allocated", slack_bytes=0)
    else:
        # ru_maxrss of a fresh child also holds the high-water mark of the process it was
        # exec'd from (the kernel folds the old mm's peak into it at exec), so it cannot be
        # reset below the parent's size; VmHWM is this mm's own peak and clear_refs resets it.
        reset = _reset_peak()
        rss = _status_kib("VmRSS") * 1024
        hwm, maxrss = _status_kib("VmHWM") * 1024, _maxrss_bytes()
        prep.op()
        hwm_after, maxrss_after = _status_kib("VmHWM") * 1024, _maxrss_bytes()
        if reset and hwm > 0:
            extra, before, method = hwm_after - hwm, hwm, "VmHWM, peak reset by clear_refs"
        else:
            extra, before, method = maxrss_after - maxrss, maxrss, "ru_maxrss"
        row.update(method=method, slack_bytes=max(0, before - rss), rss_before=rss,
                   ru_maxrss_before=maxrss, ru_maxrss_after=maxrss_after)
    row.update(extra_bytes=extra, extra_pct=100.0 * extra / max(1, wl.weight_bytes))
    return row


def measure(op: str, workload: str, size: str, device: str = "cpu",
            threads: Optional[int] = None, timeout: float = 600) -> dict:
    """Runs `child` in a fresh interpreter and returns its row (or one with an 'error')."""
    cmd = [sys.executable, "-m", "lth_fast.bench.peakmem", op, workload, size, "--device", device]
    if threads:
        cmd += ["--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return {"op": op, "workload": workload, "size": size, "error": tail[0]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m lth_fast.bench.peakmem")
    p.add_argument("op")
    p.add_argument("workload")
    p.add_argument("size")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    print(json.dumps(child(a.op, a.workload, a.size, a.device, a.threads)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
