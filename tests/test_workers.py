"""Jobs in this process (inside the caller's context: BLAS on one thread for the renderer) or in spawned workers."""

from __future__ import annotations

import os

from threadpoolctl import threadpool_info

from sunnypilot_training.collector.builtin.blas import one_blas_thread
from sunnypilot_training.workers import BLAS_THREAD_VARIABLES, run_jobs


def _blas_threads(job: int) -> tuple[int, list[int]]:
    return job, [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_one_worker_runs_the_jobs_here_in_order_on_one_blas_thread() -> None:
    _, before = _blas_threads(0)
    results = list(run_jobs(_blas_threads, [3, 1, 2], workers=1, here=one_blas_thread))
    assert [job for job, _ in results] == [3, 1, 2]
    assert all(threads and set(threads) == {1} for _, threads in results)
    assert _blas_threads(0)[1] == before  # the limit ends with the jobs


def test_workers_run_the_jobs_in_order_with_blas_on_one_thread() -> None:
    names = [*BLAS_THREAD_VARIABLES, *BLAS_THREAD_VARIABLES]
    assert list(run_jobs(os.getenv, names, workers=2, ordered=True)) == [os.environ.get(n, "1") for n in names]
    assert sorted(run_jobs(abs, [-3, 2, -1], workers=2)) == [1, 2, 3]
