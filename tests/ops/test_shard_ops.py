"""The lth_fast_shard ops (the one-pass engine's passes, run by each rank of a sharded
prune_) against brute force on fresh random data, on every CPU instruction set: marking and
undoing restores every mask byte; the resolved cut bucket is exactly the alive entries of that
key range, in position order, with their keys; counts and shares of marks per tensor; bad
arguments raise with nothing written. mark_'s output is read through the layout lth_fast._C
states (lth_fast_shard::protocol), as lth_fast.distributed.marked reads it."""
from __future__ import annotations

import pytest
import torch

from lth_fast.distributed import marked
from lth_fast.distributed.keys import keys_of
from lth_fast.distributed.marked import ALIVE, BELOW, BUCKETS, HIST, IN_BAND, NAN, SHIFT

from tests.helpers.targets import DTYPES, SUPPORTED_ISAS, isa_env


OPS = torch.ops.lth_fast_shard


def _data(seed, dtype, shapes=((300, 7), (0,), (1025,), (64, 64))):
    g = torch.Generator().manual_seed(seed)
    w = [torch.randn(s, generator=g).to(dtype) for s in shapes]
    w[0].view(-1)[:40] = 0.5  # ties
    m = [torch.rand(s, generator=g) < 0.7 for s in shapes]
    return w, m


def _band(w, m):
    """A band around the 30% quantile of the alive keys, and the keys."""
    keys = torch.cat([keys_of(t).long() for t in w])
    alive = torch.cat([t.reshape(-1) for t in m])
    s = keys[alive].sort().values
    return int(s[int(0.25 * len(s))]), int(s[int(0.35 * len(s))]) + 1


def _marked(seed, dtype):
    """Fresh data, the masks before, a band, and the masks marked for it (mark_'s output)."""
    w, m = _data(seed, dtype)
    before = [t.clone() for t in m]
    lo, hi = _band(w, m)
    return w, m, before, lo, hi, OPS.mark_(w, m, lo, hi)


@pytest.fixture(params=SUPPORTED_ISAS)
def isa(request):
    with isa_env(request.param):
        yield request.param


@pytest.mark.parametrize("dtype", DTYPES)
def test_mark_then_undo_restores_every_byte(isa, dtype):
    w, m, before, lo, hi, out = _marked(1, dtype)
    assert any(not torch.equal(a.view(torch.uint8), b.view(torch.uint8))
               for a, b in zip(m, before))  # the marks are written
    OPS.resolve_(w, m, -1, 1, 0)
    assert all(torch.equal(a.view(torch.uint8), b.view(torch.uint8)) for a, b in zip(m, before))
    keys = [keys_of(t).long() for t in w]
    alive = sum(int(t.sum()) for t in before)
    below = sum(int((k < lo)[b.reshape(-1)].sum()) for k, b in zip(keys, before))
    band = sum(int(((k >= lo) & (k < hi))[b.reshape(-1)].sum()) for k, b in zip(keys, before))
    assert [int(out[i]) for i in (ALIVE, BELOW, IN_BAND)] == [alive, below, band]
    assert int(out[NAN]) == -1 and int(out[HIST:].sum()) == band


@pytest.mark.parametrize("dtype", DTYPES)
def test_resolve_collects_the_cut_bucket(isa, dtype):
    w, m, before, lo, hi, out = _marked(2, dtype)
    shift, hist = int(out[SHIFT]), out[HIST:]
    cut = int(hist.argmax())
    found = OPS.resolve_(w, m, cut, 0, int(hist[cut]))
    want = []
    for t, (wt, b) in enumerate(zip(w, before)):
        k = keys_of(wt).long()
        bucket = (k - lo) >> shift
        inside = b.reshape(-1) & (k >= lo) & (k < hi)
        for i in (inside & (bucket == cut)).nonzero()[:, 0].tolist():
            want.append([t, i, int(k[i])])
        # resolved: below the cut bucket pruned, the rest as it was
        keep = b.reshape(-1) & ~((k < lo) | (inside & (bucket < cut)))
        assert torch.equal(m[t].reshape(-1), keep)
    assert found.tolist() == want


