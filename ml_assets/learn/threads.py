"""Threads that fit the machine: every fit and every scoring of an estimator runs with at most
`settings.estimator_threads()` threads in its native libraries (OpenMP for the boosted trees,
OpenBLAS for the linear models), set through threadpoolctl.

A library's default is one thread per core, and an OpenMP thread waits for its fellows by
spinning: on a 2-core machine with one other busy process, a HistGradientBoostingClassifier
fit on 4 600 rows took 1.8 s with two threads and 0.85 s with one (0.7 s with either when the
machine was idle). LightGBM is given `n_jobs=0` (tasks.py), so it also takes its thread count
from OpenMP, and so from here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from ml_assets.store.settings import estimator_threads

if TYPE_CHECKING:
    from ml_assets.learn.tasks import ModelKind


@contextlib.contextmanager
def fitting_threads(kinds: Iterable[ModelKind] = ()) -> Iterator[int]:
    """Within it, native libraries use at most `estimator_threads()` threads; yields the count.

    threadpoolctl limits the libraries loaded when it is entered: the kinds about to be
    built are imported first (a model already loaded has brought its own).
    """
    from threadpoolctl import threadpool_limits

    for kind in kinds:
        kind.estimator_class()
    threads = estimator_threads()
    with threadpool_limits(limits=threads):
        yield threads
