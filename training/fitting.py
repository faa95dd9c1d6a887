"""Component models of one cutoff fitted side by side on a small thread pool.

LightFM, BPR and ALS fit in compiled code that releases the GIL, so threads use both cores:
with `deterministic`, LightFM and BPR each run on one thread and would leave a core idle.
Every fit owns its random state, so the models do not depend on the order or the overlap.
The slowest fits start first so the pool is not left waiting on one at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors
from perkrank.progress import step

SLOWEST_FIRST = ("lightfm", "bpr", "als")
"""Components by fitting time on the synthetic benchmark, longest first; others follow."""

Fitter = Callable[[TrainingData], Factors]


def fit_models(
    fitters: Mapping[str, Fitter], data: TrainingData, *, workers: int
) -> dict[str, Factors]:
    """Every fitter applied to `data`, `workers` at a time; results in `fitters`' order."""

    def fit(name: str) -> Factors:
        with step(f"fit {name}"):
            return fitters[name](data)

    order = sorted(fitters, key=_rank)
    with ThreadPoolExecutor(max_workers=max(workers, 1)) as pool:
        futures = {name: pool.submit(fit, name) for name in order}
        return {name: futures[name].result() for name in fitters}


def _rank(name: str) -> int:
    return SLOWEST_FIRST.index(name) if name in SLOWEST_FIRST else len(SLOWEST_FIRST)
