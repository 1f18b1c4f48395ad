"""The bench's small models at their real size: LeNet-300-100 and CIFAR ResNet-20 have the
papers' shapes, run once each (whatever --sizes says) with a floor over their own size, and the
torch.kthvalue baseline prunes the same entries as lth_fast on them."""
from __future__ import annotations

import math

from lth_fast.bench import runner, workloads


def test_small_models_have_the_papers_shapes():
    lenet = workloads.SHAPES["lenet"](10**9)
    assert lenet == [(300, 784), (100, 300), (10, 100)]
    assert workloads.numel(lenet) == 266_200
    resnet20 = workloads.SHAPES["resnet20"](1)
    assert len(resnet20) == 20 and workloads.numel(resnet20) == 268_336
    assert resnet20[0] == (16, 3, 3, 3) and resnet20[-1] == (10, 64)
    assert sum(1 for s in resnet20 if len(s) == 4) == 19  # 19 convolutions, all 3x3
    assert all(s[2:] == (3, 3) for s in resnet20[:-1])
    assert math.prod(resnet20[-2]) == 64 * 64 * 9


def test_small_models_run_once_with_their_own_floor():
    opts = runner.Options(sizes=["10M", "50M"], ops=["prune"], workloads=["lenet", "resnet20"],
                          reps=2, slow_reps=1, memory=False, progress=False)
    data = runner.run(opts)
    assert set(data["floors"]) == {"lenet", "resnet20"}
    assert data["floors"]["lenet"]["numel"] == 266_200
    rows = data["results"]
    assert [(r["workload"], r["params"]) for r in rows] == [("lenet", 266_200),
                                                            ("resnet20", 268_336)]
    for r in rows:  # continuous weights: the threshold baseline prunes exactly the same entries
        assert r["impls"]["torch.kthvalue"]["mismatches"] == 0
        assert r["impls"]["reference"]["mismatches"] == 0
