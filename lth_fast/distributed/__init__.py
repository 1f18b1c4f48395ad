"""Selection across ranks: prune_ over FSDP2 / HSDP shards or per-rank torch.chunk shards with
a process group, exact and with integer collectives only (select), DDP replicas checked by
checksum (verify_replicas), and audit() to record what was sent (comm)."""
from .comm import Call, audit
from .prune import mask_checksums, prune_, verify_replicas
from .select import RankError
from .shards import chunk_rows, shard_of, unsharded

__all__ = ["prune_", "verify_replicas", "mask_checksums", "audit", "Call", "RankError",
           "chunk_rows", "shard_of", "unsharded"]
