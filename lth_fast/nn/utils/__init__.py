"""lth_fast.nn.utils.prune: torch.nn.utils.prune with its magnitude and random selection on the
fused prune_."""
