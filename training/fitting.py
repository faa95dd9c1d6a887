"""Component models of several cutoffs fitted side by side on one small thread pool.

LightFM, BPR and ALS fit in compiled code that releases the GIL, so threads use both cores:
with `deterministic`, LightFM and BPR each run on one thread and would leave a core idle, and
the fits of the validation, test and served cutoffs do not depend on one another. Every fit
owns its random state, so the models do not depend on the order or the overlap. The slowest
fits of the cutoffs submitted together start first (over all of them) so the pool is not left
waiting on one at the end; cutoffs submitted earlier (`training.components.start_components`:
those the pipeline waits on first) start before them. The fits of the `SERIAL` components run
one after another on a thread of their own, the others side by side on the remaining workers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, NamedTuple

from threadpoolctl import threadpool_limits

from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors
from perkrank.progress import step

SLOWEST_FIRST = ("lightfm", "bpr", "als")
"""Components by fitting time on the synthetic benchmark, longest first; others follow."""
SERIAL = ("lightfm",)
"""Components whose fits never run side by side: a LightFM fit holds its feature matrices,
interactions and three embedding tables (~1 GiB at 1M members), and two at once were the
memory peak of `perkrank train` at that size. The longest fits, so a lane of their own still
keeps both cores busy: the other fits run on the other worker meanwhile."""
SERIAL_THREAD = "fit-serial"

Fitter = Callable[[TrainingData], Factors]


class FitPool(NamedTuple):
    """The threads fits run on (`fitting_pool`)."""

    shared: ThreadPoolExecutor
    """`workers` − 1 threads for the fits of the components not in `SERIAL`."""
    serial: ThreadPoolExecutor
    """One thread for the `SERIAL` components' fits (with one worker, also `shared`)."""


@contextmanager
def fitting_pool(workers: int) -> Iterator[FitPool]:
    """`workers` threads for `submit_fits`; BLAS stays on one thread meanwhile (the solvers
    bring their own threads, and the BLAS limit is process-wide, so fits running side by side
    could not each set and restore it). Pending fits are cancelled on an error."""
    serial = ThreadPoolExecutor(max_workers=1, thread_name_prefix=SERIAL_THREAD)
    pools = [serial]
    if workers > 1:
        pools.append(ThreadPoolExecutor(max_workers=workers - 1, thread_name_prefix="fit"))
    try:
        with threadpool_limits(1, "blas"):
            yield FitPool(shared=pools[-1], serial=serial)
    except BaseException:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    for pool in pools:
        pool.shutdown(wait=True)


def submit_fits(
    pool: FitPool, cutoffs: Sequence[tuple[Any, Mapping[str, Fitter], TrainingData]]
) -> list[dict[str, Future[Factors]]]:
    """Submit every (label, fitters, data) cutoff's fits, slowest component first over all of
    them (the `SERIAL` ones to their own thread); per cutoff, the futures in its fitters'
    order."""
    jobs = [
        (_rank(name), position, label, name, fitters[name], data)
        for position, (label, fitters, data) in enumerate(cutoffs)
        for name in fitters
    ]
    futures: list[dict[str, Future[Factors]]] = [{} for _ in cutoffs]
    for _, position, label, name, fit, data in sorted(jobs, key=lambda job: job[:2]):
        executor = pool.serial if name in SERIAL else pool.shared
        futures[position][name] = executor.submit(_fit, _title(name, label), fit, data)
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
