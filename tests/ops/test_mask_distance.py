"""mask_distance fast == reference (docs/semantics.md, "Mask distance"): bool and bit-packed
masks on every device and ISA, odd sizes, long lists, dicts, and every bad input raising the
same one-line error from both, naming the list and the index."""
from __future__ import annotations

import pytest
import torch

import lth_fast
from lth_fast import reference
from lth_fast.pruning.ticket import pack_bits

from tests.helpers.targets import needs_cuda

# sizes around the byte, the 64-bit word and the 31-word block of the CPU kernel
ODD_SIZES = [0, 1, 7, 8, 9, 63, 64, 65, 247, 248, 249, 255, 256, 257, 1000, 4093]


def pairs(shapes, gen, flip_p):
    """Random masks a, and b = a with about flip_p of the entries flipped."""
    a = [torch.rand(s, generator=gen) < 0.6 for s in shapes]
    b = [m ^ (torch.rand(s, generator=gen) < flip_p) for m, s in zip(a, shapes)]
    return a, b


def numel(shape):
    n = 1
    for d in shape:
        n *= d
    return n


def check(a, b, device, numels=None):
    """Fast (on `device`) == reference (on CPU), and both equal a count made here."""
    want = reference.mask_distance(a, b, numels=numels)
    if isinstance(a, dict):
        got = lth_fast.mask_distance({k: v.to(device) for k, v in a.items()},
                                     {k: v.to(device) for k, v in b.items()}, numels=numels)
    else:
        got = lth_fast.mask_distance([t.to(device) for t in a], [t.to(device) for t in b],
                                     numels=numels)
    assert got == want, f"fast {got} != reference {want}"
    return got


def direct(a, b):
    """Per-pair (differ, total) of bool masks, counted by position."""
    return tuple((int((x != y).sum()), x.numel()) for x, y in zip(a, b))


@pytest.mark.parametrize("flip_p", [0.0, 0.01, 0.5, 1.0])
def test_bool_random(target, flip_p, gen):
    for _ in range(3):
        shapes = [tuple(torch.randint(1, 40, (int(torch.randint(1, 4, (1,), generator=gen)),),
                                      generator=gen).tolist()) for _ in range(5)]
        a, b = pairs(shapes, gen, flip_p)
        got = check(a, b, target)
        assert got.layers == direct(a, b)
        assert got.differ == sum(d for d, _ in got.layers)
        assert got.total == sum(numel(s) for s in shapes)


@pytest.mark.parametrize("flip_p", [0.0, 0.01, 0.5, 1.0])
def test_packed_random(target, flip_p, gen):
    """Packed with pack_bits: the same counts as the bool masks they pack."""
    for _ in range(3):
        shapes = [(int(torch.randint(0, 3000, (1,), generator=gen)),) for _ in range(6)]
        shapes += [(3, 5, 7)]
        a, b = pairs(shapes, gen, flip_p)
        numels = [m.numel() for m in a]
        got = check([pack_bits(m) for m in a], [pack_bits(m) for m in b], target, numels)
        assert got == lth_fast.mask_distance(a, b)


@pytest.mark.parametrize("n", ODD_SIZES)
def test_odd_sizes(target, n, gen):
    a, b = pairs([(n,)], gen, 0.3)
    got = check(a, b, target)
    assert got.layers == direct(a, b)
    packed = check([pack_bits(a[0])], [pack_bits(b[0])], target, [n])
    assert packed.layers == got.layers


@pytest.mark.parametrize("n", [1, 5, 9, 63, 65, 1001])
def test_padding_bits_are_not_entries(target, n, gen):
    """Masks packed by hand with different padding bits: only the n entries count."""
    a, b = pairs([(n,)], gen, 0.5)
    pa, pb = pack_bits(a[0]), pack_bits(b[0])
    if n % 8:
        pa[-1] |= (1 << (8 - n % 8)) - 1  # every padding bit of a set, none of b
    got = check([pa], [pb], target, [n])
    assert got.layers == direct(a, b)


def test_empty_lists(target):
    for numels in (None, []):
        got = lth_fast.mask_distance([], [], numels=numels)
        assert got == reference.mask_distance([], [], numels=numels)
        assert (got.differ, got.total, got.layers, got.value, got.per_layer) == (0, 0, (), 0.0, [])
    assert lth_fast.mask_distance({}, {}).per_layer == {}


def test_zero_size_tensors(target, gen):
    a, b = pairs([(0,), (4, 0), (5,)], gen, 1.0)
    got = check(a, b, target)
    assert got.layers == ((0, 0), (0, 0), (5, 5))
    assert got.per_layer == [0.0, 0.0, 1.0]
    packed = check([pack_bits(m) for m in a], [pack_bits(m) for m in b], target, [0, 0, 5])
    assert packed == got


