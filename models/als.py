"""Implicit-feedback matrix factorization (implicit's ALS): member · item vectors, no biases.

Fits on implicit's GPU ALS where `als.use_gpu` allows and implicit finds a CUDA device
(`implicit.gpu.HAS_CUDA`), else on its CPU ALS; the fitted model is always the CPU one.
"""

from typing import Literal

import implicit.gpu
import implicit.gpu.als
import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from perkrank.config import AlsConfig, ConfigError
from perkrank.features.training_data import TrainingData
from perkrank.models.factors import Factors


def train_als(
    data: TrainingData, config: AlsConfig, *, seed: int, threads: int, gpu: bool | None = None
) -> AlternatingLeastSquares:
    """Fit implicit's ALS on `data.user_items` (confidence = alpha · user_items), on the GPU
    when `gpu` (None: `on_gpu(config)`); returns the CPU model either way."""
    if on_gpu(config) if gpu is None else gpu:
        gpu_model = implicit.gpu.als.AlternatingLeastSquares(
            factors=config.factors,
            regularization=config.regularization,
            alpha=config.alpha,
            iterations=config.iterations,
            dtype=np.float32,
            random_state=seed,
        )
        gpu_model.fit(data.user_items, show_progress=False)
        return gpu_model.to_cpu()
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


def gpu_chosen(setting: Literal["auto"] | bool, has_cuda: bool) -> bool:
    """Whether ALS fits on the GPU: `setting` is `als.use_gpu`, `has_cuda` whether implicit
    found a CUDA device. Raises ConfigError for `true` without one."""
    if setting == "auto":
        return has_cuda
    if setting is True and not has_cuda:
        raise ConfigError(
            "als.use_gpu is true but implicit finds no CUDA device (implicit.gpu.HAS_CUDA is "
            "false: no GPU, or implicit installed without its CUDA build); set als.use_gpu to "
            "auto or false"
        )
    return bool(setting)


def on_gpu(config: AlsConfig) -> bool:
    """Whether ALS fits on the GPU on this machine under `config.use_gpu` (`gpu_chosen`)."""
    return gpu_chosen(config.use_gpu, implicit.gpu.HAS_CUDA)


def fit_als(
    data: TrainingData, config: AlsConfig, *, seed: int, threads: int, gpu: bool | None = None
) -> Factors:
    """Fit ALS and export its vectors.

    Parameters
    ----------
    data:
        Training members × items; only `user_items` is used.
    config:
        Factors, regularization, alpha (confidence scale) and iterations.
    seed, threads:
        Random state of the initial factors and number of solver threads (CPU).
    gpu:
        Fit on implicit's GPU ALS; None: as `config.use_gpu` decides on this machine.

    Returns
    -------
    Factors whose `member · item` is implicit's own score. ALS learns no feature vectors:
    members and items it never saw get zero vectors.
    """
    model = train_als(data, config, seed=seed, threads=threads, gpu=gpu)
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
