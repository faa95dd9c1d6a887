"""`perkrank caps preview | rollback` and `perkrank offers publish --dry-run | rollback`
against a running service."""

from collections.abc import Iterator

import httpx
import pytest
import yaml
from fastapi import FastAPI

from perkrank.cli import main
from perkrank.config import CapRule
from perkrank.features.loader import load_dataset
from perkrank.serving.state.memory import MemoryStateStore

ADMIN_KEY = "admin-key-for-tests-0001"
APP = {"X-API-Key": "app-key-for-tests-0001"}
TWICE_A_DAY = {"name": "offer_day", "scope": "member_offer", "limit": 2, "window": "day"}
HEADER = "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
NEXT_CATALOG = (
    HEADER
    + "glow-beauty,P1,Beauty,Beauty deal,,base,2026-06-05,2026-06-25,,10% back\n"
    + "fresh-new,P2,Grocery,New deal,,gold,2026-06-10,2026-06-30,,5% back\n"
)
EXPIRED_CATALOG = HEADER + "glow-old,P1,Beauty,Old deal,,base,2026-01-01,2026-01-31,,1% back\n"


@pytest.fixture
def service(make_small_app, small_service_files, live_server) -> Iterator[tuple[str, FastAPI]]:
    partners = load_dataset(small_service_files["data"]).partners
    app = make_small_app(MemoryStateStore(), rules=(CapRule(**TWICE_A_DAY),), partners=partners)
    with live_server(app) as url:
        yield url, app


@pytest.fixture
def perkrank(service, capsys):
    url = service[0]

    def run(*arguments: str) -> tuple[int, str, str]:
        code = main([*arguments, "--url", url, "--api-key", ADMIN_KEY])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_caps_preview_prints_diff_warnings_and_both_outcomes(service, perkrank, tmp_path):
    url, app = service
    with httpx.Client(base_url=url, headers=APP) as client:
        for _ in range(3):
            assert client.get("/v1/members/alice/offers").status_code == 200
    app.state.recorder.flush()
    proposed = tmp_path / "caps.yaml"
    proposed.write_text(yaml.safe_dump({"rules": [TWICE_A_DAY | {"limit": 1}]}))

    code, out, _ = perkrank("caps", "preview", str(proposed), "--days", "1")

    assert code == 0
    assert "  ~ offer_day: limit 2 → 1\n" in out
    assert "warning: rule offer_day: limit 2 → 1 is already reached by 1 members" in out
    assert "offers shown                       4           2\n" in out
    assert "shown, freeing room*               4           2\n" in out
    assert "a lowered cap never shows more" in out
    assert "  glow-beauty: 2 → 1; 0 → 0\n" in out


def test_caps_rollback_brings_an_earlier_version_back(perkrank, tmp_path):
    empty = tmp_path / "caps.yaml"
    empty.write_text("rules: []\n")
    assert perkrank("caps", "set", str(empty))[0] == 0

    code, out, _ = perkrank("caps", "rollback", "1")
    missing = perkrank("caps", "rollback", "9")

    assert code == 0
    assert out.endswith("caps version 3 in force: the rules of version 1 (was 2)\n")
    assert out.startswith("+ offer_day: scope member_offer, limit 2")
    assert missing[0] == 2 and "caps version 9 is not kept" in missing[2]


def test_caps_set_show_and_history_carry_the_list_rules(perkrank, tmp_path):
    with_floor = tmp_path / "caps.yaml"
    rules = {"rules": [TWICE_A_DAY], "local_floor": {"regions": {"north": 0.3}}}
    with_floor.write_text(yaml.safe_dump(rules | {"max_per_partner": 1}))

    code, out, _ = perkrank("caps", "set", str(with_floor))
    shown = yaml.safe_load(perkrank("caps", "show")[1])
    history = perkrank("caps", "history")[1]

    assert code == 0
    assert out.splitlines() == [
        '~ local_floor: unset → {"default": 0.0, "regions": {"north": 0.3}}',
        "~ max_per_partner: unset → 1",
        "caps version 2 in force (was 1)",
    ]
    assert shown["local_floor"] == {"default": 0.0, "regions": {"north": 0.3}}
    assert shown["max_per_partner"] == 1
    assert "  ~ max_per_partner: unset → 1\n" in history
    assert perkrank("caps", "diff", str(with_floor))[0] == 0


def test_offers_dry_run_publish_guard_and_rollback(perkrank, tmp_path):
    good, bad, expired = (tmp_path / f"{name}.csv" for name in ("good", "bad", "expired"))
    good.write_text(NEXT_CATALOG)
    bad.write_text(NEXT_CATALOG.replace("fresh-new,P2", "fresh-new,P9"))
    expired.write_text(EXPIRED_CATALOG)

    dry = perkrank("offers", "publish", str(good), "--dry-run")
    dry_bad = perkrank("offers", "publish", str(bad), "--dry-run")
    dry_expired = perkrank("offers", "publish", str(expired), "--dry-run")
    refused = perkrank("offers", "publish", str(expired))
    published = perkrank("offers", "publish", str(good))
    confirmed = perkrank("offers", "publish", str(expired), "--allow-none-valid")
    rolled = perkrank("offers", "rollback", "1")

    assert dry[0] == 0
    assert "  added (1): fresh-new\n  removed (2): fresh-grocery, glow-vip\n" in dry[1]
    assert "  north: base 1, silver 1, gold 2, vip 2\n" in dry[1]
    assert dry_bad[0] == 1 and "row 3, field partner_id" in dry_bad[2]
    assert dry_expired[0] == 1 and "would be refused: no offer" in dry_expired[1]
    assert refused[0] == 2 and "valid today (2026-06-15)" in refused[2]
    assert published == (0, "catalog version 1 in force: 2 offers\n", "")
    assert confirmed[0] == 0
    assert rolled == (0, "catalog version 3 in force: the 2 offers of version 1\n", "")
