"""What each rank runs in the distributed tests (importable by spawned processes). Every rank
builds the same full tensors from a case's seed (dist_cases.build) and prunes its own part."""
from __future__ import annotations

import zlib

import torch
import torch.distributed as dist

import lth_fast.distributed as ltd
from lth_fast.distributed import chunk_rows, marked

from tests.helpers.dist_cases import build



def local_part(t: torch.Tensor, world: int, rank: int) -> torch.Tensor:
    """Rank's torch.chunk(dim 0) part of t (empty when the chunks run out)."""
    start, count = chunk_rows(t.shape[0], world, rank)
    return t[start:start + count].clone()


def shards(rank, world, cases):
    """Each case on torch.chunk shards with the world group: (masks, stats, calls) per case.
    A case's "knobs" set constants of the CPU engine for it (a narrow band that misses, a
    small collection cap that makes buckets crowded)."""
    out = []
    for case in cases:
        saved = {k: getattr(marked, k) for k in case.get("knobs", {})}
        for k, v in case.get("knobs", {}).items():
            setattr(marked, k, v)
        weights, masks = build(case)
        w = [local_part(t, world, rank) for t in weights]
        m = [local_part(t, world, rank) for t in masks]
        with ltd.audit() as calls:
            stats = ltd.prune_(w, m, case["amount"], scope=case.get("scope", "global"),
                               group=dist.group.WORLD)
        for k, v in saved.items():
            setattr(marked, k, v)
        out.append((m, stats, list(calls)))
    return out


def _model(case):
    torch.manual_seed(case["seed"])
    layers = [torch.nn.Linear(i, o, bias=False) for i, o in case["dims"]]
    return torch.nn.Sequential(*layers).to(case.get("dtype", torch.float32))


def fsdp(rank, world, case):
    """A real fully_shard model on a CPU mesh ((world,), or case["mesh"] for HSDP): the local
    masks after and before, the full weights (for the oracle only), the stats, the calls."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    shape = tuple(case.get("mesh", (world,)))
    names = ("replicate", "shard")[-len(shape):]  # HSDP needs its dims named
    mesh = init_device_mesh("cpu", shape, mesh_dim_names=names)
    model = _model(case)
    fully_shard(model, mesh=mesh)
    params = [p for p in model.parameters()]
    masks = [torch.ones(p.to_local().shape, dtype=torch.bool) for p in params]
    if case.get("dead_seed") is not None:  # existing masks that differ per shard
        g = torch.Generator().manual_seed(case["dead_seed"] + rank)
        masks = [torch.rand(m.shape, generator=g) > 0.3 for m in masks]
    before = [m.clone() for m in masks]  # assembled by the parent for the oracle
    with ltd.audit() as calls:
        stats = ltd.prune_(params, masks, case["amount"], scope=case.get("scope", "global"))
    full = [p.full_tensor().detach() for p in params]
    return masks, before, full, stats, list(calls)


def ddp_verify(rank, world, case):
    """Replicated selection: identical weights select identically; verify catches a perturbed
    rank. Returns (masks, error message or None)."""
    weights, masks = build(case)
    if case.get("perturb_rank") == rank:
        weights[0].mul_(10)  # this rank ranks tensor 0 above the others: fewer of it pruned
    with ltd.audit() as calls:
        try:
            ltd.prune_(weights, masks, case["amount"], verify=True)
            error = None
        except ValueError as e:
            error = str(e)
    return masks, error, list(calls)


def bad_call(rank, world, case):
    """One rank's arguments differ or are bad: every rank must raise, none may hang."""
    weights, masks = build(case)
    w = [local_part(t, world, rank) for t in weights]
    m = [local_part(t, world, rank) for t in masks]
    before = [t.clone() for t in m]
    if rank == case["bad_rank"]:
        if case["how"] == "fewer":
            w, m = w[:-1], m[:-1]
        elif case["how"] == "amount":
            case = dict(case, amount=0.5)
        elif case["how"] == "dtype":
            w = [t.double() for t in w]
        elif case["how"] == "noncontiguous":
            w[0] = w[0].t().contiguous().t()
        elif case["how"] == "nan":
            w[-1].view(-1)[-1] = float("nan")
    try:
        ltd.prune_(w, m, case["amount"], group=dist.group.WORLD)
        error = None
    except ValueError as e:
        error = f"{type(e).__name__}: {e}"
    except TypeError as e:
        error = f"{type(e).__name__}: {e}"
    unchanged = all(torch.equal(a, b) for a, b in zip(m, before))
    return error, unchanged


