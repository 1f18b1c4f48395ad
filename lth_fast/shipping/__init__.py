"""Shipping a ticket: the compact file format (format.py: bit-packed masks, only the kept
weights, the never-pruned tensors and the architecture) that `lth-fast export` writes from a
finished IMP level (the export analysis, lth_fast.imp.analyses.export); load_exported rebuilds
the model from it alone; inference counts its multiply-adds and times it.

    from lth_fast.imp import export_run
    from lth_fast.shipping import load_exported
    export_run("runs/lenet_mnist5k-s0", level=10, dtype="float16", out="lenet-l10.safetensors")
    model = load_exported("lenet-l10.safetensors")

An untrained ticket (a mask plus its rewind point) is not exported here: a ticket file
(Pruner.save_ticket) stores the rewind point densely, and "init seed + mask" storage is not
supported (it would tie a file to torch's random-number streams and to the model's
initialiser staying the same)."""
from .format import Exported, read_exported
from .inference import count_macs, measure_latency
from .load import load_exported


__all__ = ["load_exported", "read_exported", "Exported",
           "count_macs", "measure_latency"]
