"""Drop-ins for torch.nn modules whose work we can do on the fused kernels; today
lth_fast.nn.utils.prune, for torch.nn.utils.prune."""
