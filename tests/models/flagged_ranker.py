"""A random linear ranker with a missing flag on every pair-feature column (shared by tests)."""

import numpy as np

from perkrank.features.ranker_features import FEATURE_NAMES
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.second_stage import SERVED_FEATURES


def flagged(seed: int) -> LinearRanker:
    """A ranker with a missing flag on every pair-feature column and non-trivial scaling."""
    rng = np.random.default_rng(seed)
    missing = tuple(range(len(FEATURE_NAMES)))
    width = len(SERVED_FEATURES) + len(missing)
    return LinearRanker(
        SERVED_FEATURES,
        missing,
        rng.normal(size=width),
        rng.uniform(0.5, 2.0, size=width),
        rng.normal(size=width),
        float(rng.normal()),
    )