def test_large_list(target, gen):
    """Hundreds of tensors and > 64K entries in all: many chunks, several threads."""
    shapes = [(int(torch.randint(0, 2000, (1,), generator=gen)),) for _ in range(300)]
    shapes += [(300_001,), (70_000,)]
    a, b = pairs(shapes, gen, 0.1)
    got = check(a, b, target)
    assert got.layers == direct(a, b)
    packed = check([pack_bits(m) for m in a], [pack_bits(m) for m in b], target,
                   [m.numel() for m in a])
    assert packed == got


def test_threads_agree(gen):
    a, b = pairs([(1_000_003,), (77,)], gen, 0.2)
    before = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(lth_fast.mask_distance(a, b))
    finally:
        torch.set_num_threads(before)
    assert results[0] == results[1] == reference.mask_distance(a, b)


def test_dicts(target, gen):
    a, b = pairs([(10, 3), (17,), (0,)], gen, 0.5)
    names = ["fc1.weight", "fc2.weight", "empty"]
    got = check(dict(zip(names, a)), dict(zip(names, b)), target)
    assert got.names == tuple(names)
    assert got.layers == direct(a, b)
    assert got.per_layer == {n: (d / t if t else 0.0) for n, (d, t) in zip(names, got.layers)}
    # packed dicts take numels as a dict or as a list in the masks' order
    pa = {n: pack_bits(m) for n, m in zip(names, a)}
    pb = {n: pack_bits(m) for n, m in zip(names, b)}
    by_name = check(pa, pb, target, {n: m.numel() for n, m in zip(names, a)})
    by_order = check(pa, pb, target, [m.numel() for m in a])
    assert by_name == by_order == got


def test_value_and_per_layer():
    a = [torch.tensor([True, True, False, False]), torch.tensor([True])]
    b = [torch.tensor([True, False, True, False]), torch.tensor([False])]
    got = lth_fast.mask_distance(a, b)
    assert (got.differ, got.total, got.layers) == (3, 5, ((2, 4), (1, 1)))
    assert got.value == 3 / 5
    assert got.per_layer == [0.5, 1.0]
    assert lth_fast.mask_distance(a, a).value == 0.0
    with pytest.raises(Exception):
        got.differ = 0  # frozen


def test_pruner_masks(gen):
    """A Pruner's masks before and after a prune differ by exactly what was pruned."""
    model = torch.nn.Sequential(torch.nn.Linear(20, 30), torch.nn.ReLU(), torch.nn.Linear(30, 4))
    pruner = lth_fast.Pruner(model)
    before = {n: m.clone() for n, m in pruner.masks.items()}
    stats = pruner.prune(0.3)
    got = lth_fast.mask_distance(before, pruner.masks)
    assert got.differ == stats.pruned and got.total == stats.alive_before
    assert list(got.per_layer) == list(pruner.names)


@needs_cuda
def test_cuda_matches_cpu(gen):
    a, b = pairs([(100_000,), (33,)], gen, 0.3)
    cuda = lth_fast.mask_distance([t.cuda() for t in a], [t.cuda() for t in b])
    assert cuda == lth_fast.mask_distance(a, b)


# -- errors ------------------------------------------------------------------------------------
def bools(*sizes):
    return [torch.ones(n, dtype=torch.bool) for n in sizes]


def packs(*sizes):
    return [pack_bits(torch.ones(n, dtype=torch.bool)) for n in sizes]


