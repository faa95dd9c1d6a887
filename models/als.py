"""Implicit-feedback matrix factorization (implicit's ALS): member · item vectors, no biases."""

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from perkrank.config import AlsConfig
from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors


def train_als(
    data: TrainingData, config: AlsConfig, *, seed: int, threads: int
) -> AlternatingLeastSquares:
    """Fit implicit's ALS on `data.user_items` (confidence = alpha · user_items)."""
    # implicit's solver threads do the work; a threaded BLAS inside them only slows it down.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            dtype=np.float32,
            num_threads=threads,
            random_state=seed,
        )
        model.fit(data.user_items, show_progress=False)
    return model


def fit_als(data: TrainingData, config: AlsConfig, *, seed: int, threads: int) -> Factors:
    """Fit ALS and export its vectors.

    Parameters
    ----------
    data:
        Training members × items; only `user_items` is used.
    config:
        Factors, regularization, alpha (confidence scale) and iterations.
    seed, threads:
        Random state of the initial factors and number of solver threads.

    Returns
    -------
    Factors whose `member · item` is implicit's own score. ALS learns no feature vectors:
    members and items it never saw get zero vectors.
    """
    model = train_als(data, config, seed=seed, threads=threads)
    return als_factors(model, data)


def als_factors(model: AlternatingLeastSquares, data: TrainingData, name: str = "als") -> Factors:
    """A fitted implicit ALS model's vectors as Factors (no biases, no feature vectors)."""
    return Factors(
        member_ids=data.member_ids,
        member_vectors=model.user_factors,
        item_ids=data.item_ids,
        item_vectors=model.item_factors,
        item_biases=np.zeros(len(data.item_ids), dtype=np.float32),
        name=name,
    )
