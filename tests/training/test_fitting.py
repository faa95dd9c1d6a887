"""Components of one cutoff fitted side by side: each once, results in the fitters' order."""

from collections import Counter

import numpy as np
import pytest

from perkrank.models.factors import Factors
from perkrank.training.fitting import fitting_pool, submit_fits


def constant_model(name: str, calls: Counter):
    def fit(data: str) -> Factors:
        calls[(name, data)] += 1
        return Factors(
            member_ids=np.array(["m1"]),
            member_vectors=np.ones((1, 1)),
            item_ids=np.array(["i1"]),
            item_vectors=np.ones((1, 1)),
            item_biases=np.zeros(1),
            name=name,
        )

    return fit


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_each_fitter_runs_once_on_the_data_and_results_keep_the_fitters_order(workers):
    calls: Counter = Counter()
    names = ["popularity", "als", "repeat", "lightfm", "bpr"]
    fitters = {name: constant_model(name, calls) for name in names}

    with fitting_pool(workers) as pool:
        (futures,) = submit_fits(pool, [("2025-01-01", fitters, "data")])
        models = {name: future.result() for name, future in futures.items()}

    assert list(models) == names
    assert [factors.name for factors in models.values()] == names
    assert calls == Counter({(name, "data"): 1 for name in names})


def test_a_failing_fit_raises_its_error():
    def broken(data):
        raise ValueError("no interactions")

    fitters = {"als": broken, "repeat": constant_model("repeat", Counter())}
    with pytest.raises(ValueError, match="no interactions"), fitting_pool(2) as pool:
        (futures,) = submit_fits(pool, [("2025-01-01", fitters, "data")])
        futures["als"].result()


def test_fits_of_several_cutoffs_start_slowest_component_first():
    started = []

    def recording(name, label):
        def fit(data):
            started.append((name, label))
            return constant_model(name, Counter())(data)

        return fit

    cutoffs = [
        (label, {name: recording(name, label) for name in ("repeat", "als", "lightfm")}, "data")
        for label in ("validation", "test")
    ]
    with fitting_pool(1) as pool:
        futures = submit_fits(pool, cutoffs)
        assert [list(per_cutoff) for per_cutoff in futures] == [["repeat", "als", "lightfm"]] * 2
    assert started == [
        ("lightfm", "validation"),
        ("lightfm", "test"),
        ("als", "validation"),
        ("als", "test"),
        ("repeat", "validation"),
        ("repeat", "test"),
    ]
