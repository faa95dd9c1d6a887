"""The offers' optional value columns: old files load unchanged, new ones are checked, stored
catalogs from before them still read, and the generator co-funds some offers."""

from datetime import date

import pytest

from perkrank.features.loader import DataValidationError, load_dataset
from perkrank.features.synthetic import generate
from perkrank.serving.domain.catalog import catalog_offers
from perkrank.serving.domain.catalog_file import offer_from_record, offer_record
from perkrank.training.value_evaluation import offer_net_values

HEADER = "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward"
OFFERS = [
    "O1,P1,Grocery,Double points on groceries,,base,2025-07-01,2025-07-31,1000,2x points",
    "O2,P2,Beauty,Spa day discount,north,silver,2025-07-01,2025-08-15,,15% off",
    "O3,P3,Travel,Miles bonus,,gold,2025-07-10,2025-07-10,50,500 miles",
]


def write_offers(data_dir, values: list[str]) -> None:
    rows = [f"{row},{cells}" for row, cells in zip(OFFERS, values, strict=True)]
    text = "\n".join([f"{HEADER},reward_cost,partner_funding", *rows]) + "\n"
    (data_dir / "offers.csv").write_text(text, encoding="utf-8")


def test_an_offers_file_without_value_columns_loads_unchanged_as_worth_nothing(valid_data_dir):
    dataset = load_dataset(valid_data_dir)

    offers = catalog_offers(dataset.offers, dataset.partners)

    assert dataset.offers["reward_cost"].isna().all()
    assert dataset.offers["partner_funding"].isna().all()
    assert [(offer.reward_cost, offer.partner_funding) for offer in offers] == [(0.0, 0.0)] * 3
    assert offer_net_values(dataset.offers, ["O1", "O2", "O3"]).tolist() == [0.0, 0.0, 0.0]


def test_value_columns_load_as_numbers_and_empty_cells_as_zero(valid_data_dir):
    write_offers(valid_data_dir, ["5,7.5", "2.5,", ","])
    dataset = load_dataset(valid_data_dir)

    offers = catalog_offers(dataset.offers, dataset.partners)

    assert [(offer.reward_cost, offer.partner_funding) for offer in offers] == [
        (5.0, 7.5),
        (2.5, 0.0),
        (0.0, 0.0),
    ]
    assert [offer.net_value for offer in offers] == [2.5, -2.5, 0.0]
    assert offer_net_values(dataset.offers, ["O3", "O1", "unknown"]).tolist() == [0.0, 2.5, 0.0]


@pytest.mark.parametrize(
    ("values", "row", "field"),
    [
        (["-1,0", ",", ","], 2, "reward_cost"),
        ([",", "2,lots", ","], 3, "partner_funding"),
    ],
)
def test_a_bad_value_cell_is_named_by_file_row_and_field(valid_data_dir, values, row, field):
    write_offers(valid_data_dir, values)

    with pytest.raises(DataValidationError) as caught:
        load_dataset(valid_data_dir)

    problem = caught.value.problems[0]
    assert (problem.file, problem.row, problem.field) == ("offers.csv", row, field)


def test_a_catalog_stored_before_value_columns_still_reads(valid_data_dir):
    dataset = load_dataset(valid_data_dir)
    offer = catalog_offers(dataset.offers, dataset.partners)[0]
    record = offer_record(offer)
    old_record = {k: v for k, v in record.items() if k not in ("reward_cost", "partner_funding")}

    assert offer_from_record(old_record) == offer
    assert offer_from_record(record | {"partner_funding": 4.0}).net_value == 4.0


def test_the_generator_gives_every_offer_a_cost_and_co_funds_some(tmp_path):
    generate(tmp_path, members=500, months=3, seed=5, start=date(2025, 1, 1))
    offers = load_dataset(tmp_path).offers

    cofunded = offers["partner_funding"] > 0
    assert (offers["reward_cost"] > 0).all()
    assert 0.15 < cofunded.mean() < 0.45
    assert (offers["partner_funding"] > offers["reward_cost"]).any()
    assert (offers.loc[~cofunded, "partner_funding"] == 0).all()
