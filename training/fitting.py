"""Component models of several cutoffs fitted side by side on one small thread pool.

LightFM, BPR and ALS fit in compiled code that releases the GIL, so threads use both cores:
with `deterministic`, LightFM and BPR each run on one thread and would leave a core idle, and
the fits of the validation, test and served cutoffs do not depend on one another. Every fit
owns its random state, so the models do not depend on the order or the overlap.

Order (critical path first): the pool starts fits in the order they were submitted, and
`training.components.start_components` submits each cutoff as soon as its features are
built, in the order the pipeline waits on them (validation, earlier snapshots, test,
served); within a cutoff the slowest component starts first. So the fits the next step needs
finish first while the others fill the other worker. LightFM has no lane of its own (that
put all of its fits on one chain, ~1,700 s of 1,920 at 1M members): with two workers at most
two of its fits overlap (~1 GiB each at 1M), usually the validation and test cutoffs' before
the second stage's fit, while the served cutoff's runs beside the test evaluation. Each fit
stays on one thread: with more, LightFM's hogwild updates depend on thread timing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors
from perkrank.progress import step

SLOWEST_FIRST = ("lightfm", "bpr", "als")
"""Components by fitting time on the synthetic benchmark, longest first; others follow."""

FitPool = ThreadPoolExecutor
"""The threads fits run on (`fitting_pool`): first submitted, first started."""
Fitter = Callable[[TrainingData], Factors]


@contextmanager
def fitting_pool(workers: int) -> Iterator[FitPool]:
    """`workers` threads for `submit_fits`; BLAS stays on one thread meanwhile (the solvers
    bring their own threads, and the BLAS limit is process-wide, so fits running side by side
    could not each set and restore it). Pending fits are cancelled on an error."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fit")
    try:
        with threadpool_limits(1, "blas"):
            yield pool
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def submit_fits(
    pool: FitPool, label: Any, fitters: Mapping[str, Fitter], data: TrainingData
) -> dict[str, Future[Factors]]:
    """Submit one cutoff's fits (after those submitted before), slowest component first; the
    futures in `fitters`' order."""
    futures = {
        name: pool.submit(_fit, _title(name, label), fitters[name], data)
        for name in sorted(fitters, key=_rank)
    }
    return {name: futures[name] for name in fitters}


def _fit(title: str, fit: Fitter, data: TrainingData) -> Factors:
    with step(title):
        return fit(data)


def _title(name: str, label: Any) -> str:
    return f"fit {name} before {label}" if label else f"fit {name}"


def _rank(name: str) -> int:
    return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)
