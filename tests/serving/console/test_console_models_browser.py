"""The console's models page in a real headless Chromium, on `perkrank serve` following a
registered model: see the versions, promote (refused for other data, then forced), roll back,
and the offers API served by each champion. Every page: labelled fields, and Tab reaches
every control.

Screenshots of each page go to $PERKRANK_CONSOLE_ARTIFACTS (default test-artifacts/console/).
"""

import json
import os
from pathlib import Path

import httpx
import numpy as np
from selenium.webdriver.common.keys import Keys

from perkrank.config import RegistryConfig
from perkrank.models.bundle import Bundle
from perkrank.models.factors import Factors
from perkrank.models.registry import log_bundle
from perkrank.training.promotion import promote
from tests.serving.console.browser import ADMIN_KEY, APP, Console


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
