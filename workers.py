"""Worker processes, spawned the same way on Linux and Windows, with numpy's BLAS on one thread in each.

Several processes that each let OpenBLAS start a thread per core fight over the cores: two built-in-simulator
workers on two cores ran at 37 frames/s each instead of 86 (docs/benchmarks.md). :func:`spawn_context` sets the
BLAS thread counts for the processes it starts (a value the user set is kept). Standard library only.
"""

from __future__ import annotations

import multiprocessing as mp
import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def spawn_context():
    """The ``spawn`` multiprocessing context; processes started from it run numpy's BLAS on one thread."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")  # read when a child imports numpy
    return mp.get_context("spawn")
