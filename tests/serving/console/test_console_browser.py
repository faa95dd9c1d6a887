"""The console in a real headless Chromium: sign in; preview and save a cap change and see it
in force on the offers API; upload a bad catalog (row and field shown), a good one, one with no
offer valid today (refused until confirmed), roll back; look up a member and read why an
opted-out offer is hidden. Every page: labelled fields, and Tab reaches every control.

Screenshots of each page go to $PERKRANK_CONSOLE_ARTIFACTS (default test-artifacts/console/).
"""

from datetime import UTC, datetime

import httpx
from selenium.webdriver.common.keys import Keys

from perkrank.config import CapRule
from perkrank.features.loader import load_dataset
from perkrank.serving.domain.selection import Preferences
from perkrank.serving.state.memory import MemoryStateStore
from tests.serving.console.browser import ADMIN, ADMIN_KEY, APP, Console

HEADER = "offer_id,partner_id,category,title,regions,min_tier,valid_from,valid_to,budget,reward\n"
GOOD_CATALOG = (
    HEADER
    + "glow-beauty,P1,Beauty,Beauty deal,,base,2026-06-05,2026-06-25,,10% back\n"
    + "fresh-grocery,P2,Grocery,Fresh deal,,base,2026-06-05,2026-06-25,,10% back\n"
    + "fresh-new,P2,Grocery,New deal,,gold,2026-06-10,2026-06-30,,5% back\n"
)
BAD_CATALOG = GOOD_CATALOG.replace("fresh-new,P2", "fresh-new,P9")
EXPIRED_CATALOG = HEADER + "glow-old,P1,Beauty,Old deal,,base,2026-01-01,2026-01-31,,1% back\n"
LOWERED = "rules:\n- {name: offer_day, scope: member_offer, limit: 1, window: day}\n"
RENAMED = "rules:\n- {name: offer_daily, scope: member_offer, limit: 2, window: day}\n"


