"""Training leaves out forgotten members and members with personalization off: no matrix row,
no vector, and the item vectors are as if the member had never been in the data."""

import csv
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perkrank.cli import main
from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.features.exclusions import read_exclusions, training_members, without_members
from perkrank.features.interactions import cutoff_features
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.member_hash import member_hash
from perkrank.models.bundle import Bundle
from perkrank.training.components import fit_components

CUTOFF = date(2025, 4, 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("exclusions") / "data"
    generate(directory, members=400, months=4, seed=3, start=date(2025, 1, 1))
    return directory


def busiest_members(data: Path, count: int) -> list[str]:
    purchases = pd.read_csv(data / "purchases.csv", dtype=str)
    return list(purchases["member_id"].value_counts().index[:count])


def write_exclusions(path: Path, rows: list[tuple[str, str]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["member_hash", "reason", "at"])
        writer.writerows([(member_hash(member), reason, "") for member, reason in rows])
    return path


def never_present(data: Path, member: str, out: Path) -> Path:
    """A copy of `data` whose files never had `member`."""
    out.mkdir()
    for table in ("members", "purchases", "partners", "offers"):
        lines = (data / f"{table}.csv").read_text().splitlines(keepends=True)
        kept = [line for line in lines if not line.startswith(f"{member},")]
        (out / f"{table}.csv").write_text("".join(kept))
    return out


def test_a_forgotten_members_removal_equals_never_having_been_there(data, tmp_path):
    member = busiest_members(data, 1)[0]
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml").model_copy(
        update={"threads": 1, "deterministic": True}
    )
    exclusions = write_exclusions(tmp_path / "x.csv", [(member, "forgotten")])
    forgotten, left_out = without_members(
        load_dataset(data), frozenset(read_exclusions(exclusions))
    )
    absent = load_dataset(never_present(data, member, tmp_path / "absent"))

    assert left_out == 1
    after_forgetting = fit_components(forgotten, CUTOFF, config).models
    never_there = fit_components(absent, CUTOFF, config).models
    for name in ("popularity", "regional_popularity", "als"):
        first, second = after_forgetting[name], never_there[name]
        assert member not in set(first.member_ids), name
        assert list(first.item_ids) == list(second.item_ids), name
        assert np.array_equal(first.item_vectors, second.item_vectors), name
        assert np.array_equal(first.item_biases, second.item_biases), name


def test_a_member_with_personalization_off_is_absent_from_the_matrices(data, tmp_path):
    member, other = busiest_members(data, 2)
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml")
    exclusions = write_exclusions(tmp_path / "x.csv", [(member, "no_personalization")])
    dataset, _ = without_members(load_dataset(data), frozenset(read_exclusions(exclusions)))

    features = cutoff_features(dataset, pd.Timestamp(CUTOFF).to_pydatetime(), config.interactions)

    assert member not in set(features.data.member_ids)
    assert other in set(features.data.member_ids)
    assert member not in features.member_features
    assert member not in set(dataset.purchases["member_id"])


def test_the_next_trained_bundle_has_no_row_for_a_forgotten_member(data, tmp_path):
    forgotten, opted_out, kept = busiest_members(data, 3)
    exclusions = write_exclusions(
        tmp_path / "x.csv", [(forgotten, "forgotten"), (opted_out, "no_personalization")]
    )
    out = tmp_path / "out"
    arguments = ["train", "--data", str(data), "--out", str(out), "--no-register"]

    assert main([*arguments, "--exclusions", str(exclusions)]) == 0

    bundle = Bundle.load(out / "bundle")
    for factors in (bundle.ranker, bundle.fallback):
        assert forgotten not in set(factors.member_ids)
        assert opted_out not in set(factors.member_ids)
    assert kept in set(bundle.ranker.member_ids)


@pytest.mark.parametrize("mode", ["exclude", "aggregate_only"])
def test_personalization_off_leaves_no_row_in_either_mode(data, tmp_path, mode):
    opted_out, forgotten, kept = busiest_members(data, 3)
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml").model_copy(
        update={"threads": 1, "deterministic": True}
    )
    exclusions = write_exclusions(
        tmp_path / "x.csv", [(opted_out, "no_personalization"), (forgotten, "forgotten")]
    )
    members = training_members(load_dataset(data), read_exclusions(exclusions), mode)

    models = fit_components(members.personal, CUTOFF, config, aggregates=members.aggregates).models

    assert members.left_out == 2
    for name, factors in models.items():
        assert opted_out not in set(factors.member_ids), name
        assert forgotten not in set(factors.member_ids), name
    assert kept in set(models["als"].member_ids)


def popularity_share(factors, item: str) -> float:
    return float(factors.item_biases[list(factors.item_ids).index(item)])


def test_aggregate_only_counts_opted_out_purchases_in_popularity_only(data, tmp_path):
    opted_out = busiest_members(data, 1)[0]
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml").model_copy(
        update={"threads": 1, "deterministic": True}
    )
    exclusions = read_exclusions(
        write_exclusions(tmp_path / "x.csv", [(opted_out, "no_personalization")])
    )
    dataset = load_dataset(data)
    aggregate = training_members(dataset, exclusions, "aggregate_only")
    excluded = training_members(dataset, exclusions, "exclude")
    everyone = fit_components(dataset, CUTOFF, config).models["popularity"]

    with_aggregates = fit_components(
        aggregate.personal, CUTOFF, config, aggregates=aggregate.aggregates
    )
    without = fit_components(excluded.personal, CUTOFF, config).models

    assert aggregate.aggregate_only == 1
    popularity = with_aggregates.models["popularity"]
    assert np.array_equal(popularity.item_biases, everyone.item_biases)
    assert not np.array_equal(without["popularity"].item_biases, everyone.item_biases)
    regional = with_aggregates.models["regional_popularity"]
    assert opted_out not in set(regional.member_ids)
    assert not np.array_equal(regional.item_vectors, without["regional_popularity"].item_vectors)
    assert np.array_equal(with_aggregates.models["als"].item_vectors, without["als"].item_vectors)
    assert opted_out not in with_aggregates.member_features