def _lth_round(model, grads_of, optimizer_cls, steps: int, amount: float, opt_kwargs):
    """snapshot, a few steps with the given gradients, prune, rewind: the LTH round."""
    from lth_fast import Pruner
    pruner = Pruner(model)
    pruner.snapshot()
    opt = optimizer_cls(model.parameters(), masks=pruner, **opt_kwargs)
    for step in range(steps):
        for name, p in model.named_parameters():
            p.grad = grads_of(name, p, step)
        opt.step()
    stats = pruner.prune(amount)
    for step in range(steps):  # train the pruned net a little: pruned entries stay 0
        for name, p in model.named_parameters():
            p.grad = grads_of(name, p, steps + step)
        opt.step()
    after_train = {n: p.detach().clone() for n, p in model.named_parameters()}
    pruner.rewind(opt)
    return pruner, stats, after_train


def _full_grad(name, shape, step):
    g = torch.Generator().manual_seed(zlib.crc32(f"{name}:{step}".encode()))
    return torch.randn(shape, generator=g)


def fsdp_round(rank, world, case):
    """An LTH round on a fully_shard model with the lth_fast optimizers, the gradients set
    directly (the same full gradient on every rank, sharded): returns the full weights after
    training and after rewinding, and the local masks."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    from torch.distributed.tensor import Shard, distribute_tensor

    import lth_fast
    mesh = init_device_mesh("cpu", (world,))
    model = _model(case)
    fully_shard(model, mesh=mesh)

    def grads_of(name, p, step):
        return distribute_tensor(_full_grad(name, p.shape, step), mesh, [Shard(0)])
    cls = getattr(lth_fast, case["optimizer"])
    pruner, stats, trained = _lth_round(model, grads_of, cls, case["steps"], case["amount"],
                                        case["opt_kwargs"])
    full = lambda t: t.full_tensor() if hasattr(t, "full_tensor") else t  # noqa: E731
    return ({n: full(t) for n, t in trained.items()},
            {n: p.full_tensor().detach() for n, p in model.named_parameters()},
            [pruner.masks[n].clone() for n in pruner.names], stats,
            type(pruner.mask_set.snapshot[pruner.names[0]]).__name__)


def single_round(case):
    """The same round in one process, on the unsharded model (the oracle)."""
    import lth_fast
    model = _model(case)
    cls = getattr(lth_fast, case["optimizer"])
    pruner, stats, trained = _lth_round(model, lambda n, p, s: _full_grad(n, p.shape, s), cls,
                                        case["steps"], case["amount"], case["opt_kwargs"])
    return (trained, {n: p.detach().clone() for n, p in model.named_parameters()},
            [pruner.masks[n].clone() for n in pruner.names], stats)


def ddp_round(rank, world, case):
    """A DDP model's Pruner: every rank prunes alone, verify=True agrees; returns the masks."""
    from torch.nn.parallel import DistributedDataParallel

    from lth_fast import Pruner
    model = DistributedDataParallel(_model(dict(case, seed=case["seed"] + rank)))  # rank 0's
    pruner = Pruner(model.module)
    with ltd.audit() as calls:
        pruner.prune(case["amount"], verify=True)
    return [pruner.masks[n].clone() for n in pruner.names], list(calls)


def _fsdp_model(case, world):
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard
    mesh = init_device_mesh("cpu", (world,))
    model = _model(case)
    fully_shard(model, mesh=mesh)
    return model, mesh


def fsdp_save_ticket(rank, world, case):
    """An LTH round on fully_shard, then save_ticket on every rank (rank 0 writes)."""
    from torch.distributed.tensor import Shard, distribute_tensor

    import lth_fast
    model, mesh = _fsdp_model(case, world)
    grads_of = lambda n, p, s: distribute_tensor(_full_grad(n, p.shape, s), mesh,  # noqa: E731
                                                 [Shard(0)])
    pruner, _, _ = _lth_round(model, grads_of, getattr(lth_fast, case["optimizer"]),
                              case["steps"], case["amount"], case["opt_kwargs"])
    pruner.save_ticket(case["path"])
    return True


