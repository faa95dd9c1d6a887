"""The synthetic generator writes valid, reproducible data with structure models can find."""

import itertools
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from perkrank.features.dataset import Dataset
from perkrank.features.loader import load_dataset
from perkrank.features.schema import TABLES
from perkrank.features.synthetic import generate
from perkrank.features.synthetic.world import GENERATOR_FILE

START = date(2025, 1, 1)
MONTHS = 12


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    out_dir = tmp_path_factory.mktemp("synthetic") / "data"
    summary = generate(out_dir, members=3000, months=MONTHS, seed=11, start=START)
    return out_dir, summary


@pytest.fixture(scope="module")
def dataset(generated: tuple[Path, dict[str, int]]) -> Dataset:
    return load_dataset(generated[0])


def files_of(out_dir: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out_dir.iterdir())}


def test_same_seed_gives_byte_identical_files_and_another_seed_does_not(tmp_path):
    for name, seed in [("first", 5), ("again", 5), ("other", 6)]:
        generate(tmp_path / name, members=500, months=3, seed=seed, start=START)

    first = files_of(tmp_path / "first")
    assert sorted(first) == sorted([f"{table.name}.csv" for table in TABLES] + [GENERATOR_FILE])
    assert files_of(tmp_path / "again") == first
    assert files_of(tmp_path / "other")["purchases.csv"] != first["purchases.csv"]


def test_files_pass_validation_with_the_returned_row_counts(generated, dataset):
    out_dir, summary = generated

    assert dataset.row_counts() == summary
    assert min(summary.values()) > 0
    for table in TABLES:
        header = (out_dir / f"{table.name}.csv").read_text().splitlines()[0]
        assert header == ",".join(table.column_names)


def test_purchase_lines_have_second_timestamps_and_two_decimal_amounts(generated):
    first_line = (generated[0] / "purchases.csv").read_text().splitlines()[1]
    _, ts, _, _, amount, _ = first_line.split(",")

    assert pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M:%S") == ts
    assert len(amount.split(".")[1]) == 2