def test_a_marketer_tunes_caps_publishes_catalogs_and_explains_a_member(
    browser, artifacts, make_small_app, small_service_files, live_server
):
    store = MemoryStateStore()
    partners = load_dataset(small_service_files["data"]).partners
    rules = (CapRule(name="offer_day", scope="member_offer", limit=2, window="day"),)
    app = make_small_app(store, rules=rules, partners=partners)
    files = small_service_files["data"].parent
    catalogs = {}
    for name, text in (("bad", BAD_CATALOG), ("good", GOOD_CATALOG), ("old", EXPIRED_CATALOG)):
        catalogs[name] = files / f"{name}-offers.csv"
        catalogs[name].write_text(text, encoding="utf-8")

    with live_server(app, lifespan="on") as url, httpx.Client(base_url=url) as api:
        console = Console(browser, url, artifacts)

        def offers(member_id: str = "alice") -> list[str]:
            response = api.get(f"/v1/members/{member_id}/offers", headers=APP)
            return [offer["offer_id"] for offer in response.json()["offers"]]

        served = [offers() for _ in range(3)]
        assert served[0] == ["glow-beauty", "fresh-grocery"] and served[2] == []
        now = datetime.now(UTC).isoformat()
        events = [
            {"type": kind, "member_id": "alice", "offer_id": offer, "channel": "app", "ts": now}
            for kind, offer in (
                ("impression", "glow-beauty"),
                ("impression", "fresh-grocery"),
                ("click", "glow-beauty"),
                ("redemption", "glow-beauty"),
            )
        ]
        assert api.post("/v1/events", json={"events": events}, headers=APP).status_code == 200

        # Sign in (a page without a session leads to the sign-in form).
        console.open("/caps")
        assert browser.current_url.endswith("/console/login")
        console.check_accessible()
        console.shoot("01-sign-in")
        console.fill("#api_key", ADMIN_KEY)
        console.css("#api_key").send_keys(Keys.ENTER)
        console.wait.until(lambda driver: driver.current_url.endswith("/console/"))
        assert "Events per day" in console.text()
        console.check_accessible()
        console.shoot("02-overview")

        # Caps: a lowered limit previews fewer offers and a warning; a renamed rule, saved,
        # resets the counters: alice is served again.
        console.open("/caps")
        console.check_accessible()
        console.fill("#rules", LOWERED)
        console.fill("#costs", "glow-beauty: 2.5\nfresh-grocery: 1.0\n")
        console.submit("form[action$='/caps/preview'] button:not([formaction])")
        preview = console.text()
        assert "~ offer_day: limit 2 → 1" in preview
        assert "limit 2 → 1 is already reached by 1 members" in preview
        shown = console.text("table.figures tbody tr:nth-child(2)")
        assert shown == "Offers shown 4 2"
        freeing_room = console.text("table.figures tbody tr:nth-child(3)")
        assert freeing_room == "Offers shown, hidden showings freeing room* 4 2"
        assert console.text("table.figures tbody tr:nth-child(5)") == "Reward cost 2.50 1.25"
        console.check_accessible()
        console.shoot("03-caps-preview")
        console.fill("#rules", RENAMED)
        console.submit("form[action$='/caps/preview'] button:not([formaction])")
        assert "renamed to offer_daily: its counters start again from 0" in console.text()
        assert offers() == []
        console.submit("button[formaction$='/caps/save']")
        assert "Saved: caps version 2 is in force." in console.text()
        assert api.get("/v1/caps", headers=ADMIN).json()["rules"][0]["name"] == "offer_daily"
        assert offers() == ["glow-beauty", "fresh-grocery"]
        console.shoot("04-caps-saved")

        # Catalog: a bad row is named; a good file's dry run, then publish; a file with no
        # offer valid today is refused until confirmed; rolling back brings the good one back.
        console.open("/catalog")
        console.check_accessible()
        console.css("#offers_file").send_keys(str(catalogs["bad"]))
        console.submit("button[value=publish]")
        problems = console.text(".problems")
        assert "4 partner_id 'P9' is not in the partners file" in problems
        assert "nothing changed" in problems
        console.shoot("05-catalog-problems")
        console.css("#offers_file").send_keys(str(catalogs["good"]))
        console.submit("button[value=dry-run]")
        dry_run = console.text("#dry-run")
        assert "Added 1: fresh-new" in dry_run and "Removed 1: glow-vip" in dry_run
        assert "Valid today (2026-06-15) 3" in dry_run
        console.check_accessible()
        console.shoot("06-catalog-dry-run")
        console.css("#offers_file").send_keys(str(catalogs["good"]))
        console.submit("button[value=publish]")
        assert "Published: catalog version 1 is in force." in console.text()
        console.css("#offers_file").send_keys(str(catalogs["old"]))
        console.submit("button[value=publish]")
        assert "Refused: no offer of the file is valid today" in console.text()
        assert len(api.get("/v1/admin/offers/history", headers=ADMIN).json()) == 1
        console.css("#offers_file").send_keys(str(catalogs["old"]))
        console.css("#allow_none_valid").click()
        console.submit("button[value=publish]")
        assert "Published: catalog version 2 is in force." in console.text()
        assert offers("bob") == []
        console.submit("button[aria-label='Roll back to catalog version 1']")
        assert "Published: catalog version 3 is in force." in console.text()
        assert sorted(offers("bob")) == ["fresh-grocery", "glow-beauty"]
        console.check_accessible()
        console.shoot("07-catalog-history")

        # Member lookup: alice opted out of Beauty; the page says so next to the offer.
        store.set_preferences("alice", Preferences(opted_out_categories=frozenset({"Beauty"})))
        console.open("/member")
        console.fill("#member_id", "alice")
        console.submit("form[action$='/member'] button")
        row = console.text("tr[data-offer='glow-beauty']")
        assert "opted out (category)" in row and "kind=category" in row
        assert "Categories opted out Beauty" in console.text()
        console.check_accessible()
        console.shoot("08-member")

        # Experiments: start the starter pilot, serve and redeem, read the report, stop.
        console.open("/experiments")
        console.submit("form[action$='/experiments/start'] button")
        assert "Saved: experiments version 1 is in force." in console.text()
        members = {f"m{number:03d}": offers(f"m{number:03d}") for number in range(60)}
        redemptions = [
            {
                "type": "redemption",
                "member_id": member,
                "offer_id": shown[0],
                "channel": "app",
                "ts": now,
            }
            for number, (member, shown) in enumerate(members.items())
            if shown and number % 3 == 0
        ]
        assert api.post("/v1/events", json={"events": redemptions}, headers=APP).status_code == 200
        console.open("/experiments")
        report = console.text()
        assert "lift_pilot" in report and "SRM check: p =" in report
        assert "Lift over holdout (95 % CI)" in report
        console.check_accessible()
        console.shoot("09-experiments")
        console.submit("form[action$='/experiments/stop'] button")
        assert "No experiment is running" in console.text()

        console.open("/models")
        console.check_accessible()
        assert "small-1" in console.text()
        assert "Serving a bundle directory: there is no registry" in console.text()
