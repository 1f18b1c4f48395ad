"""prune_ over more than 2^31 elements (64-bit sizes, offsets and counts). float16 keeps it near
6 GB (4 GB weights + 2 GB masks); the answer follows from the construction, no reference."""
from __future__ import annotations

import gc

import pytest
import torch

import lth_fast

B31 = 1 << 31
N = [1000, B31 + (1 << 20) + 3, 777]  # one tensor alone is longer than 2^31
BLOCK = (B31 - 10, B31 + 50)  # |w| = 1.0 here, straddling element 2^31 of tensor 1
# (tensor, position, value): small magnitudes everywhere else is 2.0; both zeros, a subnormal
SMALL = [(0, 5, 0.5), (0, 999, -0.25), (0, 10, 0.125), (1, 0, 0.5), (1, 12345, -0.0),
         (1, B31 - 1, 0.75), (1, B31, -0.5), (1, B31 + 7, 2.0 ** -24), (1, N[1] - 1, 0.25),
         (2, 0, 0.0), (2, 776, -0.75)]
DEAD = [(0, 0), (0, 1), (0, 2), (0, 10), (1, B31 - 5), (1, B31 + 3), (1, B31 + 100),
        (1, N[1] - 2)]


def build():
    weights = [torch.full((n,), 2.0, dtype=torch.float16) for n in N]
    masks = [torch.ones(n, dtype=torch.bool) for n in N]
    weights[1][BLOCK[0]:BLOCK[1]] = 1.0
    for t, p, v in SMALL:
        weights[t][p] = v
    for t, p in DEAD:
        masks[t][p] = False
    return weights, masks


def check(masks, died, dead_before, alive_before, k):
    """Exactly `died` (alive before) are dead now, earlier dead stay dead, the rest alive."""
    for t, p in died:
        assert not masks[t][p], f"masks[{t}][{p}] should have been pruned"
    for t, p in dead_before:
        assert not masks[t][p], f"masks[{t}][{p}] was dead and came back"
    alive = sum(int(torch.count_nonzero(m)) for m in masks)  # m.sum() would upcast: 16 GB
    # with the two lists above all dead, this count leaves no room for any other change
    assert alive == alive_before - k, (alive, alive_before, k)


def available_gib():
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) / 2 ** 20
    except (OSError, KeyError, ValueError):
        return float("inf")  # unknown: try


@pytest.mark.slow
@pytest.mark.skipif(available_gib() < 9, reason="needs ~7 GiB of free memory")
def test_prune_beyond_2_31_elements():
    weights, masks = build()
    try:
        total = sum(N)
        assert total > B31
        dead = set(DEAD)
        alive_before = total - len(dead)
        small = [(t, p) for t, p, _ in SMALL if (t, p) not in dead]
        block = [(1, p) for p in range(*BLOCK)
                 if (1, p) not in dead and (1, p) not in {(t, q) for t, q, _ in SMALL}]
        assert any(p >= B31 for _, p in block[:25]) and any(p < B31 for _, p in block[:25])

        # 1) every small one, then the first 25 of the 1.0 block: the cut is a tie at 1.0
        #    whose entries straddle element 2^31 (exact selection on 64-bit positions).
        k1 = len(small) + 25
        stats = lth_fast.prune_(weights, masks, k1)
        assert (stats.alive_before, stats.pruned, stats.threshold) == (alive_before, k1, 1.0)
        died = small + block[:25]
        check(masks, died, DEAD, alive_before, k1)
        for t, p in block[25:]:
            assert masks[t][p], f"masks[{t}][{p}] is a later tie and must survive"

        # 2) the rest of the block, then 3 of the ~2^31 entries tied at 2.0: the earliest alive
        #    ones, tensor 0 positions 3, 4, 6 (0..2 dead, 5 pruned above).
        alive_before -= k1
        k2 = len(block) - 25 + 3
        stats = lth_fast.prune_(weights, masks, k2)
        assert (stats.alive_before, stats.pruned, stats.threshold) == (alive_before, k2, 2.0)
        check(masks, block[25:] + [(0, 3), (0, 4), (0, 6)], DEAD + died, alive_before, k2)
        assert masks[0][7] and masks[1][1] and masks[2][1]
    finally:
        del weights, masks
        gc.collect()
