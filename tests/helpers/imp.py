"""IMP test helpers: tiny learnable MNIST-format files (class c is a bright bar at row 2c plus
noise, so a few dozen iterations teach LeNet), a tiny config over them, metrics minus times."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import numpy as np

from lth_fast.imp import IMPConfig, preset

from tests.helpers.data_files import idx_bytes, write



def learnable_mnist(root, n_train=500, n_test=200, seed=0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("t10k", n_test)):
        y = rng.integers(0, 10, n).astype(np.uint8)
        x = rng.integers(0, 60, (n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(y):
            x[i, 2 * c + 4:2 * c + 6, 4:24] = 255
        write(os.path.join(root, f"{split}-images-idx3-ubyte"), idx_bytes(x))
        write(os.path.join(root, f"{split}-labels-idx1-ubyte"), idx_bytes(y))
    return root


def tiny(data_dir, **kw) -> IMPConfig:
    base = dict(dataset="mnist", data_dir=data_dir, val_size=100, batch_size=20, iterations=30,
                eval_every=10, levels=2)
    return preset("lenet_mnist5k", **{**base, **kw})


def without_times(levels):
    """Metrics minus wall-clock seconds (which differ from run to run)."""
    out = []
    for m in levels:
        m = json.loads(json.dumps(m))
        m.pop("seconds")
        for b in m["branches"].values():
            b.pop("seconds")
        out.append(m)
    return out


def kill_after_level(cmd, run_dir, level: int, env, cwd, timeout: float = 180) -> None:
    """Starts the IMP command `cmd` and SIGKILLs it as soon as level `level` is finished (its
    metrics.json written), so the next level is cut short."""
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + timeout
        while not (run_dir / f"level_{level:02d}" / "metrics.json").exists():
            assert proc.poll() is None, "the run ended before it could be killed"
            assert time.time() < deadline
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