def test_count_and_clear_first_marks_per_tensor(isa):
    w = [torch.full((5, 4), 0.5), torch.full((9,), -0.5), torch.ones(3)]
    m = [torch.ones(t.shape, dtype=torch.bool) for t in w]
    m[0][1] = False
    key = int(keys_of(w[0]).view(-1)[0])
    OPS.mark_(w, m, key, key + 1)
    counts = OPS.count_marks(w, m, 0)
    assert counts.tolist() == [16, 9, 0]
    OPS.clear_first_marks_(w, m, 0, [3, 9, 0])
    flat = m[0].reshape(-1)
    alive_positions = [i for i in range(20) if not 4 <= i < 8]
    assert [i for i in alive_positions if not flat[i]] == alive_positions[:3]
    assert not m[1].any() and m[2].all()


def test_clear_rejects_positions_outside_and_writes_nothing():
    w, m = _data(3, torch.float32)
    before = [t.clone() for t in m]
    with pytest.raises(ValueError, match=r"positions\[1\] = \(2, 1025\) lies outside"):
        OPS.clear_(w, m, torch.tensor([[0, 1], [2, 1025]]))
    assert all(torch.equal(a, b) for a, b in zip(m, before))
    with pytest.raises(ValueError, match="must be a contiguous int64"):
        OPS.clear_(w, m, torch.tensor([0, 1]))


def test_shares_beyond_the_marks_are_refused():
    w = [torch.full((4,), 0.5)]
    m = [torch.ones(4, dtype=torch.bool)]
    key = int(keys_of(w[0])[0])
    OPS.mark_(w, m, key, key + 1)
    with pytest.raises(ValueError, match=r"shares\[0\] = 5 but the tensor holds 4"):
        OPS.clear_first_marks_(w, m, 0, [5])
    OPS.resolve_(w, m, -1, 1, 0)
    assert m[0].view(torch.uint8).tolist() == [1, 1, 1, 1]


def test_sample_holds_alive_keys_only():
    w, m = _data(4, torch.bfloat16, shapes=((4096,),))
    m[0][::2] = False
    out = OPS.sample(w, m, 64)
    alive_keys = set(keys_of(w[0])[m[0]].long().tolist())
    block = marked.SAMPLE_BLOCK
    assert int(out[0]) == 64 * block and set(out[1:].tolist()) <= alive_keys
    assert 0 < out.numel() - 1 <= 64 * block // 2


def test_protocol_states_the_layout_mark_writes():
    """protocol() names every field of mark_'s output once (distinct indices before the
    histogram of mark_buckets entries, which ends the tensor) and the sample band's constants;
    the sharded engine holds exactly these."""
    ints, floats = OPS.protocol()
    fields = [ints[k] for k in ("mark_alive", "mark_below", "mark_in_band", "mark_nan",
                                "mark_shift")]
    assert sorted(fields) == list(range(ints["mark_hist"]))
    w, m, _, _, _, out = _marked(5, torch.float32)
    assert out.numel() == ints["mark_hist"] + ints["mark_buckets"]
    OPS.resolve_(w, m, -1, 1, 0)
    assert (ALIVE, BELOW, IN_BAND, NAN, SHIFT, HIST, BUCKETS) == tuple(
        ints[k] for k in ("mark_alive", "mark_below", "mark_in_band", "mark_nan", "mark_shift",
                          "mark_hist", "mark_buckets"))
    assert (marked.SAMPLE_BLOCK, marked.MIN_SAMPLE_KEYS) == (ints["sample_block"],
                                                           ints["min_sample_keys"])
    assert (marked.BAND_SIGMAS, marked.BAND_EXTRA_RANKS) == (floats["band_sigmas"],
                                                            floats["band_extra_ranks"])


def test_an_extension_without_the_protocol_is_a_clear_import_error(monkeypatch):
    class Older:  # an lth_fast._C built before protocol() existed
        def __getattr__(self, name):
            raise AttributeError(f"'_OpNamespace' 'lth_fast_shard' object has no attribute "
                                 f"'{name}'")

    monkeypatch.setattr(marked, "_OPS", Older())
    with pytest.raises(ImportError, match="no op lth_fast_shard::protocol.*rebuild it"):
        marked._protocol()

    class Partial:
        @staticmethod
        def protocol():
            return {"mark_alive": 0}, {}

    monkeypatch.setattr(marked, "_OPS", Partial())
    with pytest.raises(ImportError, match=r"lacks \['mark_below'"):
        marked._protocol()
