"""A weighted sum of several models' scores, as one `Factors`.

Each component's vectors become one block of the blended vectors, with its member block
multiplied by weight / scale, so the blended dot product is Σ weight · score / scale. The scale
is the standard deviation of the component's scores on a seeded sample of member × item pairs,
which makes a weight mean the same for every component.
"""

from collections.abc import Iterable, Mapping, Sequence
from itertools import chain

import numpy as np
import scipy.sparse as sp

from perkrank.features.ids import IdMap
from perkrank.models import scoring
from perkrank.models.factors import Factors

SCALE_SAMPLE_SIZE = 256
"""Members and items sampled (each) to measure a component's score scale."""


def blend(
    components: Mapping[str, Factors],
    weights: Mapping[str, float],
    *,
    member_features: Mapping[str, Sequence[str]] | None = None,
    item_features: Mapping[str, Sequence[str]] | None = None,
    seed: int = 0,
) -> Factors:
    """Blend `components` into one Factors scoring Σ weight_c · score_c / scale_c.

    Parameters
    ----------
    components:
        Factors by component name ("als", "lightfm", "popularity", "repeat", ...).
    weights:
        Weight per component name; components with weight 0 (or none) are left out.
    member_features, item_features:
        Feature names by member id and item id, used for the members and items a component
        never saw but another did: such a row gets that component's feature-based vector
        (zeros where the component has no feature vectors), as the component would score it.
    seed:
        Seed of the sample on which each component's score scale is measured.

    Returns
    -------
    Factors over the union of the components' members, items and feature names; its score of
    any (member, item), known or built from features, equals the weighted sum of the
    component scores. At most one component may carry repeat scores.
    """
    unfitted = sorted(name for name, weight in weights.items() if weight and name not in components)
    if unfitted:
        raise ValueError(
            f"blend weights name components that were not given: {', '.join(unfitted)}"
        )
    kept = {name: factors for name, factors in components.items() if weights.get(name, 0.0)}
    if not kept:
        raise ValueError("every blend weight is zero")
    with_repeat = [name for name, factors in kept.items() if scoring.has_repeat(factors)]
    if len(with_repeat) > 1:
        raise ValueError(f"only one blended component may carry repeat scores: {with_repeat}")

    member_features = member_features or {}
    item_features = item_features or {}
    member_ids = _union(factors.member_ids for factors in kept.values())
    item_ids = _union(factors.item_ids for factors in kept.values())
    member_feature_ids = _union(factors.member_feature_ids for factors in kept.values())
    item_feature_ids = _union(factors.item_feature_ids for factors in kept.values())
    item_names = [list(item_features.get(item, ())) for item in item_ids]

    multipliers = {
        name: weights[name] / score_scale(factors, seed=seed) for name, factors in kept.items()
    }
    member_blocks, item_blocks, member_feature_blocks, item_feature_blocks = [], [], [], []
    item_biases = np.zeros(len(item_ids), dtype=np.float64)
    item_feature_biases = np.zeros(len(item_feature_ids), dtype=np.float64)
    for name, factors in kept.items():
        multiplier = multipliers[name]
        member_blocks.append(multiplier * _member_block(factors, member_ids, member_features))
        vectors, biases, _ = scoring.item_inputs(factors, item_ids, item_names)
        item_blocks.append(vectors)
        item_biases += multiplier * biases
        member_feature_vectors = _rows_by_id(
            factors.member_feature_ids, factors.member_feature_vectors, member_feature_ids
        )
        member_feature_blocks.append(multiplier * member_feature_vectors)
        item_feature_blocks.append(
            _rows_by_id(factors.item_feature_ids, factors.item_feature_vectors, item_feature_ids)
        )
        item_feature_biases += multiplier * _rows_by_id(
            factors.item_feature_ids, factors.item_feature_biases, item_feature_ids
        )

    repeat, repeat_weight = None, 0.0
    if with_repeat:
        source = kept[with_repeat[0]]
        repeat = _reindexed(source.repeat, source, member_ids, item_ids)
        repeat_weight = multipliers[with_repeat[0]] * source.repeat_weight

    return Factors(
        member_ids=member_ids,
        member_vectors=np.hstack(member_blocks),
        item_ids=item_ids,
        item_vectors=np.hstack(item_blocks),
        item_biases=item_biases,
        member_feature_ids=member_feature_ids,
        member_feature_vectors=np.hstack(member_feature_blocks),
        item_feature_ids=item_feature_ids,
        item_feature_vectors=np.hstack(item_feature_blocks),
        item_feature_biases=item_feature_biases,
        repeat=repeat,
        repeat_weight=repeat_weight,
        name="blend",
    )


def score_scale(factors: Factors, *, seed: int, sample_size: int = SCALE_SAMPLE_SIZE) -> float:
    """Standard deviation of the scores of sampled known members × items (1 if all equal)."""
    generator = np.random.default_rng(seed)
    member_count, item_count = len(factors.member_ids), len(factors.item_ids)
    member_rows = generator.choice(member_count, min(member_count, sample_size), replace=False)
    item_rows = generator.choice(item_count, min(item_count, sample_size), replace=False)
    scores = scoring.known_scores(factors, np.sort(member_rows), np.sort(item_rows))
    scores = scores.astype(np.float64)
    spread = float(scores.std()) if scores.size else 0.0
    return spread if spread > 0 else 1.0


def _union(id_arrays: Iterable[np.ndarray]) -> np.ndarray:
    """Ids in order of first appearance over the arrays."""
    return IdMap.from_values(chain.from_iterable(ids.tolist() for ids in id_arrays)).external_ids


def _member_block(
    factors: Factors, member_ids: np.ndarray, member_features: Mapping[str, Sequence[str]]
) -> np.ndarray:
    """The component's vector of every member: learned, else built from its feature names."""
    rows = [factors.member_row(member_id) for member_id in member_ids.tolist()]
    known = np.array([row is not None for row in rows], dtype=bool)
    block = np.empty((len(member_ids), factors.dim), dtype=np.float64)
    block[known] = factors.member_vectors[[row for row in rows if row is not None]]
    for position in np.flatnonzero(~known):
        member_id = str(member_ids[position])
        block[position] = scoring.member_vector(factors, None, member_features.get(member_id, ()))
    return block


def _rows_by_id(ids: np.ndarray, rows: np.ndarray, wanted_ids: np.ndarray) -> np.ndarray:
    """`rows` reordered to `wanted_ids`, zeros for ids not in `ids`."""
    positions = IdMap(ids).rows(wanted_ids)
    found = positions >= 0
    result = np.zeros((len(wanted_ids), *rows.shape[1:]), dtype=np.float64)
    result[found] = rows[positions[found]]
    return result


def _reindexed(
    matrix: sp.csr_matrix, factors: Factors, member_ids: np.ndarray, item_ids: np.ndarray
) -> sp.csr_matrix:
    """`matrix` (the component's members × items) moved onto the blend's rows and columns."""
    new_rows = IdMap(member_ids).rows(factors.member_ids)
    new_columns = IdMap(item_ids).rows(factors.item_ids)
    coo = matrix.tocoo()
    return sp.csr_matrix(
        (coo.data, (new_rows[coo.row], new_columns[coo.col])),
        shape=(len(member_ids), len(item_ids)),
    )
