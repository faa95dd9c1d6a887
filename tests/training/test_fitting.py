"""Components of one cutoff fitted side by side: each once, results in the fitters' order."""

from collections import Counter

import numpy as np
import pytest

from perkrank.models.factors import Factors
from perkrank.training.fitting import fit_models


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

    models = fit_models(fitters, "data", workers=workers)

    assert list(models) == names
    assert [factors.name for factors in models.values()] == names
    assert calls == Counter({(name, "data"): 1 for name in names})


def test_a_failing_fit_raises_its_error():
    def broken(data):
        raise ValueError("no interactions")

    with pytest.raises(ValueError, match="no interactions"):
        fit_models({"als": broken, "repeat": constant_model("repeat", Counter())}, "d", workers=2)
