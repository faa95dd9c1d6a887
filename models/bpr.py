"""Bayesian Personalized Ranking (implicit's BPR): member · item vectors plus an item bias."""

import numpy as np
from implicit.cpu.bpr import BayesianPersonalizedRanking
from threadpoolctl import threadpool_limits

from perkrank.config import BprConfig
from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors
from perkrank.progress import Counter, every_quarter


def train_bpr(
    data: TrainingData, config: BprConfig, *, seed: int, threads: int
) -> BayesianPersonalizedRanking:
    """Fit implicit's BPR on the members × items pattern of `data.user_items`."""
    with threadpool_limits(1, "blas"):
        model = BayesianPersonalizedRanking(
            factors=config.factors,
            learning_rate=config.learning_rate,
            regularization=config.regularization,
            iterations=config.iterations,
            dtype=np.float32,
            num_threads=threads,
            random_state=seed,
        )
        progress = Counter(
            "bpr iteration", config.iterations, every=every_quarter(config.iterations)
        )
        model.fit(data.user_items, show_progress=False, callback=lambda *_: progress.advance())
    return model


def fit_bpr(data: TrainingData, config: BprConfig, *, seed: int, threads: int) -> Factors:
    """Fit BPR and export its vectors.

    Parameters
    ----------
    data:
        Training members × items; only which cells of `user_items` are non-zero matters.
    config:
        Factors, learning rate, regularization and iterations (epochs).
    seed, threads:
        Random state of the initial factors and sampling, and number of threads (more than
        one makes the updates, and so the result, depend on thread timing).

    Returns
    -------
    Factors whose `member · item + item_bias` is implicit's own score: implicit keeps the
    item bias as the last factor column (the member's last column is a constant 1), here it
    becomes `item_biases`. Members BPR never saw get a zero vector, i.e. the item biases.
    """
    return bpr_factors(train_bpr(data, config, seed=seed, threads=threads), data)


def bpr_factors(model: BayesianPersonalizedRanking, data: TrainingData) -> Factors:
    """Export a fitted BPR model, moving its bias column into `item_biases`."""
    return Factors(
        member_ids=data.member_ids,
        member_vectors=model.user_factors[:, :-1],
        item_ids=data.item_ids,
        item_vectors=model.item_factors[:, :-1],
        item_biases=model.item_factors[:, -1],
        name="bpr",
    )
