"""Every random stream of an IMP run, derived in one place from two named seeds.

    seed        (run.seed)        the initialisation, and every branch's own randomness
    data_seed   (data.data_seed)  the data order and augmentation; defaults to `seed`

A stream is a seed for torch (torch.manual_seed or a torch.Generator) computed from its
owner's seed and a tag, by a mixed-radix code: seed -> seed * R1 + tag -> (...) * R2 + index.
As long as tag < R1 and index < R2 distinct (seed, tag, index) give distinct streams, so no two
streams of a run, or of runs with other seeds, coincide. The radices are primes; their values
date from the first run directories, and are kept so that every run written since reproduces.

    init(seed)                         the model's initial weights: torch.manual_seed(seed)
    branch(seed, tag, level)           a branch's fresh initialisation or random scores at a
                                       level (each branch declares its tag,
                                       lth_fast.imp.branches)
    data(data_seed, DATA_ORDER, epoch) the permutation of the training set in an epoch
    data(data_seed, AUGMENT, it)       the random crops and flips of iteration `it`
    data(data_seed, TEXT_WINDOWS, it)  the text windows of iteration `it`
    child(data_seed, index)            the data seed of an instability child (two children of
                                       one pair differ only in it; lth_fast.imp.instability)

Every minibatch is thus a pure function of (data_seed, iteration): a run started at iteration k
sees the batches an uninterrupted run sees from k on, and the weights at iteration k are
reproduced by retraining from the initialisation."""
from __future__ import annotations

import torch

# branch streams: seed * BRANCH_RADIX + tag, then * LEVEL_RADIX + level
BRANCH_RADIX, LEVEL_RADIX = 7919, 104729
# data streams: data_seed * DATA_RADIX + stream, then * INDEX_RADIX + epoch or iteration
DATA_RADIX, INDEX_RADIX = 1_000_003, 1_000_033
DATA_ORDER, AUGMENT, TEXT_WINDOWS = 1, 2, 3


def init(seed: int) -> int:
    """The seed of the model's initial weights (torch.manual_seed before building it)."""
    return seed


def branch(seed: int, tag: int, level: int) -> int:
    """The seed of branch `tag`'s own randomness at `level`."""
    if not 0 <= tag < BRANCH_RADIX or not 0 <= level < LEVEL_RADIX:
        raise ValueError(f"branch stream: tag {tag} or level {level} out of range")
    return (seed * BRANCH_RADIX + tag) * LEVEL_RADIX + level


# instability children's data seeds: CHILD_BASE + data_seed * CHILDREN + index, above every
# run's own data seed (< CHILD_BASE) and small enough that every data stream's seed fits the
# 64 bits torch.Generator takes ((1.8e7 * DATA_RADIX + 3) * INDEX_RADIX < 2**64)
CHILD_BASE, CHILDREN, CHILD_SEEDS = 10_000_000, 200, 40_000
# every seed and data seed (a run's, a child's): small enough that every stream derived from it
# fits torch.Generator's 64 bits (lth_fast.imp.config refuses larger ones)
SEEDS = CHILD_BASE + CHILD_SEEDS * CHILDREN


def child(data_seed: int, index: int) -> int:
    """The data seed of instability child `index` of a run whose data seed is `data_seed`."""
    if not 0 <= index < CHILDREN or not 0 <= data_seed < CHILD_SEEDS:
        raise ValueError(f"child stream: data seed {data_seed} (< {CHILD_SEEDS}) or child "
                         f"{index} (< {CHILDREN}) out of range")
    return CHILD_BASE + data_seed * CHILDREN + index


def data(data_seed: int, stream: int, index: int, device="cpu") -> torch.Generator:
    """A generator for data stream `stream` (DATA_ORDER, AUGMENT, TEXT_WINDOWS) at `index`."""
    g = torch.Generator(device=device)
    g.manual_seed((data_seed * DATA_RADIX + stream) * INDEX_RADIX + index)
    return g


__all__ = ["AUGMENT", "DATA_ORDER", "TEXT_WINDOWS", "branch", "child", "data", "init"]
