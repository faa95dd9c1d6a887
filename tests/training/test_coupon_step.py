"""`perkrank train --coupons`: the coupon stage of the hand-made Complete Journey files, fitted
as of the served cutoff beside a small synthetic run, saved in the bundle, registered in MLflow,
and the registered pyfunc model scores a member the stage knows with `CouponStage.member_scores`
(as serving orders that member's offers) and the others as before; bad sources fail early with
the source named."""

from datetime import date
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from perkrank.cli import main
from perkrank.features.complete_journey import RAW_FILES, coupon_tables, read_raw
from perkrank.features.synthetic import generate
from perkrank.models.bundle import Bundle
from perkrank.models.pyfunc import EXAMPLE_INPUT, OFFER_ID, score_rows
from perkrank.training import coupon_evaluation as ce
from perkrank.training import coupon_ranker as cr
from perkrank.training.coupon_stats import offer_ids
from perkrank.training.coupon_step import CouponSourceError, coupon_metrics, served_coupon_stage
from tests.features.complete_journey_raw import write_raw

MODEL = "perkrank-coupons-test"


@pytest.fixture(scope="module")
def raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_raw(tmp_path_factory.mktemp("complete_journey") / "raw")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, raw: Path):
    """`perkrank train --coupons` on 150 synthetic members × 4 months, registered."""
    work = tmp_path_factory.mktemp("train")
    generate(work / "data", members=150, months=4, seed=3, start=date(2025, 1, 1))
    uri = f"sqlite:///{work}/mlflow.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        patch.setenv("PERKRANK_TRAIN_THREADS", "1")
        patch.setenv("PERKRANK_TRAIN_REGISTRY__MODEL_NAME", MODEL)
        out = work / "out"
        arguments = ["train", "--data", str(work / "data"), "--out", str(out)]
        assert main([*arguments, "--coupons", str(raw)]) == 0
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        version = client.get_model_version_by_alias(MODEL, "challenger")
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version.version}")
        run = client.get_run(version.run_id)
    return Bundle.load(out / "bundle"), model, run


def test_the_bundle_serves_the_stage_fitted_as_of_its_cutoff(trained, raw: Path) -> None:
    bundle, _, _ = trained
    stage = bundle.coupon_stage
    assert stage is not None
    cutoff = pd.Timestamp(bundle.meta["trained_until"])
    tables = coupon_tables(read_raw(raw))
    index = ce.coupon_index(tables)
    expected = cr.campaign_stage(
        tables, index, cutoff, cr.fit_rankers(tables, index, cutoff).rankers
    )
    ids = offer_ids(index)
    members = ["H10", "H20", "H30", "H99"]
    np.testing.assert_array_equal(stage.scores(members, ids), expected.scores(members, ids))
    # every redemption of the raw files (the last on 2017-03-05) is dated before the cutoff
    assert stage.stats.member_redeemed.sum() == 2
    summary = bundle.meta["coupon_stage"]
    assert summary["source"] == str(raw.resolve())
    assert set(summary["files"]) == set(RAW_FILES.values())
    # no campaign has two earlier ones: no fold, nothing chosen by validation
    assert summary["groups"]["Type A"] == {
        "features": list(ce.BASELINES), "l2": max(cr.L2_GRID), "fit_on": "all",
        "validation_ndcg@10": None,
    }  # fmt: skip


def test_the_registered_model_scores_coupons_as_the_stage(trained, raw: Path) -> None:
    bundle, model, _ = trained
    stage = bundle.coupon_stage
    ids = offer_ids(ce.coupon_index(coupon_tables(read_raw(raw))))
    known = pd.DataFrame(
        {column: [values[0]] * len(ids) for column, values in EXAMPLE_INPUT.items()}
    )
    known[OFFER_ID] = ids
    known["member_id"] = "H10"
    unknown = known.assign(member_id="somebody-else")
    scores = model.predict(pd.concat([known, unknown], ignore_index=True))
    member = stage.member_scores("H10", ids.tolist(), np.zeros(len(ids)))
    np.testing.assert_allclose(scores[: len(ids)], member, rtol=0, atol=1e-9)
    assert len(set(member.round(9).tolist())) > 1, "all coupons alike: the test is blind"
    # a member the stage does not know: the bundle's scores without it
    without = score_rows(bundle.ranker, unknown, bundle.second_stage, bundle.fallback)
    np.testing.assert_allclose(scores[len(ids) :], without, rtol=0, atol=1e-9)


def test_the_run_records_the_coupon_source(trained, raw: Path) -> None:
    _, _, run = trained
    assert run.data.params["coupons.source"] == str(raw)


def test_a_bundle_with_a_coupon_stage_needs_offer_ids(trained) -> None:
    bundle, _, _ = trained
    rows = pd.DataFrame(EXAMPLE_INPUT)
    with pytest.raises(ValueError, match="offer_id"):
        score_rows(bundle.ranker, rows, coupon_stage=bundle.coupon_stage)


def test_a_missing_raw_file_is_named(tmp_path: Path, raw: Path) -> None:
    copy = write_raw(tmp_path / "raw")
    (copy / "coupons.csv.gz").unlink()
    with pytest.raises(CouponSourceError, match=r"raw: missing coupons\.csv\.gz"):
        served_coupon_stage(copy, date(2017, 4, 1))


def test_a_cutoff_before_any_redemption_is_refused(raw: Path) -> None:
    with pytest.raises(CouponSourceError, match="no household redeemed"):
        served_coupon_stage(raw, date(2017, 1, 15))


def test_metrics_are_the_groups_validation_scores() -> None:
    summary = {
        "groups": {
            "Type A": {"validation_ndcg@10": 0.25},
            "Type B/C": {"validation_ndcg@10": None},
        }
    }
    assert coupon_metrics(summary) == {"coupon_stage.Type_A.validation_ndcg@10": 0.25}
