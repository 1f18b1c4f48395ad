"""Shipping a ticket: `lth-fast export` writes one finished IMP level as one compact
safetensors file (format.py: bit-packed masks, only the kept weights, the never-pruned tensors
and the architecture); load_exported rebuilds the model from it alone; inference counts its
multiply-adds and times it.

    from lth_fast.shipping import export_run, load_exported
    export_run("runs/lenet_mnist5k-s0", level=10, dtype="float16", out="lenet-l10.safetensors")
    model = load_exported("lenet-l10.safetensors")

An untrained ticket (a mask plus its rewind point) is not exported here: a ticket file
(Pruner.save_ticket) stores the rewind point densely, and "init seed + mask" storage is not
supported (it would tie a file to torch's random-number streams and to the model's
initialiser staying the same)."""
from .format import Exported, read_exported
from .inference import count_macs, measure_latency
from .load import load_exported


def __getattr__(name: str):
    # export_run reads run directories (lth_fast.imp): imported when asked for, so that loading
    # a shipped file needs nothing of the IMP driver
    if name in ("export_run", "ExportUsageError"):
        from . import export
        return getattr(export, name)
    raise AttributeError(f"module 'lth_fast.shipping' has no attribute {name!r}")


__all__ = ["export_run", "ExportUsageError", "load_exported", "read_exported", "Exported",
           "count_macs", "measure_latency"]
