"""Worker processes, spawned the same way on Linux and Windows, with numpy's BLAS on one thread in each.

Several processes that each let OpenBLAS start a thread per core fight over the cores: two built-in-simulator
workers on two cores ran at 37 frames/s each instead of 86 (docs/benchmarks.md). :func:`spawn_context` sets the
BLAS thread counts for the processes it starts (a value the user set is kept); :func:`run_jobs` runs jobs there or,
for one worker, in this process inside a context the caller gives (the renderer's users pass
``collector.builtin.blas.one_blas_thread``, so that one process computes what several workers compute).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import TypeVar

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

Job = TypeVar("Job")
Result = TypeVar("Result")


def spawn_context():
    """The ``spawn`` multiprocessing context; processes started from it run numpy's BLAS on one thread."""
    for name in BLAS_THREAD_VARIABLES:
        os.environ.setdefault(name, "1")  # read when a child imports numpy
    return mp.get_context("spawn")


def run_jobs(fn: Callable[[Job], Result], jobs: Iterable[Job], workers: int, ordered: bool = False,
             here: Callable[[], AbstractContextManager] = nullcontext) -> Iterator[Result]:
    """``fn`` over ``jobs``, yielding each result as it comes (in the jobs' order if ``ordered``): in this process,
    inside ``here()``, for one worker or one job, else in up to ``workers`` spawned processes (numpy's BLAS on one
    thread in each). ``fn`` must be importable (a module-level function)."""
    jobs = list(jobs)
    if workers <= 1 or len(jobs) <= 1:
        with here():
            for job in jobs:
                yield fn(job)
        return
    with spawn_context().Pool(processes=min(workers, len(jobs))) as pool:
        yield from (pool.imap if ordered else pool.imap_unordered)(fn, jobs)
