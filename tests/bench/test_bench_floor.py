"""The bench's bandwidth floor: the STREAM probes compiled into the extension
(torch.ops.lth_fast_bench.stream) compute what they claim on every ISA, over every alignment and
length (aligned heads, vector bodies and tails), with every element written; bad buffers raise
a named error; measure_floor reports every probe and takes the best; the bench flags an op
measured below 0.95x its floor as a broken probe."""
from __future__ import annotations

import pytest
import torch

import lth_fast.ops  # noqa: F401  (loads the extension)
from lth_fast.bench.measure import PROBE_BYTES, Floor, measure_floor
from lth_fast.bench.report import markdown

from tests.helpers.targets import ISAS, use_isa


stream = torch.ops.lth_fast_bench.stream
LENGTHS = [0, 1, 3, 15, 16, 17, 63, 64, 65, 1000, 4099, 100_003]


def buffers(n, offset, gen):
    """Views starting `offset` floats into fresh buffers, so heads of every alignment occur."""
    make = lambda: torch.randn(n + offset, generator=gen)[offset:]  # noqa: E731
    return make(), make(), make()


def words_sum(x):
    return int(x.view(torch.int32).to(torch.int64).remainder(2**32).sum()) % 2**32


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("n", LENGTHS)
def test_probes_compute_what_they_claim(isa, n, monkeypatch):
    use_isa(isa, monkeypatch)
    gen = torch.Generator().manual_seed(n)
    for offset in (0, 1, 5):
        a, b, c = buffers(n, offset, gen)
        a.fill_(float("nan"))  # poison: an unwritten element shows
        stream(a, b, c, "triad", 0.5)
        assert torch.equal(a, b + 0.5 * c)
        a0, c0 = a.clone(), c.clone()
        stream(a, b, c, "update", 0.5)
        assert torch.equal(c, c0 * 0.5 + b) and torch.equal(a, a0 + c)
        a.fill_(float("nan"))
        stream(a, b, c, "copy", 0.0)
        assert torch.equal(a, b)
        a.fill_(float("nan"))
        stream(a, b, c, "write", -3.25)
        assert bool((a == -3.25).all())
        before = b.clone()
        assert stream(b, a, a, "read", 0.0) == words_sum(b)
        assert torch.equal(b, before)


@pytest.mark.parametrize("args, message", [
    ((torch.empty(4, dtype=torch.float64), torch.empty(4), torch.empty(4), "copy"),
     "a must be a contiguous float32 CPU tensor"),
    ((torch.empty(4), torch.empty(5), torch.empty(4), "copy"), "b has 5 elements, a has 4"),
    ((torch.empty(8)[::2], torch.empty(4), torch.empty(4), "write"), "a must be a contiguous"),
    ((torch.empty(4), torch.empty(4), torch.empty(4), "scale"),
     "kind must be read, write, copy, triad or update, got 'scale'"),
    ((torch.empty(4), torch.empty(4), torch.empty(3), "update"), "c has 3 elements, a has 4"),
])
def test_bad_buffers_are_named(args, message):
    with pytest.raises(ValueError, match=message):
        stream(*args, 1.0)


def test_floor_is_the_best_probe():
    f = measure_floor(1 << 16, reps=2, warmup=1)
    assert set(f.probe_bps) == set(PROBE_BYTES) and all(v > 0 for v in f.probe_bps.values())
    assert f.bps == max(f.probe_bps.values()) and f.probe_bps[f.method] == f.bps
    d = f.as_dict()
    assert d["gbps"] == f.bps / 1e9 and set(d["probes_gbps"]) == set(PROBE_BYTES)
    assert Floor(10, {"read": 2.0, "copy": 4.0}).seconds(8.0) == 2.0


def test_bench_flags_an_op_below_its_floor(monkeypatch):
    """An op measured faster than 0.95x its floor means the probe under-measures: the bench
    says so in its JSON and at the top of its table."""
    from lth_fast.bench import runner

    monkeypatch.setattr(runner, "measure_floor",
                        lambda n, device: Floor(n, {k: 1e6 for k in PROBE_BYTES}))  # 1 MB/s
    opts = runner.Options(sizes=["64K"], ops=["rewind"], workloads=["resnet"], reps=2,
                          slow_reps=1, baselines=False, memory=False, progress=False)
    data = runner.run(opts)
    row = data["results"][0]
    assert row["below_floor"] and row["x_floor"] < 0.95
    assert data["warnings"] and "rewind resnet 64K ran at" in data["warnings"][0]
    assert markdown(data).startswith("**WARNING: rewind resnet 64K ran at")


def test_bench_names_a_bad_device_in_one_line(capsys):
    from lth_fast.cli import main

    for device, says in (("gpu", "device 'gpu' is not a torch device"),
                         ("cuda:99", "device 'cuda:99'")):
        assert main(["bench", "--device", device, "--sizes", "1K", "--ops", "prune", "-q"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err and "Traceback" not in err
