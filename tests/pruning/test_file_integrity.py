"""Files prove their integrity: a ticket, a masks file, an exported ticket and a run's level
files carry or are compared with a checksum of their contents, so one changed byte of a value is
a one-line error on load, never a silently different ticket; and the same contents are written
as the same bytes (safetensors writes its header in no fixed order)."""
from __future__ import annotations

import os
import shutil

import pytest
import torch

from lth_fast import Pruner
from lth_fast.atomic import content_sha256, tensor_bytes
from lth_fast.imp.run_dir import RunDir
from lth_fast.pruning import ticket

from tests.helpers.training import Net

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GPT_RUN = os.path.join(ROOT, "tests", "fixtures", "behaviour", "gpt")


def _flip(path, offset_from_data: int) -> None:
    """Flips one byte of a safetensors file's data section (a tensor's value)."""
    data = bytearray(open(path, "rb").read())
    start = 8 + int.from_bytes(data[:8], "little")
    data[start + offset_from_data] ^= 0x10
    open(path, "wb").write(bytes(data))


def test_same_contents_same_bytes():
    masks = {"a": torch.rand(30, 7) > 0.5, "b": torch.rand(5) > 0.5}
    meta = {f"key{i}": str(i) for i in range(20)}   # enough keys to be reordered by a hash map
    tensors = {k: ticket.pack_bits(m) for k, m in masks.items()}
    first = tensor_bytes(tensors, meta, checksum=True)
    assert all(tensor_bytes(dict(reversed(list(tensors.items()))),
                            dict(reversed(list(meta.items()))), checksum=True) == first
               for _ in range(5))
    from safetensors.torch import load
    assert all(torch.equal(load(first)[k], tensors[k]) for k in tensors)


def test_a_flipped_byte_of_a_ticket_is_an_error(tmp_path):
    torch.manual_seed(0)
    pruner = Pruner(Net())
    pruner.snapshot()
    pruner.prune(0.3)
    path = tmp_path / "t.safetensors"
    pruner.save_ticket(path)
    again = tmp_path / "u.safetensors"
    pruner.save_ticket(again)
    assert path.read_bytes() == again.read_bytes()   # deterministic
    loaded = ticket.load(path)
    assert all(torch.equal(loaded.masks[n], pruner.masks[n]) for n in pruner.names)
    _flip(path, 3)    # a byte of the first mask's packed bits
    with pytest.raises(ValueError, match="does not match its own checksum"):
        ticket.load(path)
    with pytest.raises(ValueError, match="does not match its own checksum"):
        Pruner(Net()).restore_ticket(path)
    data = bytearray(ticket.to_bytes(pruner.mask_set))
    data[-1] ^= 0x01
    with pytest.raises(ValueError, match="does not match its own checksum"):
        ticket.from_bytes(bytes(data))


def test_a_ticket_written_before_checksums_still_loads(tmp_path):
    from safetensors.torch import save_file
    torch.manual_seed(0)
    pruner = Pruner(Net())
    pruner.snapshot()
    tensors, meta = ticket._contents(ticket.FORMAT, pruner.names, pruner.masks,
                                     pruner.mask_set.snapshot)
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata=meta)
    assert list(ticket.load(tmp_path / "old.safetensors").names) == list(pruner.names)


def test_masks_files_of_identical_runs_are_identical(tmp_path):
    names = ["x.weight", "y.weight"]
    masks = {n: torch.rand(40, 9) > 0.3 for n in names}
    from lth_fast.pruning.mask_set import MaskSet
    for i in range(3):
        ticket.save_masks(tmp_path / f"m{i}.safetensors", MaskSet(names, masks))
    blobs = {(tmp_path / f"m{i}.safetensors").read_bytes() for i in range(3)}
    assert len(blobs) == 1


@pytest.mark.parametrize("rel", ["level_02/checkpoint.safetensors",
                                 "level_01/masks.safetensors", "rewind_point.safetensors"])
def test_a_changed_value_of_a_finished_level_stops_a_resume(tmp_path, rel):
    run = tmp_path / "run"
    shutil.copytree(GPT_RUN, run)
    assert len(RunDir(run).finished_levels(log=lambda s: None)) == 3
    for offset in (0, 7, 64):
        shutil.copy(os.path.join(GPT_RUN, rel), run / rel)
        _flip(run / rel, offset)
        with pytest.raises(ValueError, match=f"{rel.split('/')[-1]} does not match the checksum"):
            RunDir(run).finished_levels(log=lambda s: None)


def test_the_run_checksum_is_the_content_checksum():
    from safetensors import safe_open
    path = os.path.join(GPT_RUN, "rewind_point.safetensors")
    with safe_open(path, framework="pt") as f:
        contents = {k: f.get_tensor(k) for k in f.keys()}
    from lth_fast.imp.run_dir import checksum
    assert checksum(path) == content_sha256(contents, {})


def test_a_flipped_byte_of_an_exported_ticket_is_an_error(tmp_path):
    from lth_fast import load_exported
    from lth_fast.imp import export_run
    out = tmp_path / "e.safetensors"
    export_run(GPT_RUN, 2, out=str(out))
    again = tmp_path / "f.safetensors"
    export_run(GPT_RUN, 2, out=str(again))
    assert out.read_bytes() == again.read_bytes()
    load_exported(out)
    for offset in (1, 200):
        shutil.copy(again, out)
        _flip(out, offset)
        with pytest.raises(ValueError, match="does not match its own checksum"):
            load_exported(out)


def test_a_missing_record_of_a_level_with_its_files_is_named_not_retrained(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(GPT_RUN, run)
    os.remove(run / "level_02" / "metrics.json")
    with pytest.raises(ValueError, match=r"level_02/metrics.json is missing, but the level's "
                                         r"masks and checkpoint are there: restore it, or "
                                         r"delete .*level_02/ to train level 2 again"):
        RunDir(run).finished_levels(log=lambda s: None)
    os.remove(run / "level_02" / "checkpoint.safetensors")   # a save cut short: retrained
    assert len(RunDir(run).finished_levels(log=lambda s: None)) == 2


def test_export_of_a_level_above_a_damaged_one_names_the_level_asked_for(tmp_path):
    from lth_fast.imp import export_run
    run = tmp_path / "run"
    shutil.copytree(GPT_RUN, run)
    _flip(run / "level_01" / "checkpoint.safetensors", 5)
    with pytest.raises(ValueError, match=r"--level 2: level 2 of .* is not finished as its run "
                                         r"left it, since level 1 below it is damaged: .*level_01"):
        export_run(str(run), 2, out=str(tmp_path / "e.safetensors"))
    with pytest.raises(ValueError, match=r"^.*level_01/checkpoint.safetensors does not match"):
        export_run(str(run), 1, out=str(tmp_path / "e.safetensors"))
