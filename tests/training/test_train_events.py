"""`train(..., events=...)`: a pilot's redemptions join the purchases the served model learns."""

from datetime import date

from perkrank.config import CONFIG_DIR, TrainConfig, load_config
from perkrank.export import EVENT_COLUMNS, write_table
from perkrank.features.loader import load_dataset
from perkrank.features.synthetic import generate
from perkrank.features.vocabulary import item_id
from perkrank.models.bundle import Bundle
from perkrank.training.pipeline import train


def test_redemptions_of_an_events_export_reach_the_served_model(tmp_path):
    generate(tmp_path / "data", members=400, months=4, seed=3, start=date(2025, 1, 1))
    dataset = load_dataset(tmp_path / "data")
    member = dataset.purchases["member_id"].iloc[0]
    own = dataset.purchases[dataset.purchases["member_id"] == member]
    bought = {item_id(p, c) for p, c in zip(own["partner_id"], own["category"], strict=True)}
    offer = next(
        row
        for row in dataset.offers.itertuples()
        if item_id(row.partner_id, row.category) not in bought
    )
    event = {name: "" for name, _ in EVENT_COLUMNS} | {
        "member_id": member,
        "offer_id": offer.offer_id,
        "partner_id": offer.partner_id,
        "category": offer.category,
        "channel": "app",
        "ts": "2025-05-03T12:00:00+00:00",
    }
    write_table(
        [[event | {"type": kind} for kind in ("impression", "click", "redemption")]],
        tmp_path / "events.parquet",
        EVENT_COLUMNS,
    )
    config = load_config(TrainConfig, CONFIG_DIR / "train.yaml").model_copy(update={"threads": 1})
    config = config.model_copy(
        update={"blend": config.blend.model_copy(update={"fit_weights": False})}
    )

    result = train(
        tmp_path / "data",
        config,
        output_dir=tmp_path / "out",
        register=False,
        events=tmp_path / "events.parquet",
    )

    bundle = Bundle.load(result.bundle_dir)
    ranker = bundle.ranker
    row = ranker.member_row(member)
    column = ranker.item_row(item_id(offer.partner_id, offer.category))
    assert row is not None and column is not None
    # the member never bought the item: only the redemption can have put it in their repeats
    assert ranker.repeat is not None and ranker.repeat[row, column] > 0
    # and the offer's response rate (1 of 1) is the bundle's offer-level prior
    rates = bundle.offer_rates
    assert rates is not None and rates.offer_ids.tolist() == [offer.offer_id]
    assert (rates.global_rate, rates.weight) == (1.0, config.offer_rate_weight)
