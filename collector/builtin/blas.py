"""numpy's BLAS on one thread in this process, as in every worker that ``workers.spawn_context`` starts.

OpenBLAS may round a matrix product differently with two threads than with one (the renderer's products did on a
2-core machine), so a one-process collection or drive runs inside :func:`one_blas_thread` to compute exactly what a
multi-worker run of the same seed computes (``workers.run_jobs(..., here=one_blas_thread)``).
"""

from __future__ import annotations

from contextlib import AbstractContextManager

from threadpoolctl import threadpool_limits


def one_blas_thread() -> AbstractContextManager:
    """Within it, numpy's BLAS runs on one thread in this process."""
    return threadpool_limits(limits=1, user_api="blas")
