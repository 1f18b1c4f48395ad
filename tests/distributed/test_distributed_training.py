"""Training and rewinding on shards: an LTH round (snapshot, masked steps, prune, more steps,
rewind) on a real fully_shard model over gloo, with MaskedSGD / MaskedAdam / MaskedAdamW on
the local shards and deterministic gradients set directly (not FSDP2's gradient averaging,
which was wrong on gloo in some torch releases), against the same round in one process on the
unsharded model: weights equal, masks equal bit for bit. And a DDP model's Pruner, which
selects on every rank alone and verifies by checksum."""
from __future__ import annotations

import pytest
import torch

from tests.helpers import dist_workers
from tests.helpers.dist import run_ranks
from tests.helpers.dist_cases import assemble


OPTIMIZERS = [("MaskedSGD", dict(lr=0.1, momentum=0.9, weight_decay=1e-3)),
              ("MaskedAdam", dict(lr=0.01)),
              ("MaskedAdamW", dict(lr=0.01, weight_decay=0.1))]


@pytest.mark.parametrize("optimizer,opt_kwargs", OPTIMIZERS, ids=[o for o, _ in OPTIMIZERS])
@pytest.mark.parametrize("world", [2, 3])
def test_fsdp_round_equals_single_process(world, optimizer, opt_kwargs):
    case = dict(dims=[(7, 5), (5, 9), (9, 3)], seed=21, amount=0.4, steps=3,
                optimizer=optimizer, opt_kwargs=opt_kwargs)
    results = run_ranks(world, dist_workers.fsdp_round, case)
    trained, rewound, masks, stats = dist_workers.single_round(case)
    for r in results:
        assert r[3] == stats
        assert r[4] == "DTensor"  # the snapshot keeps the parameters' placements
        for n in trained:
            torch.testing.assert_close(r[0][n], trained[n], rtol=0, atol=0, msg=n)
            torch.testing.assert_close(r[1][n], rewound[n], rtol=0, atol=0, msg=n)
    for got, want in zip(assemble([r[2] for r in results]), masks):
        assert torch.equal(got, want)
    for n, m in zip(rewound, masks):  # rewound: the initial weights where alive, else 0
        assert torch.all(rewound[n][~m] == 0)


def test_ddp_pruner_selects_alone_and_verifies():
    case = dict(dims=[(12, 8), (8, 4)], seed=5, amount=0.3)
    results = run_ranks(2, dist_workers.ddp_round, case)
    for got, want in zip(results[0][0], results[1][0]):
        assert torch.equal(got, want)
    kinds = [c.kind for c in results[0][1]]
    assert kinds == ["all_gather", "all_gather"]  # the verification only


def test_sharded_ticket_is_the_single_process_ticket(tmp_path):
    """Found on 3 ranks, written once by rank 0, equal to the single-process ticket, and loaded
    on 2 ranks and in one process to the same weights."""
    from lth_fast import Pruner
    from lth_fast.pruning import ticket
    case = dict(dims=[(7, 5), (5, 9), (9, 3)], seed=23, amount=0.5, steps=2,
                optimizer="MaskedSGD", opt_kwargs=dict(lr=0.1, momentum=0.9),
                path=str(tmp_path / "sharded.safetensors"))
    assert run_ranks(3, dist_workers.fsdp_save_ticket, case) == [True] * 3
    _, rewound, masks, _ = dist_workers.single_round(case)
    got = ticket.load(case["path"])
    for n, m in zip(got.names, masks):
        assert torch.equal(got.masks[n], m)
    loaded = run_ranks(2, dist_workers.fsdp_load_ticket, case)
    model = dist_workers._model(dict(case, seed=99))
    Pruner.load_ticket(case["path"], model).rewind()
    for n, p in model.named_parameters():
        assert torch.equal(p.detach(), rewound[n])
        assert all(torch.equal(r[n], rewound[n]) for r in loaded)
