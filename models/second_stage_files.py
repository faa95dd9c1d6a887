"""A `SecondStage` on disk, without pickles: `ranker.json` (the linear ranker, `to_json`),
`trees.json` when the stage has trees (`models.tree_ranker`, node arrays as JSON),
`sizes.json` (candidate sizes) and `purchase_stats.npz` (every `PurchaseStats` array, the
sparse member × category counts as CSR parts, and the region names). numpy only.

Loaded, the member × category counts become a dense array when small enough
(`DENSE_CATEGORY_CELLS`): `pair_features` indexes them alike, a dense array much faster.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from perkrank.features.ranker_features import PurchaseStats
from perkrank.models.linear_ranker import LinearRanker
from perkrank.models.second_stage import CandidateSizes, SecondStage
from perkrank.models.tree_ranker import TreeRanker

RANKER_FILE, SIZES_FILE, STATS_FILE = "ranker.json", "sizes.json", "purchase_stats.npz"
TREES_FILE = "trees.json"
CATEGORIES = "member_categories"
REGION_IDS = "region_ids"
DENSE_CATEGORY_CELLS = 50_000_000
"""Member × category cells up to which the counts are held dense (float32)."""


def save_second_stage(stage: SecondStage, directory: Path) -> Path:
    """Write `stage` into `directory` (created)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / RANKER_FILE).write_text(stage.ranker.to_json())
    if stage.trees is not None:
        (directory / TREES_FILE).write_text(stage.trees.to_json())
    (directory / SIZES_FILE).write_text(json.dumps(dataclasses.asdict(stage.sizes), indent=1))
    arrays = {
        field.name: np.asarray(getattr(stage.stats, field.name))
        for field in dataclasses.fields(PurchaseStats)
        if field.name != CATEGORIES
    }
    categories = sp.csr_matrix(stage.stats.member_categories)
    arrays |= {
        f"{CATEGORIES}.data": categories.data,
        f"{CATEGORIES}.indices": categories.indices,
        f"{CATEGORIES}.indptr": categories.indptr,
        f"{CATEGORIES}.shape": np.asarray(categories.shape),
        REGION_IDS: np.asarray(stage.region_ids, dtype=str),
    }
    with open(directory / STATS_FILE, "wb") as file:
        np.savez(file, **arrays)
    return directory


def load_second_stage(directory: Path) -> SecondStage:
    """A stage written by `save_second_stage` (raises ValueError naming a missing array)."""
    with np.load(directory / STATS_FILE, allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    try:
        categories = sp.csr_matrix(
            (
                arrays.pop(f"{CATEGORIES}.data"),
                arrays.pop(f"{CATEGORIES}.indices"),
                arrays.pop(f"{CATEGORIES}.indptr"),
            ),
            shape=tuple(arrays.pop(f"{CATEGORIES}.shape")),
        )
        region_ids = arrays.pop(REGION_IDS)
        stats = PurchaseStats(**arrays, member_categories=_held(categories))
    except (KeyError, TypeError) as error:
        raise ValueError(f"{directory / STATS_FILE}: not purchase statistics: {error}") from error
    trees = None
    if (directory / TREES_FILE).exists():
        try:
            trees = TreeRanker.from_json((directory / TREES_FILE).read_text())
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{directory / TREES_FILE}: not a tree ranker: {error}") from error
    return SecondStage(
        ranker=LinearRanker.from_json((directory / RANKER_FILE).read_text()),
        stats=stats,
        region_ids=region_ids,
        sizes=CandidateSizes(**json.loads((directory / SIZES_FILE).read_text())),
        trees=trees,
    )


def _held(categories: sp.csr_matrix) -> sp.csr_matrix | np.ndarray:
    """Dense float32 when small enough, else the CSR matrix."""
    rows, columns = categories.shape
    return (
        categories.toarray().astype(np.float32)
        if rows * columns <= DENSE_CATEGORY_CELLS
        else categories
    )
