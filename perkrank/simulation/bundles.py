"""Serving bundles that know the planted tastes up to noise: champions and challengers of
known quality for simulated pilots.

The ranker scores a member's item by (t + noise · z) · f / sqrt(D): the planted taste t, a
fixed standard-normal draw z per member (the same for every noise level, so a noisier model is
a blurrier version of the same one) and the item factors f; the fallback is the regional
popularity fitted on the purchases, as training fits it. Less noise, better lists.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from perkrank.config import InteractionConfig
from perkrank.features.dataset import Dataset
from perkrank.features.interactions import build_training_data
from perkrank.features.synthetic.program import CATEGORIES, TASTE_DIMENSIONS
from perkrank.features.synthetic.world import world_of
from perkrank.features.vocabulary import item_id
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.popularity import fit_popularity


def taste_bundle(data_dir: Path, dataset: Dataset, noise: float, seed: int = 0) -> Bundle:
    """A bundle ranking by the planted tastes blurred by `noise` (see the module docstring)."""
    program, members, _ = world_of(data_dir)
    blur = np.random.default_rng(seed).normal(0.0, 1.0, members.tastes.shape)
    items = [
        item_id(program.partner_ids[partner], CATEGORIES[category])
        for partner, category in zip(program.item_partner, program.item_category, strict=True)
    ]
    ranker = Factors(
        member_ids=members.member_ids,
        member_vectors=(members.tastes + noise * blur) / np.sqrt(TASTE_DIMENSIONS),
        item_ids=items,
        item_vectors=program.item_factors,
        item_biases=np.zeros(len(items)),
        name=f"tastes+noise{noise:g}",
    )
    last_day = dataset.purchases["ts"].max().date()
    moment = datetime.combine(last_day + timedelta(days=1), datetime.min.time())
    fallback = fit_popularity(build_training_data(dataset, moment, InteractionConfig()))
    return Bundle(ranker=ranker, fallback=fallback, meta={"model": ranker.name, "noise": noise})
