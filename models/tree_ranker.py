"""A gradient-boosted tree ranker as scoring reads it: per-tree node arrays evaluated with
numpy, so serving scores it without LightGBM and loads it without pickles.

Built from LightGBM's `Booster.dump_model()` document (`from_lightgbm_dump`, training side)
and saved as JSON of flat arrays (`to_json` / `from_json`). Every tree's nodes sit in the
same arrays, a split node's right child right after its left child; a leaf is a node that
leads to itself (threshold +inf), so `predict` walks all trees × rows level by level for the
deepest tree's depth and then sums the leaf values: the raw score LightGBM's
`predict(..., raw_score=True)` gives.

Numerical splits only (no categorical features), with LightGBM's missing-value rules:
    missing type None: NaN is read as 0, then `x <= threshold` goes left;
    missing type Zero: 0 and NaN go the default side;
    missing type NaN:  NaN goes the default side.
`predict` folds them into the feature lookup: each row is held four times, with NaN (and,
for Zero splits, zero) replaced by -inf (goes left) or +inf (goes right), and each split
reads the copy that sends its missing values where LightGBM does (`lookup`). A level is then
a gather, a comparison and a step to `left + went right`: a few numpy calls on
trees × rows, no per-request Python loop over trees.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}
ZERO_THRESHOLD = 1e-35
"""|x| at or below which LightGBM counts a value as zero (`kZeroThreshold`)."""
ALL_LEAVES = np.uint64(2**64 - 1)
MAX_LEAVES = 64
"""Leaves per tree `predict` handles (one bit each in a uint64 mask)."""
ARRAYS = ("feature", "threshold", "left", "right", "default_left", "missing", "value", "roots")
COPIES = 4
"""Copies of the feature row `predict` reads: NaN → -inf, NaN → +inf, NaN and 0 → -inf,
NaN and 0 → +inf."""


@dataclass(frozen=True)
class Splits:
    """Every tree's split nodes padded to the same count (trees × splits), for `predict`.

    Leaves are numbered left to right in each tree; a split's mask clears the leaves of its
    left subtree. A row's exit leaf in a tree is the lowest bit left after AND-ing the masks
    of the splits the row goes right at (QuickScorer, Lucchese et al. 2015), so every split of
    every tree is compared at once, without walking the trees.
    """

    lookup: np.ndarray
    """int64 (trees × splits): column of the split's feature in the row's copies."""
    threshold: np.ndarray
    """float64 (trees × splits); +inf pads (never goes right)."""
    masks: np.ndarray
    """uint64 (trees × splits)."""
    values: np.ndarray
    """float64 (trees × leaves): leaf values, left to right."""
    tree_index: np.ndarray
    """int64 (1 × trees): each tree's row in `values`."""


