"""The console in a real headless Chromium (Debian's chromium and chromedriver, driven by
Selenium; nothing is downloaded): sign in; preview and save a cap change and see it in force
on the offers API; upload a bad catalog (row and field shown), a good one, one with no offer
valid today (refused until confirmed), roll back; look up a member and read why an opted-out
offer is hidden. On `perkrank serve` following a registered model: see the versions, promote
(refused for other data, then forced), roll back, and the offers API served by each champion.
Every page: labelled fields, and Tab reaches every control.

Screenshots of each page go to $PERKRANK_CONSOLE_ARTIFACTS (default test-artifacts/console/).
"""

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from perkrank.config import CapRule, RegistryConfig
from perkrank.features.loader import load_dataset
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.registry import log_bundle
from perkrank.serving.domain.selection import Preferences
from perkrank.serving.state.memory import MemoryStateStore
from perkrank.training.promotion import promote

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ADMIN_KEY = "admin-key-for-tests-0001"
APP = {"X-API-Key": "app-key-for-tests-0001"}
ADMIN = {"X-API-Key": ADMIN_KEY}
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
WAIT_SECONDS = 60
"""Generous: how long a page may take on the shared test machine."""


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def artifacts() -> Path:
    directory = Path(os.environ.get("PERKRANK_CONSOLE_ARTIFACTS", "test-artifacts/console"))
    directory.mkdir(parents=True, exist_ok=True)
    return directory


class Console:
    """The browser on one running service: go to pages, fill forms, check and shoot them."""

    def __init__(self, driver: WebDriver, url: str, artifacts: Path) -> None:
        self.driver, self.url, self.artifacts = driver, url, artifacts
        self.wait = WebDriverWait(driver, WAIT_SECONDS)

    def open(self, path: str) -> None:
        self.driver.get(f"{self.url}/console{path}")

    def css(self, selector: str):
        return self.driver.find_element(By.CSS_SELECTOR, selector)

    def text(self, selector: str = "main") -> str:
        """An element's visible text, its white space (line breaks too) as single spaces."""
        return " ".join(self.css(selector).text.split())

    def submit(self, selector: str) -> None:
        """Click a submit button and wait for the next page."""
        old = self.css("html")
        self.css(selector).click()
        self.wait.until(lambda driver: old.id != driver.find_element(By.TAG_NAME, "html").id)

    def fill(self, selector: str, text: str) -> None:
        field = self.css(selector)
        field.clear()
        field.send_keys(text)

    def shoot(self, name: str) -> None:
        self.driver.execute_script("document.activeElement.blur()")
        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        self.driver.set_window_size(1280, max(900, min(height + 140, 4000)))
        self.driver.save_screenshot(str(self.artifacts / f"{name}.png"))
        self.driver.set_window_size(1280, 900)

    def key(self, element) -> str:
        """What tells an element apart across a reload: its place in the document."""
        return self.driver.execute_script(
            "let e = arguments[0], path = [];"
            "while (e.parentElement) { path.unshift([...e.parentElement.children].indexOf(e));"
            " e = e.parentElement; } return path.join('/')",
            element,
        )

    def check_accessible(self) -> None:
        """Every visible field has a label (or aria-label), and Tab from the top of the page
        reaches every field and button, the skip link first."""
        unlabelled = self.driver.execute_script(
            "return [...document.querySelectorAll('input, select, textarea')]"
            ".filter(e => e.type !== 'hidden' && !e.getAttribute('aria-label')"
            " && e.labels.length === 0).map(e => e.outerHTML)"
        )
        assert unlabelled == [], unlabelled
        controls = self.driver.find_elements(
            By.CSS_SELECTOR,
            "a[href], input:not([type=hidden]):not([disabled]), select, textarea, "
            "button:not([disabled])",
        )
        wanted = {self.key(control) for control in controls if control.is_displayed()}
        self.driver.refresh()  # focus starts again at the top of the page
        reached = []
        for _ in range(len(controls) + 5):
            ActionChains(self.driver).send_keys(Keys.TAB).perform()
            reached.append(self.key(self.driver.switch_to.active_element))
        assert reached[0] == self.key(self.css("a.skip"))
        assert wanted <= set(reached), "Tab does not reach every control"


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


