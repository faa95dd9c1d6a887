"""ALS picks implicit's GPU or CPU solver from `als.use_gpu` and the machine's CUDA device."""

from typing import ClassVar

import implicit.gpu
import implicit.gpu.als
import numpy as np
import pytest
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from perkrank.config import AlsConfig, ConfigError, TrainConfig
from perkrank.models import als
from perkrank.training.components import component_fitters

CONFIG = AlsConfig(factors=4, regularization=1.0, iterations=5)


@pytest.mark.parametrize(
    ("setting", "has_cuda", "expected"),
    [
        ("auto", False, False),
        ("auto", True, True),
        (True, True, True),
        (False, True, False),
        (False, False, False),
    ],
)
def test_gpu_is_chosen_by_the_setting_and_the_device(setting, has_cuda, expected):
    assert als.gpu_chosen(setting, has_cuda) is expected


def test_gpu_required_without_a_cuda_device_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"als\.use_gpu is true but .*no CUDA device"):
        als.gpu_chosen(True, False)


@pytest.mark.parametrize(("text", "expected"), [("auto", "auto"), ("true", True), ("false", False)])
def test_the_setting_reads_auto_true_or_false_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv("PERKRANK_TRAIN_ALS__USE_GPU", text)
    assert TrainConfig().als.use_gpu == expected


def test_an_impossible_gpu_setting_fails_before_any_fit(monkeypatch):
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", False)
    config = TrainConfig(als=CONFIG.model_copy(update={"use_gpu": True}))
    with pytest.raises(ConfigError, match="no CUDA device"):
        component_fitters(config)


class _FakeGpuAls:
    """Stands in for implicit's GPU ALS on this CUDA-less machine: fits the CPU solver and
    hands it back from `to_cpu`, recording its arguments."""

    made: ClassVar[list[dict]] = []

    def __init__(self, **arguments):
        self.made.append(arguments)
        self.model = AlternatingLeastSquares(**arguments, num_threads=1)

    def fit(self, user_items, show_progress=True):
        with threadpool_limits(1, "blas"):
            self.model.fit(user_items, show_progress=show_progress)

    def to_cpu(self):
        return self.model


@pytest.mark.parametrize(("has_cuda", "gpu_fits"), [(True, 1), (False, 0)])
def test_auto_fits_on_the_gpu_solver_only_with_a_device(
    monkeypatch, checkerboard, has_cuda, gpu_fits
):
    _FakeGpuAls.made = []
    monkeypatch.setattr(implicit.gpu, "HAS_CUDA", has_cuda)
    monkeypatch.setattr(implicit.gpu.als, "AlternatingLeastSquares", _FakeGpuAls)
    factors = als.fit_als(checkerboard.data, CONFIG, seed=3, threads=1)
    assert len(_FakeGpuAls.made) == gpu_fits
    if gpu_fits:
        assert _FakeGpuAls.made[0]["factors"] == 4
        assert _FakeGpuAls.made[0]["random_state"] == 3
    cpu = als.fit_als(checkerboard.data, CONFIG, seed=3, threads=1, gpu=False)
    assert factors.member_vectors.shape == (len(checkerboard.data.member_ids), 4)
    np.testing.assert_allclose(factors.item_vectors, cpu.item_vectors, rtol=1e-4, atol=1e-5)
