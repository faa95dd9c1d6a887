"""Components of one cutoff fitted side by side: each once, results in the fitters' order."""

import threading
from collections import Counter

import numpy as np
import pytest

from perkrank.models.factors import Factors
from perkrank.training.fitting import SERIAL, fitting_pool, submit_fits


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


@pytest.mark.parametrize("workers", [2, 3])
def test_serial_components_fit_one_after_another_on_their_own_thread(workers):
    threads: dict[str, set[int]] = {"serial": set(), "other": set()}

    def recording(name, label):
        def fit(data):
            threads["serial" if name in SERIAL else "other"].add(threading.get_ident())
            return constant_model(name, Counter())(data)

        return fit

    cutoffs = [
        (label, {name: recording(name, label) for name in ("lightfm", "als", "repeat")}, "data")
        for label in ("validation", "test", "served")
    ]
    with fitting_pool(workers) as pool:
        for per_cutoff in submit_fits(pool, cutoffs):
            for future in per_cutoff.values():
                future.result()

    assert SERIAL == ("lightfm",)
    assert len(threads["serial"]) == 1  # one thread: three LightFM fits never overlap
    assert not threads["serial"] & threads["other"]
    assert 1 <= len(threads["other"]) <= workers - 1
