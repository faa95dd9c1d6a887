"""Component models of several cutoffs fitted side by side on one small thread pool.

LightFM, BPR and ALS fit in compiled code that releases the GIL, so threads use both cores:
with `deterministic`, LightFM and BPR each run on one thread and would leave a core idle, and
the fits of the validation, test and served cutoffs do not depend on one another. Every fit
owns its random state, so the models do not depend on the order or the overlap. The slowest
fits of the cutoffs submitted together start first (over all of them) so the pool is not left
waiting on one at the end; cutoffs submitted earlier (`training.components.start_components`:
those the pipeline waits on first) start before them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors
from perkrank.progress import step

SLOWEST_FIRST = ("lightfm", "bpr", "als")
"""Components by fitting time on the synthetic benchmark, longest first; others follow."""

Fitter = Callable[[TrainingData], Factors]


@contextmanager
def fitting_pool(workers: int) -> Iterator[ThreadPoolExecutor]:
    """A pool of `workers` threads for `submit_fits`; BLAS stays on one thread meanwhile (the
    solvers bring their own threads, and the BLAS limit is process-wide, so fits running side
    by side could not each set and restore it). Pending fits are cancelled on an error."""
    pool = ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="fit")
    try:
        with threadpool_limits(1, "blas"):
            yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def submit_fits(
    pool: ThreadPoolExecutor, cutoffs: Sequence[tuple[Any, Mapping[str, Fitter], TrainingData]]
) -> list[dict[str, Future[Factors]]]:
    """Submit every (label, fitters, data) cutoff's fits, slowest component first over all of
    them; per cutoff, the futures in its fitters' order."""
    jobs = [
        (_rank(name), position, label, name, fitters[name], data)
        for position, (label, fitters, data) in enumerate(cutoffs)
        for name in fitters
    ]
    futures: list[dict[str, Future[Factors]]] = [{} for _ in cutoffs]
    for _, position, label, name, fit, data in sorted(jobs, key=lambda job: job[:2]):
        futures[position][name] = pool.submit(_fit, _title(name, label), fit, data)
    return [
        {name: submitted[name] for name in fitters}
        for submitted, (_, fitters, _) in zip(futures, cutoffs, strict=True)
    ]


def _fit(title: str, fit: Fitter, data: TrainingData) -> Factors:
    with step(title):
        return fit(data)


def _title(name: str, label: Any) -> str:
    return f"fit {name} before {label}" if label else f"fit {name}"


def _rank(name: str) -> int:
    return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)