def test_failed_write_leaves_nothing_behind(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the output directory should go")

    with pytest.raises(FileExistsError):
        generate(blocker, members=200, months=2, seed=1, start=START)

    assert [path.name for path in tmp_path.iterdir()] == ["data"]


def with_member_and_partner(dataset: Dataset) -> pd.DataFrame:
    purchases = dataset.purchases.merge(dataset.members, on="member_id", validate="many_to_one")
    return purchases.merge(
        dataset.partners, on="partner_id", suffixes=("", "_partner"), validate="many_to_one"
    )


def all_in(values: pd.Series, collections: pd.Series) -> bool:
    """Whether every value lies in the collection beside it."""
    return all(value in collection for value, collection in zip(values, collections, strict=True))


def test_local_partners_sell_only_in_their_regions(dataset):
    purchases = with_member_and_partner(dataset)
    local = purchases[purchases["scope"] == "local"]

    assert len(local) > 0.05 * len(purchases)
    assert all_in(local["region"], local["regions"])
    assert (
        dataset.partners.loc[dataset.partners["scope"] == "local", "regions"].map(len) >= 1
    ).all()
    assert dataset.partners["regions"].map(len).max() <= 2


def test_purchases_follow_signup_and_stay_within_partner_categories(dataset):
    purchases = with_member_and_partner(dataset)

    assert (purchases["ts"] >= purchases["signup_date"]).all()
    assert all_in(purchases["category"], purchases["categories"])


def test_offers_stay_within_their_partners_regions_and_categories(dataset):
    offers = dataset.offers.merge(
        dataset.partners, on="partner_id", suffixes=("", "_partner"), validate="many_to_one"
    )
    local = offers[offers["scope"] == "local"]

    assert all_in(offers["category"], offers["categories"])
    assert all(
        set(regions) <= set(partner_regions)
        for regions, partner_regions in zip(local["regions"], local["regions_partner"], strict=True)
    )
    assert (offers["regions"].map(len) > 0).sum() > 0.1 * len(offers)


def offer_ids_per_month(offers: pd.DataFrame, months: int) -> list[set[str]]:
    """Offer ids valid on some day of each month of the history and the month after it."""
    month_starts = pd.date_range(pd.Timestamp(START), periods=months + 2, freq="MS")
    return [
        set(offers.loc[(offers["valid_from"] < end) & (offers["valid_to"] >= begin), "offer_id"])
        for begin, end in itertools.pairwise(month_starts)
    ]


def test_offer_catalog_rotates_every_month(dataset):
    catalogs = offer_ids_per_month(dataset.offers, MONTHS)

    assert all(len(catalog) >= 40 for catalog in catalogs)
    for previous, current in itertools.pairwise(catalogs):
        assert len(current - previous) > 0.6 * len(current)
        assert current & previous


def test_some_offers_require_high_tiers_and_some_have_budgets(dataset):
    offers = dataset.offers

    assert {"base", "gold", "vip"} <= set(offers["min_tier"])
    assert 0.1 < offers["budget"].notna().mean() < 0.9
    assert (offers["budget"].dropna() > 0).all()
    assert (offers["valid_to"] >= offers["valid_from"]).all()


def purchases_per_member(dataset: Dataset) -> np.ndarray:
    counts = dataset.purchases["member_id"].value_counts()
    return counts.reindex(dataset.members["member_id"], fill_value=0).to_numpy()


def test_some_members_never_buy(dataset):
    never_bought = (purchases_per_member(dataset) == 0).mean()

    assert 0.03 < never_bought < 0.25


def test_activity_is_heavy_tailed(dataset):
    counts = np.sort(purchases_per_member(dataset))[::-1]

    assert counts[: len(counts) // 10].sum() > 0.3 * counts.sum()


def test_regions_differ_widely_in_size(dataset):
    sizes = dataset.members["region"].value_counts()

    assert len(sizes) >= 8
    assert sizes.iloc[0] > 5 * sizes.iloc[-1]


def test_december_is_the_busiest_month(dataset):
    per_month = dataset.purchases["ts"].dt.month.value_counts()

    assert per_month.idxmax() == 12


def test_members_top_categories_predict_their_later_purchases_better_than_popularity(dataset):
    purchases = dataset.purchases
    earlier = purchases[purchases["ts"] < pd.Timestamp(2025, 10, 1)]
    later = purchases[
        (purchases["ts"] >= pd.Timestamp(2025, 10, 1))
        & purchases["member_id"].isin(earlier["member_id"])
    ]
    counts = earlier.groupby(["member_id", "category"]).size().rename("purchases").reset_index()
    personal_top = (
        counts.sort_values(["member_id", "purchases", "category"], ascending=[True, False, True])
        .groupby("member_id")
        .head(3)
    )
    popular_top = earlier["category"].value_counts().index[:3]

    personal_hits = later.merge(personal_top, on=["member_id", "category"], how="inner")
    personal_hit_rate = len(personal_hits) / len(later)
    popular_hit_rate = later["category"].isin(popular_top).mean()
    assert personal_hit_rate > popular_hit_rate + 0.1


def test_some_birth_dates_are_unknown_and_some_members_join_during_the_history(dataset):
    members = dataset.members

    assert 0.01 < members["birth_date"].isna().mean() < 0.2
    assert 0.05 < (members["signup_date"] >= pd.Timestamp(START)).mean() < 0.5
    assert (members["signup_date"] < pd.Timestamp(START) - pd.Timedelta(days=365)).mean() > 0.3


def test_birthdays_span_the_year_and_some_offers_target_occasions_or_tiers(dataset):
    births = dataset.members["birth_date"].dropna()
    offers = dataset.offers

    assert set(births.dt.month) == set(range(1, 13))
    assert {"birthday", "welcome", "winback", "tier_upgrade"} <= set(offers["occasion"])
    assert 0.02 < (offers["occasion"] != "").mean() < 0.2
    exclusive = offers[offers["exclusive_tier"] != ""]
    assert len(exclusive) > 0
    assert (exclusive["exclusive_tier"] != "base").all()
    assert (exclusive["exclusive_tier"] == exclusive["min_tier"]).all()