ERRORS = {
    "lengths differ": (bools(3, 4), bools(3), None, ValueError,
                       ["masks_b has 1 tensors but masks_a has 2"]),
    "shapes differ": (bools(3, 4), bools(3, 5), None, ValueError, ["masks_b[1]", "shape"]),
    "float masks": (bools(3) + [torch.ones(4)], bools(3, 4), None, TypeError,
                    ["masks_a[1]", "torch.bool or bit-packed torch.uint8"]),
    "int masks": ([torch.ones(3, dtype=torch.int32)], [torch.ones(3, dtype=torch.int32)], None,
                  TypeError, ["masks_a[0]", "torch.bool or bit-packed torch.uint8"]),
    "dtypes mixed in a": (bools(16) + packs(16), bools(16, 16), None, TypeError,
                          ["masks_a[1]", "one list holds one dtype"]),
    "b is packed, a bool": (bools(8, 8), packs(8, 64), None, TypeError, ["masks_b[0]"]),
    "not a tensor": (bools(3) + [[True]], bools(3, 1), None, TypeError,
                     ["masks_a[1] must be a tensor"]),
    "non-contiguous": ([torch.ones(4, 4, dtype=torch.bool).t()], bools(16), None, ValueError,
                       ["masks_a[0] must be contiguous"]),
    "non-contiguous b": ([torch.ones(4, 4, dtype=torch.bool)],
                         [torch.ones(4, 4, dtype=torch.bool).t()], None, ValueError,
                         ["masks_b[0] must be contiguous"]),
    "numels for bool": (bools(3), bools(3), [3], ValueError,
                        ["numels is only for bit-packed uint8 masks"]),
    "numels missing": (packs(9, 3), packs(9, 3), None, ValueError, ["need numels"]),
    "numels empty": (packs(9, 3), packs(9, 3), [], ValueError, ["need numels"]),
    "numels short": (packs(9, 3), packs(9, 3), [9], ValueError,
                     ["numels has 1 counts but masks_a has 2 tensors"]),
    "numels for no masks": ([], [], [3], ValueError,
                            ["numels has 1 counts but masks_a has 0 tensors"]),
    "numels negative": (packs(9), packs(9), [-1], ValueError, ["numels[0] = -1 is negative"]),
    "packed size wrong": (packs(9, 3), packs(9, 3), [9, 9], ValueError,
                          ["masks_a[1] has shape [1]", "numels[1] = 9", "uint8 [2]"]),
    "packed not 1-D": ([torch.zeros(2, 2, dtype=torch.uint8)],
                       [torch.zeros(2, 2, dtype=torch.uint8)], [32], ValueError,
                       ["masks_a[0] has shape [2, 2]"]),
    "numels not int": (packs(9), packs(9), [9.0], TypeError, ["numels[0] must be an int"]),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_errors(target, case):
    a, b, numels, exc, needles = ERRORS[case]
    a = [t.to(target) if isinstance(t, torch.Tensor) else t for t in a]
    b = [t.to(target) if isinstance(t, torch.Tensor) else t for t in b]
    for impl in (lth_fast.mask_distance, reference.mask_distance):
        with pytest.raises(exc) as info:
            impl(a, b, numels=numels)
        message = str(info.value)
        assert "\n" not in message.strip(), f"{impl.__module__}: not one line: {message!r}"
        assert message.startswith("mask_distance: "), message
        for needle in needles:
            assert needle in message, f"{impl.__module__}: {needle!r} not in {message!r}"


def test_op_level_errors_match_reference():
    """The op itself (its CPU kernel) raises what the reference's checks raise."""
    op = torch.ops.lth_fast.mask_distance.default
    for case in ("shapes differ", "numels for bool", "numels short", "packed size wrong",
                 "numels negative", "numels empty", "lengths differ"):
        a, b, numels, exc, needles = ERRORS[case]
        for impl in (op, reference.mask_distance_counts):
            with pytest.raises(exc) as info:
                impl(a, b, numels or [])
            for needle in needles:
                assert needle in str(info.value), f"{case}: {impl}: {info.value}"


def test_devices_differ():
    a, b = bools(3, 4), bools(3, 4)
    b[1] = b[1].to("meta")
    for impl in (lth_fast.mask_distance, reference.mask_distance):
        with pytest.raises(ValueError, match=r"masks_b\[1\] is on meta"):
            impl(a, b)
    a[1] = a[1].to("meta")
    b[1] = torch.ones(4, dtype=torch.bool)
    for impl in (lth_fast.mask_distance, reference.mask_distance):
        with pytest.raises(ValueError, match=r"masks_a\[1\] is on meta"):
            impl(a, b)


def test_dict_and_list_errors():
    a = {"x": torch.ones(3, dtype=torch.bool), "y": torch.ones(2, dtype=torch.bool)}
    for impl in (lth_fast.mask_distance, reference.mask_distance):
        with pytest.raises(ValueError, match="same keys in the same order"):
            impl(a, {"y": a["y"], "x": a["x"]})
        with pytest.raises(TypeError, match="both be dicts or both be lists"):
            impl(a, list(a.values()))
        with pytest.raises(TypeError, match="numels is a dict but the masks are lists"):
            impl(list(a.values()), list(a.values()), numels={"x": 3})
        packed = {n: pack_bits(m) for n, m in a.items()}
        with pytest.raises(ValueError, match="numels' keys"):
            impl(packed, packed, numels={"y": 2, "x": 3})


def test_fake_kernel_and_compile():
    """Meta tensors reach the fake kernel: the output's metadata, after the same checks."""
    a = [torch.ones(5, dtype=torch.bool, device="meta"), torch.ones(3, dtype=torch.bool,
                                                                     device="meta")]
    out = torch.ops.lth_fast.mask_distance.default(a, a, [])
    assert out.shape == (2,) and out.dtype == torch.long and out.device.type == "meta"
    with pytest.raises(ValueError, match="numels is only for bit-packed"):
        torch.ops.lth_fast.mask_distance.default(a, a, [5, 3])


def test_opcheck(gen):
    a, b = pairs([(100,), (3, 7)], gen, 0.5)
    torch.library.opcheck(torch.ops.lth_fast.mask_distance.default, (a, b, []))
    pa, pb = [pack_bits(m) for m in a], [pack_bits(m) for m in b]
    torch.library.opcheck(torch.ops.lth_fast.mask_distance.default, (pa, pb, [100, 21]))
