"""Components of several cutoffs fitted side by side: each once, results in the fitters' order,
cutoffs in the order submitted (the order the pipeline waits on them), slowest component
first within a cutoff, and LightFM fits of two cutoffs free to overlap."""

import threading
from collections import Counter
from datetime import date

import numpy as np
import pytest

from perkrank.config import TrainConfig
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.models.factors import Factors
from perkrank.training import components
from perkrank.training.fitting import fitting_pool, submit_fits

WAIT = 60
"""Seconds an event may take before the test fails instead of hanging (never slept)."""


def constant_model(name: str, calls: Counter | None = None):
    def fit(data) -> Factors:
        if calls is not None:
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


def recording(started: list, name: str, label: str):
    def fit(data):
        started.append((name, label))
        return constant_model(name)(data)

    return fit


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_each_fitter_runs_once_on_the_data_and_results_keep_the_fitters_order(workers):
    calls: Counter = Counter()
    names = ["popularity", "als", "repeat", "lightfm", "bpr"]
    fitters = {name: constant_model(name, calls) for name in names}

    with fitting_pool(workers) as pool:
        futures = submit_fits(pool, "2025-01-01", fitters, "data")
        models = {name: future.result() for name, future in futures.items()}

    assert list(models) == names
    assert [factors.name for factors in models.values()] == names
    assert calls == Counter({(name, "data"): 1 for name in names})


def test_a_failing_fit_raises_its_error():
    def broken(data):
        raise ValueError("no interactions")

    fitters = {"als": broken, "repeat": constant_model("repeat")}
    with pytest.raises(ValueError, match="no interactions"), fitting_pool(2) as pool:
        submit_fits(pool, "2025-01-01", fitters, "data")["als"].result()


@pytest.mark.parametrize(
    ("components_", "expected"),
    [
        (("repeat", "als", "lightfm"), ("lightfm", "als", "repeat")),
        (("popularity", "bpr", "repeat", "als"), ("bpr", "als", "popularity", "repeat")),
        (("own_pop", "regional_popularity"), ("own_pop", "regional_popularity")),
    ],
)
def test_cutoffs_start_in_the_order_submitted_slowest_component_first(components_, expected):
    started: list = []
    labels = ("validation", "test", "served")
    with fitting_pool(1) as pool:
        submitted = [
            submit_fits(pool, label, {n: recording(started, n, label) for n in components_}, "d")
            for label in labels
        ]
        assert [list(futures) for futures in submitted] == [list(components_)] * 3
        for futures in submitted:
            for future in futures.values():
                future.result()
    assert started == [(name, label) for label in labels for name in expected]


def test_lightfm_fits_of_two_cutoffs_run_side_by_side():
    """No LightFM lane of its own: the validation fit is still running (it waits for the
    test fit to start) when the test cutoff's LightFM fit starts on the other worker."""
    test_started = threading.Event()

    def validation_lightfm(data):
        assert test_started.wait(WAIT), "the test cutoff's LightFM fit never started"
        return constant_model("lightfm")(data)

    def test_lightfm(data):
        test_started.set()
        return constant_model("lightfm")(data)

    with fitting_pool(2) as pool:
        validation = submit_fits(
            pool, "validation", {"lightfm": validation_lightfm, "repeat": constant_model("r")}, 0
        )
        test = submit_fits(pool, "test", {"lightfm": test_lightfm}, 0)
        assert test["lightfm"].result().name == "lightfm"
        assert validation["lightfm"].result().name == "lightfm"


def test_start_components_submits_the_plan_cutoff_by_cutoff(tmp_path, monkeypatch):
    """Cutoffs in the plan's order (the pipeline's waiting order), each cutoff's fits right
    after its features: the first cutoff's fit starts before the second's features exist."""
    generate(tmp_path, members=60, months=3, seed=5, start=date(2025, 1, 1))
    dataset = load_dataset(tmp_path)
    events: list[str] = []
    first_fit = threading.Event()
    features = components.cutoff_features

    def counted_features(data, moment, config):
        if moment.date() == date(2025, 3, 1):
            assert first_fit.wait(WAIT), "the first cutoff's fits waited for the second's features"
        events.append(f"features {moment.date()}")
        return features(data, moment, config)

    def fitters(config):
        def fit(name):
            def run(data):
                events.append(f"fit {name}")
                first_fit.set()
                return constant_model(name)(data)

            return run

        return {name: fit(name) for name in ("repeat", "lightfm")}

    monkeypatch.setattr(components, "cutoff_features", counted_features)
    monkeypatch.setattr(components, "component_fitters", fitters)
    plan = {date(2025, 2, 1): ["repeat", "lightfm"], date(2025, 3, 1): ["lightfm"]}
    with fitting_pool(1) as pool:
        waiters = components.start_components(dataset, plan, TrainConfig(), pool)
        assert list(waiters) == list(plan)
        fitted = {cutoff: waiter() for cutoff, waiter in waiters.items()}
    assert [sorted(f.models) for f in fitted.values()] == [["lightfm", "repeat"], ["lightfm"]]
    assert events[0] == "features 2025-02-01"
    assert events.index("fit lightfm") < events.index("features 2025-03-01")
    assert [e for e in events if e.startswith("fit")] == [
        "fit lightfm",
        "fit repeat",
        "fit lightfm",
    ]