def register_two_versions(registry: RegistryConfig, bundle_dir: Path, scratch: Path) -> None:
    """v1 (champion) and v2 (challenger, trained on other data: alice likes Grocery best)."""
    served = Bundle.load(bundle_dir)
    ranker = served.ranker
    likes_grocery = Factors(
        member_ids=list(ranker.member_ids),
        member_vectors=[[0.0, 1.0]],
        item_ids=list(ranker.item_ids),
        item_vectors=np.array(ranker.item_vectors),
        item_biases=np.array(ranker.item_biases),
        member_feature_ids=list(ranker.member_feature_ids),
        member_feature_vectors=np.array(ranker.member_feature_vectors),
    )
    grocery = Bundle(ranker=likes_grocery, fallback=served.fallback)
    variants = {"1": bundle_dir, "2": grocery.save(scratch / "grocery")}
    for version, directory in variants.items():
        lineage = {
            "lineage.data_sha256": version * 64,
            "lineage.date_range": "2026-01-01 .. 2026-05-31",
            "lineage.members": "1",
            "lineage.data_dir": str(scratch / f"data-{version}"),
            "lineage.split": json.dumps({"test_start": "2026-05-01", "test_end": "2026-06-01"}),
            "lineage.evaluation": json.dumps({"seed": 1}),
        }
        metrics = {"ndcg@10": 0.2 + 0.1 * int(version), "popularity.ndcg@10": 0.15}
        log_bundle(
            directory,
            registry=registry,
            params={"seed": 1},
            metrics=metrics,
            artifacts=[],
            tags=lineage,
        )
    assert promote(registry, version="1").promoted


def test_a_marketer_promotes_and_rolls_back_a_registered_model(
    browser, artifacts, small_service_files, perkrank_serve, tmp_path, monkeypatch
):
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", tracking_uri)  # it wins over RegistryConfig's
    registry = RegistryConfig(
        tracking_uri=tracking_uri, model_name="console-offers", experiment="console"
    )
    register_two_versions(registry, small_service_files["bundle"], tmp_path)
    environment = os.environ | {
        "MLFLOW_TRACKING_URI": tracking_uri,
        "PERKRANK_TRACKING_URI": tracking_uri,
        "PERKRANK_MODEL_CACHE_DIR": str(tmp_path / "model-cache"),
        "PERKRANK_CATALOG_DATE": "2026-06-15",
        "PERKRANK_CAPS_PATH": str(small_service_files["caps"]),
        "PERKRANK_APP_API_KEYS": APP["X-API-Key"],
        "PERKRANK_ADMIN_API_KEYS": f"ops:{ADMIN_KEY}",
    }
    environment.pop("PERKRANK_REDIS_URL", None)
    arguments = ["--data", str(small_service_files["data"])]
    arguments += ["--model", "models:/console-offers@champion"]
    with (
        perkrank_serve(arguments, environment, tmp_path / "serve.log") as url,
        httpx.Client(base_url=url) as api,
    ):
        console = Console(browser, url, artifacts)

        def served() -> tuple[str, list[str]]:
            body = api.get("/v1/members/alice/offers", headers=APP).json()
            return body["model_version"], [offer["offer_id"] for offer in body["offers"]]

        assert served() == ("console-offers/1", ["glow-beauty", "fresh-grocery"])
        console.open("/login")
        console.fill("#api_key", ADMIN_KEY)
        console.css("#api_key").send_keys(Keys.ENTER)
        console.wait.until(lambda driver: driver.current_url.endswith("/console/"))

        console.open("/models")
        assert console.text("tr[data-version='1'] .aliases") == "champion"
        assert console.text("tr[data-version='2'] .aliases") == "challenger"
        assert "0.4000" in console.text("tr[data-version='2']")
        assert "SHA-256 222222222222…" in console.text("tr[data-version='2']")
        assert "NDCG@10 on each version's test window" in console.text()
        console.check_accessible()

        # Promotion's gates: other data is refused without the force box, then forced.
        console.submit("form[action$='/models/promote'] button")
        assert "Refused: v2 stays a candidate" in console.text()
        row = console.text("tr[data-version='2']")
        assert "refused" in row and "trained on different data than champion v1" in row
        assert served()[0] == "console-offers/1"
        console.css("#promote-force").click()
        console.submit("form[action$='/models/promote'] button")
        assert "Promoted: v2 is the champion. Serving console-offers/2." in console.text()
        assert console.text("tr[data-version='2'] .aliases") == "challenger, champion"
        assert served() == ("console-offers/2", ["fresh-grocery", "glow-beauty"])
        console.check_accessible()
        console.shoot("10-models")

        # Roll back: the alias moves back to v1, which serves again; both moves are audited.
        console.submit("button[aria-label='Roll back the champion to v1']")
        assert "Rolled back: v1 is the champion. Serving console-offers/1." in console.text()
        assert console.text("tr[data-version='1'] .aliases") == "champion"
        assert console.text("tr[data-version='2'] .aliases") == "challenger"
        assert served() == ("console-offers/1", ["glow-beauty", "fresh-grocery"])
        changes = console.text("table.changes tbody")
        assert "ops roll back v2 v1" in changes and "ops promote v1 v2" in changes
        console.check_accessible()
        console.shoot("11-models-rolled-back")

        # A form post without the CSRF token is refused, and changes nothing.
        cookies = {cookie["name"]: cookie["value"] for cookie in browser.get_cookies()}
        refused = api.post("/console/models/rollback", cookies=cookies, data={})
        assert refused.status_code == 403
        assert served()[0] == "console-offers/1"
