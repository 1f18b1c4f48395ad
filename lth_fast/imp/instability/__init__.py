"""Instability analysis (linear mode connectivity, Frankle, Dziugaite, Roy & Carbin, ICML 2020):
train two copies of a subnetwork from its weights at iteration k that differ only in data order,
and measure the error along the straight line between them. The subnetwork is stable at k when
the barrier (the largest error on the line minus the mean of its ends) is small.

    children.py  the copies, trained and kept (resumable)
    line.py      the weights at alpha, BatchNorm statistics, error and loss on a split
    pairs.py     one subnetwork's repeats: children and their line, kept
    barrier.py   the tidy rows -> barriers, the summary and the stability rule
    plots.py     the barrier against k, and the error along the line

The analysis of a finished run directory is lth_fast.imp.analyses.instability (`lth-fast
instability`); `lth-fast imp --rewind auto` probes level 1 with it (lth_fast.imp.rewind_probe).
This package imports nothing of the driver, so the driver can use it."""