@dataclass(frozen=True)
class TreeRanker:
    """All trees' nodes in flat arrays (see the module docstring)."""

    feature_names: tuple[str, ...]
    feature: np.ndarray
    """int64 feature column of each split node (0 for leaves)."""
    threshold: np.ndarray
    left: np.ndarray
    """int64 node index of each node's left child (a leaf: itself)."""
    right: np.ndarray
    default_left: np.ndarray
    """bool: a missing value goes left."""
    missing: np.ndarray
    """int8 missing type (`MISSING_TYPES`)."""
    value: np.ndarray
    """float64 leaf value (0 for split nodes)."""
    roots: np.ndarray
    """int64 root node of each tree."""
    depth: int
    """Splits on the longest root-to-leaf path."""

    @cached_property
    def lookup(self) -> np.ndarray:
        """int64 column of each node in the row's `COPIES` copies (see the module docstring):
        copy · features + feature."""
        zero_type = self.missing == MISSING_TYPES["Zero"]
        none_type = self.missing == MISSING_TYPES["None"]
        nan_left = np.where(none_type, self.threshold >= 0.0, self.default_left)
        copy = np.where(nan_left, 0, 1) + 2 * zero_type
        return copy * len(self.feature_names) + self.feature

    @cached_property
    def splits(self) -> Splits:
        """The split tables `predict` reads (`Splits`), built once from the node arrays."""
        return splits(self)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The raw score (sum of the trees' leaf values) of each row of `features`."""
        values = np.asarray(features, dtype=np.float64)
        width = len(self.feature_names)
        if values.ndim != 2 or values.shape[1] != width:
            raise ValueError(f"features: expected (rows, {width}), got {values.shape}")
        tables = self.splits
        copies = np.empty((len(values), COPIES, width))
        nan = np.isnan(values)
        zero = nan | (np.abs(values) <= ZERO_THRESHOLD)
        for copy, (missing, filler) in enumerate(
            ((nan, -np.inf), (nan, np.inf), (zero, -np.inf), (zero, np.inf))
        ):
            copies[:, copy] = np.where(missing, filler, values)
        right = copies.reshape(len(values), -1)[:, tables.lookup] > tables.threshold
        masks = np.where(right, tables.masks, ALL_LEAVES)
        survivors = np.bitwise_and.reduce(masks, axis=2)  # rows × trees
        exits = np.log2(survivors & (~survivors + np.uint64(1))).astype(np.int64)
        return tables.values[tables.tree_index, exits].sum(axis=1)

    def to_json(self) -> str:
        """The ranker as a JSON document of its arrays."""
        document: dict[str, Any] = {"feature_names": list(self.feature_names), "depth": self.depth}
        for name in ARRAYS:
            document[name] = getattr(self, name).tolist()
        return json.dumps(document)

    @classmethod
    def from_json(cls, text: str) -> TreeRanker:
        """A ranker written by `to_json` (ValueError on inconsistent arrays)."""
        data = json.loads(text)
        ranker = cls(
            feature_names=tuple(data["feature_names"]),
            feature=np.asarray(data["feature"], dtype=np.int64),
            threshold=np.asarray(data["threshold"], dtype=np.float64),
            left=np.asarray(data["left"], dtype=np.int64),
            right=np.asarray(data["right"], dtype=np.int64),
            default_left=np.asarray(data["default_left"], dtype=bool),
            missing=np.asarray(data["missing"], dtype=np.int8),
            value=np.asarray(data["value"], dtype=np.float64),
            roots=np.asarray(data["roots"], dtype=np.int64),
            depth=int(data["depth"]),
        )
        ranker.check()
        return ranker

    def check(self) -> None:
        """Raise ValueError unless the arrays describe trees over the feature columns."""
        nodes = len(self.value)
        if any(len(getattr(self, name)) != nodes for name in ARRAYS if name != "roots"):
            raise ValueError("tree ranker: node arrays of different lengths")
        for name in ("left", "right", "roots"):
            links = getattr(self, name)
            if len(links) and (links.min() < 0 or links.max() >= nodes):
                raise ValueError(f"tree ranker: {name} points outside the {nodes} nodes")
        leaves = self.left == np.arange(nodes)
        if np.any(leaves != (self.right == np.arange(nodes))) or np.any(
            self.right[~leaves] != self.left[~leaves] + 1
        ):
            raise ValueError("tree ranker: a right child is not right after its left child")
        if len(self.feature) and (
            self.feature.min() < 0 or self.feature.max() >= len(self.feature_names)
        ):
            raise ValueError("tree ranker: a split on a column outside the feature names")


def from_lightgbm_dump(dump: Mapping[str, Any], feature_names: Sequence[str]) -> TreeRanker:
    """The ranker of a LightGBM `Booster.dump_model()` document (numerical splits only)."""
    if list(dump["feature_names"]) != list(feature_names):
        raise ValueError("the booster's feature names differ from the ranker's")
    columns: dict[str, list[Any]] = {name: [] for name in ARRAYS if name != "roots"}
    roots, depth = [], 0

    def new_node() -> int:
        for name in columns:
            columns[name].append(0)
        return len(columns["value"]) - 1

    def fill(node: Mapping[str, Any], index: int, level: int) -> None:
        nonlocal depth
        if "leaf_value" in node:
            depth = max(depth, level)
            columns["left"][index] = columns["right"][index] = index
            columns["value"][index] = float(node["leaf_value"])
            return
        if node["decision_type"] != "<=":
            raise ValueError(f"unsupported split {node['decision_type']!r} (numerical only)")
        columns["feature"][index] = int(node["split_feature"])
        columns["threshold"][index] = float(node["threshold"])
        columns["default_left"][index] = bool(node["default_left"])
        columns["missing"][index] = MISSING_TYPES[node["missing_type"]]
        left, right = new_node(), new_node()  # siblings side by side: right = left + 1
        columns["left"][index], columns["right"][index] = left, right
        fill(node["left_child"], left, level + 1)
        fill(node["right_child"], right, level + 1)

    for tree in dump["tree_info"]:
        root = new_node()
        roots.append(root)
        fill(tree["tree_structure"], root, 0)
    ranker = TreeRanker(
        feature_names=tuple(feature_names),
        feature=np.asarray(columns["feature"], dtype=np.int64),
        threshold=np.asarray(columns["threshold"], dtype=np.float64),
        left=np.asarray(columns["left"], dtype=np.int64),
        right=np.asarray(columns["right"], dtype=np.int64),
        default_left=np.asarray(columns["default_left"], dtype=bool),
        missing=np.asarray(columns["missing"], dtype=np.int8),
        value=np.asarray(columns["value"], dtype=np.float64),
        roots=np.asarray(roots, dtype=np.int64),
        depth=depth,
    )
    ranker.check()
    return ranker


def splits(ranker: TreeRanker) -> Splits:
    """The `Splits` of `ranker` (ValueError: a tree with more than `MAX_LEAVES` leaves)."""
    lookup = ranker.lookup
    trees = [_tree_splits(ranker, root) for root in ranker.roots.tolist()]
    count = len(trees)
    width = max([len(nodes) for nodes, _, _ in trees] + [1])
    leaf_width = max([len(leaves) for _, _, leaves in trees] + [1])
    table = Splits(
        lookup=np.zeros((count, width), dtype=np.int64),
        threshold=np.full((count, width), np.inf),
        masks=np.full((count, width), ALL_LEAVES, dtype=np.uint64),
        values=np.zeros((count, leaf_width)),
        tree_index=np.arange(count, dtype=np.int64)[np.newaxis, :],
    )
    for tree, (nodes, masks, leaves) in enumerate(trees):
        table.lookup[tree, : len(nodes)] = lookup[nodes]
        table.threshold[tree, : len(nodes)] = ranker.threshold[nodes]
        table.masks[tree, : len(nodes)] = [ALL_LEAVES ^ np.uint64(mask) for mask in masks]
        table.values[tree, : len(leaves)] = leaves
    return table


def _tree_splits(ranker: TreeRanker, root: int) -> tuple[list[int], list[int], list[float]]:
    """A tree's split nodes, the bits of each one's left-subtree leaves, its leaf values
    (leaves numbered left to right)."""
    nodes: list[int] = []
    masks: list[int] = []
    leaves: list[float] = []

    def walk(node: int) -> int:
        """Number the leaves under `node`; return the first one's number."""
        if ranker.left[node] == node:
            leaves.append(float(ranker.value[node]))
            return len(leaves) - 1
        first = walk(int(ranker.left[node]))
        nodes.append(node)
        masks.append(sum(1 << leaf for leaf in range(first, len(leaves))))
        walk(int(ranker.right[node]))
        return first

    walk(root)
    if len(leaves) > MAX_LEAVES:
        raise ValueError(f"tree ranker: a tree with {len(leaves)} leaves (> {MAX_LEAVES})")
    return nodes, masks, leaves
