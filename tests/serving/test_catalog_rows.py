"""One bad catalog row never takes serving down: publishing refuses it naming row and field,
and an offer that cannot be served, however it got into the store, is left out of the catalog
(readiness names it) while every request keeps working. On a real Redis, whose store records
are what a control character in an id used to break."""

import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from perkrank.config import ServeConfig
from perkrank.serving.api.app import create_app
from perkrank.serving.domain.catalog import Offer
from perkrank.serving.domain.catalog_file import offer_record
from perkrank.serving.state.redis_store import RedisStateStore

APP = {"X-API-Key": "app-key-for-catalog-rows-1"}
ADMIN = {"X-API-Key": "admin-key-for-catalog-rows-1"}
CSV = {"Content-Type": "text/csv"}
HEADER = "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward"
GOOD_ROW = "glow-deal,P1,Beauty,Glow deal,,base,2026-06-01,2026-06-30,,10% back"
OTHER_ROW = GOOD_ROW.replace("glow-deal", "glow-more")
SERVED_AT_START = ["glow-beauty", "fresh-grocery"]
"""What alice gets from the data directory's offers (small_service_files)."""


def offer(offer_id: str, **fields: Any) -> Offer:
    values = {
        "partner_id": "P1",
        "partner_name": "Glow",
        "scope": "federal",
        "category": "Beauty",
        "title": "Glow deal",
        "reward": "10% back",
        "min_tier": "base",
        "valid_from": date(2026, 6, 1),
        "valid_to": date(2026, 6, 30),
    }
    return Offer(offer_id=offer_id, **values | fields)


@pytest.fixture
def serving(
    small_service_files, redis_url, redis_key_prefix
) -> Callable[[], AbstractContextManager[TestClient]]:
    """A context-manager function: one serving process (startup run) on a fresh Redis prefix."""
    settings = ServeConfig(
        model_uri=str(small_service_files["bundle"]),
        caps_path=small_service_files["caps"],
        catalog_date="2026-06-15",
        app_api_keys=f"tests:{APP['X-API-Key']}",
        admin_api_keys=f"ops:{ADMIN['X-API-Key']}",
        redis_url=redis_url,
        key_prefix=redis_key_prefix,
        store_timeout_ms=2000,
    )

    @contextmanager
    def start() -> Iterator[TestClient]:
        with TestClient(create_app(settings, data_dir=small_service_files["data"])) as client:
            yield client

    return start


@pytest.fixture
def stored_catalog(redis_url, redis_key_prefix) -> Callable[[list[Any]], None]:
    """Store offer records as the published catalog, as an unchecked writer could have."""

    def publish(records: list[Any]) -> None:
        store = RedisStateStore(redis_url, redis_key_prefix, 2000)
        store.publish_catalog(records, "sha-of-nothing", "old-release", time.time())

    return publish


def offer_ids(client: TestClient) -> list[str]:
    response = client.get("/v1/members/alice/offers", headers=APP)
    assert response.status_code == 200, response.text
    return [served["offer_id"] for served in response.json()["offers"]]


@pytest.mark.parametrize(
    ("bad_row", "field", "shown"),
    [
        (OTHER_ROW.replace("Glow deal", "Glow\x1fdeal"), "title", "'Glow\\x1fdeal'"),
        (OTHER_ROW.replace("glow-more", "glow\x1emore"), "offer_id", "'glow\\x1emore'"),
        (OTHER_ROW.replace("Beauty", "Beau\x1fty"), "category", "'Beau\\x1fty'"),
        (OTHER_ROW.replace("10% back", "10%\x85back"), "reward", "'10%\\x85back'"),
        (OTHER_ROW.replace("Glow deal", "Glow\u2028deal"), "title", "'Glow\\u2028deal'"),
    ],
)
def test_publishing_a_control_character_is_refused_naming_row_and_field(
    serving, bad_row, field, shown
):
    file = "\n".join([HEADER, GOOD_ROW, bad_row]) + "\n"
    with serving() as client:
        response = client.put("/v1/admin/offers", content=file, headers=ADMIN | CSV)
        served = offer_ids(client)
        history = client.get("/v1/admin/offers/history", headers=ADMIN).json()

    assert response.status_code == 422
    (problem,) = response.json()["detail"]
    assert (problem["file"], problem["row"], problem["field"]) == ("offers.csv", 3, field)
    assert problem["message"].startswith(f"offers.csv row 3, field {field}: {shown} holds U+")
    assert "a control character; text must be printable" in problem["msg"]
    assert served == SERVED_AT_START
    assert history == []


def test_a_stored_offer_that_cannot_be_served_is_left_out_and_the_rest_serve(
    serving, stored_catalog
):
    stored_catalog(
        [
            offer_record(offer("glow-deal")),
            offer_record(offer("glow\x1evip")),
            {"offer_id": "half-written", "title": "no other field"},
        ]
    )

    with serving() as client:
        requests = [offer_ids(client) for _ in range(3)]
        ready = client.get("/readyz")

    assert requests == [["glow-deal"]] * 3
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    detail = ready.json()["detail"]
    assert detail.startswith("2 offers left out, they cannot be served: offer 'half-written'")
    assert "field record: cannot be read" in detail


def test_a_stored_catalog_without_a_servable_offer_is_not_ready_but_requests_still_answer(
    serving, stored_catalog
):
    stored_catalog([offer_record(offer("glow\x1fdeal")), offer_record(offer("x", title="\x00"))])

    with serving() as client:
        served = offer_ids(client)
        ready = client.get("/readyz")

    assert served == []
    assert ready.status_code == 503
    assert ready.json()["status"] == "unavailable"
    assert ready.json()["detail"] == (
        "no offer of the catalog can be served; 2 offers left out, they cannot be served: "
        "offer 'glow\\x1fdeal', field offer_id: holds U+001F, a control character; text must "
        "be printable"
    )
