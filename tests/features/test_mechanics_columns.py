"""The optional offer columns of the program mechanics: old files load unchanged, new ones are
checked like every column (file, row, field)."""

from pathlib import Path

import pytest

from perkrank.config import CONFIG_DIR, CapsConfig, ServeConfig, load_config
from perkrank.features.loader import DataValidationError, load_dataset
from perkrank.serving.domain.catalog import catalog_offers

NEW_OFFERS = """\
offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward,\
occasion,exclusive_tier
O1,P1,Grocery,Birthday points,,base,2025-07-01,2025-07-31,1000,2x points,birthday,
O2,P2,Beauty,Spa day,north,silver,2025-07-01,2025-08-15,,15% off,,gold
O3,P3,Travel,Miles bonus,,gold,2025-07-10,2025-07-10,50,500 miles,,
"""


def test_an_offers_file_without_the_new_columns_loads_with_none_of_them(valid_data_dir):
    dataset = load_dataset(valid_data_dir)

    offers = catalog_offers(dataset.offers, dataset.partners)

    assert [offer.occasion for offer in offers] == [None, None, None]
    assert [offer.exclusive_tier for offer in offers] == [None, None, None]


def test_occasion_and_exclusive_tier_are_read_when_present(valid_data_dir: Path):
    (valid_data_dir / "offers.csv").write_text(NEW_OFFERS, encoding="utf-8")
    dataset = load_dataset(valid_data_dir)

    offers = catalog_offers(dataset.offers, dataset.partners)

    assert [offer.occasion for offer in offers] == ["birthday", None, None]
    assert [offer.exclusive_tier for offer in offers] == [None, "gold", None]


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [(",birthday,\n", ",easter,\n", "occasion"), (",,gold\n", ",,diamond\n", "exclusive_tier")],
)
def test_an_unknown_occasion_or_tier_names_file_row_and_field(valid_data_dir, old, new, field):
    (valid_data_dir / "offers.csv").write_text(NEW_OFFERS.replace(old, new), encoding="utf-8")

    with pytest.raises(DataValidationError) as raised:
        load_dataset(valid_data_dir)

    problems = raised.value.problems
    assert [(p.file, p.field) for p in problems] == [("offers.csv", field)]
    assert problems[0].row in (2, 3)


def test_old_serve_and_caps_configs_load_unchanged(tmp_path):
    old_serve = tmp_path / "serve.yaml"
    old_serve.write_text("default_limit: 10\nmax_limit: 50\n", encoding="utf-8")

    settings = load_config(ServeConfig, old_serve)

    assert settings.mechanics.channels["push"].max_offers == 1
    assert load_config(CapsConfig, CONFIG_DIR / "caps.yaml").rules