def fsdp_load_ticket(rank, world, case):
    """A fresh fully_shard model loads the ticket and rewinds to it: its full weights."""
    from lth_fast import Pruner
    model, _ = _fsdp_model(dict(case, seed=case["seed"] + 100), world)  # other weights
    pruner = Pruner.load_ticket(case["path"], model)
    pruner.rewind()
    return {n: p.full_tensor().detach() for n, p in model.named_parameters()}


def fsdp_scores(rank, world, case):
    """A fully_shard model's Pruner ranking seeded scores (the same full tensors on every rank)
    given three ways: full-shaped, as this rank's local shards, and as DTensors placed like the
    weights. Returns the full scores, each form's drawn local masks, the local masks prune()
    leaves, whether the pruned weights are 0, and the error of a wrong-shaped score."""
    from torch.distributed.tensor import distribute_tensor

    from lth_fast import Pruner
    model, mesh = _fsdp_model(case, world)
    pruner = Pruner(model)
    params = {n: model.get_parameter(n) for n in pruner.names}
    g = torch.Generator().manual_seed(case["seed"] + 1)
    full = {n: torch.rand(p.shape, generator=g) for n, p in params.items()}
    forms = {"full": full,
             "local": [ltd.shard_of(full[n], params[n]) for n in pruner.names],
             "dtensor": {n: distribute_tensor(s, mesh, params[n].placements)
                         for n, s in full.items()}}
    drawn = {}
    for form, scores in forms.items():
        masks = pruner.draw(case["amount"], case["scope"], scores=scores)
        drawn[form] = [masks[n].clone() for n in pruner.names]
    try:
        pruner.draw(case["amount"], case["scope"], scores=[s[:1] for s in full.values()])
        error = None
    except ValueError as e:
        error = str(e)
    pruner.prune(case["amount"], case["scope"], scores=full)
    zero = all(bool((params[n].to_local()[~pruner.masks[n]] == 0).all()) for n in pruner.names)
    return ([full[n] for n in pruner.names], drawn,
            [pruner.masks[n].clone() for n in pruner.names], zero, error)


def bad_placements(rank, world, case):
    """DTensors of placements sharded selection refuses: every rank gets the error."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Partial, Shard, distribute_tensor
    mesh = init_device_mesh("cpu", (world,))
    full = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    errors = {}
    for name, placement in (("Shard(1)", Shard(1)), ("Partial", None), ("mixed", "mixed")):
        if placement is None:
            from torch.distributed.tensor import DTensor
            w = DTensor.from_local(full / world, mesh, [Partial()])  # sums to full
        elif placement == "mixed":
            w = distribute_tensor(full, mesh, [Shard(0)])
        else:
            w = distribute_tensor(full, mesh, [placement])
        weights = [w] if placement != "mixed" else [w, torch.ones(3)]
        masks = [torch.ones(t.to_local().shape if hasattr(t, "to_local") else t.shape,
                            dtype=torch.bool) for t in weights]
        try:
            ltd.prune_(weights, masks, 0.5)
            errors[name] = None
        except (ValueError, TypeError) as e:
            errors[name] = str(e)
    try:
        import lth_fast
        lth_fast.prune_([distribute_tensor(full, mesh, [Shard(0)])],
                        [torch.ones(2, 6, dtype=torch.bool)], 0.5)
        errors["front door"] = None
    except ValueError as e:
        errors["front door"] = str(e)
    return errors


def dropin_on_dtensors(rank, world, case):
    """lth_fast.nn.utils.prune and torch.nn.utils.prune on a fully_shard model's DTensor
    weights: what each call gave (its local mask, or the type of the error it raised)."""
    import torch.nn.utils.prune as tp
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    import lth_fast.nn.utils.prune as lp
    mesh = init_device_mesh("cpu", (world,))
    out = {}
    for label, mod in (("ours", lp), ("torch", tp)):
        for call in ("local", "global"):
            model = _model(case)
            fully_shard(model, mesh=mesh)
            torch.manual_seed(0)
            try:
                if call == "local":
                    mod.l1_unstructured(model[0], "weight", amount=case["amount"])
                else:
                    mod.global_unstructured([(m, "weight") for m in model],
                                            pruning_method=mod.L1Unstructured,
                                            amount=case["amount"])
                mask = model[0].weight_mask
                out[label, call] = (mask.to_local() if hasattr(mask, "to_local") else mask).clone()
            except Exception as e:  # noqa: BLE001  (what torch does is the oracle)
                out[label, call] = type(e).__name__
    return out
