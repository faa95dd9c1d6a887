"""Simulated pilots through the real service: what they log, what they draw, and the truth.

One small program (400 members, 4 days) with a champion that knows the planted tastes
blurred by noise 2 and a challenger planted 10 % better; everything is seeded.
"""

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from perkrank.cli import main
from perkrank.export import DECISION_COLUMNS, EVENT_COLUMNS
from perkrank.features.synthetic.response import ResponseModel
from perkrank.serving.domain.uplift import Z_80, Z_95
from perkrank.simulation.lift_check import (
    CHALLENGER,
    CHAMPION,
    HOLDOUT,
    PlantedPilot,
    experiments,
    lift_trial,
    plant_pilot,
)
from perkrank.simulation.pilot import SimulationResult, simulate
from perkrank.simulation.truth import policy_truth

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> PlantedPilot:
    work = tmp_path_factory.mktemp("planted")
    return plant_pilot(work, members=400, champion_noise=2.0, target_lift=0.10, days=4)


@pytest.fixture(scope="module")
def result(planted: PlantedPilot) -> SimulationResult:
    return simulate(
        planted.data_dir,
        days=planted.days,
        seed=3,
        model_uri=planted.champion_uri,
        experiments=experiments(3),
        limit=planted.limit,
    )


def test_the_challenger_is_planted_ten_percent_better(planted):
    truth = planted.true_per_member
    assert truth[CHALLENGER] / truth[CHAMPION] == pytest.approx(1.10, abs=0.02)


def test_the_simulation_truth_is_the_planted_truth_and_the_holdout_is_worst(planted, result):
    for arm in (CHAMPION, CHALLENGER):
        assert result.truth[arm].redemptions_per_member == pytest.approx(
            planted.true_per_member[arm]
        )
    assert result.truth[HOLDOUT].redemptions_per_member < planted.true_per_member[CHAMPION]
    assert result.truth[CHAMPION].members == 400


def test_every_visit_is_a_logged_decision_and_every_event_names_its_decision(result):
    decisions = {row["decision_id"]: row for row in result.decisions}
    shown = {(row["decision_id"], row["offer_id"]) for row in result.decisions}
    assert len(decisions) == result.visits > 0
    assert {row["arm"] for row in result.decisions} == {HOLDOUT, CHAMPION, CHALLENGER}
    for event in result.events:
        assert (event["decision_id"], event["offer_id"]) in shown
        assert event["member_id"] == decisions[event["decision_id"]]["member_id"]
    counts = {kind: 0 for kind in ("impression", "click", "redemption")}
    for event in result.events:
        counts[event["type"]] += 1
    assert counts["impression"] == len(result.decisions)
    assert counts["impression"] > counts["click"] >= counts["redemption"] > 0


def test_drawn_redemptions_match_the_response_model_of_the_shown_lists(planted, result):
    response = ResponseModel.load(planted.data_dir)
    lists: dict[str, list[tuple[int, str, str]]] = {}
    for row in result.decisions:
        lists.setdefault(row["decision_id"], []).append(
            (row["rank"], row["offer_id"], row["member_id"])
        )
    expected = sum(
        response.expected_redemptions(shown[0][2], [offer for _, offer, _ in sorted(shown)])
        for shown in lists.values()
    )
    drawn = sum(event["type"] == "redemption" for event in result.events)
    assert abs(drawn - expected) < 4 * math.sqrt(expected)


def test_policy_truth_of_the_lists_shown_is_their_expected_redemptions(planted):
    response = ResponseModel.load(planted.data_dir)
    members = list(response.member_rows)[:3]
    offers = list(response.offer_factors)[:2]
    truth = policy_truth(response, {member: offers for member in members}, days=5)

    rows = [response.member_rows[member] for member in members]
    visits = 5 * response.visit_probability[rows]
    came = 1 - (1 - response.visit_probability[rows]) ** 5
    per_visit = np.array([response.expected_redemptions(member, offers) for member in members])
    assert truth.redemptions_per_member == pytest.approx(visits @ per_visit / came.sum())
    assert truth.redemption_rate == pytest.approx(visits @ per_visit / (2 * visits.sum()))
    assert truth.offers_per_visit == pytest.approx(2.0)


def test_the_report_interval_is_honest_about_the_known_truth(planted):
    """Seeded pilots: the true lift lies within 4 standard errors of each report's lift (a
    miss is a 1-in-15,000 event, not noise), and the MDE is the documented multiple of it."""
    for seed in (11, 12):
        trial = lift_trial(planted, seed, with_truth=False)
        low, high = trial.lift_ci
        se = (high - low) / (2 * Z_95)
        assert abs(trial.lift - trial.true_lift) < 4 * se
        assert trial.mde == pytest.approx((Z_95 + Z_80) * se)
        assert trial.srm_p_value > 0.001


def test_simulate_command_writes_the_exports_and_the_truth(planted, tmp_path, capsys):
    experiments_file = tmp_path / "experiments.yaml"
    experiments_file.write_text(
        "experiments:\n  - name: pilot\n    arms:\n"
        "      - {name: holdout, share: 0.2, policy: popular}\n"
        "      - {name: personal, share: 0.8, policy: personalized}\n"
    )
    arguments = ["simulate", "--data", str(planted.data_dir), "--days", "1", "--seed", "2"]
    arguments += ["--model", planted.champion_uri, "--experiments", str(experiments_file)]
    assert main([*arguments, "--out", str(tmp_path / "out")]) == 0

    decisions = pq.read_table(tmp_path / "out" / "decisions.parquet")
    events = pq.read_table(tmp_path / "out" / "events.parquet")
    assert decisions.column_names == [name for name, _ in DECISION_COLUMNS]
    assert events.column_names == [name for name, _ in EVENT_COLUMNS]
    assert set(decisions.column("arm").to_pylist()) == {"holdout", "personal"}
    assert '"personal"' in (tmp_path / "out" / "truth.json").read_text()
    assert "personal: true redemption rate" in capsys.readouterr().out


def test_a_pilot_on_redis_logs_what_it_served(planted, redis_url, redis_key_prefix):
    result = simulate(
        planted.data_dir,
        days=1,
        seed=5,
        model_uri=planted.champion_uri,
        redis_url=redis_url,
        key_prefix=redis_key_prefix,
        with_truth=False,
    )

    assert len({row["decision_id"] for row in result.decisions}) == result.visits > 0
    assert sum(event["type"] == "impression" for event in result.events) == len(result.decisions)
    assert {row["ts"] for row in result.decisions} == {"2025-04-08T12:00:00+00:00"}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--store", "mongodb://x", "use memory or a redis:// URL"), ("--days", "0", "--days")],
)
def test_simulate_command_refuses_bad_options(planted, tmp_path, capsys, option, value, message):
    arguments = ["simulate", "--data", str(planted.data_dir), "--days", "1", "--out", str(tmp_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*arguments, option, value])

    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_simulate_command_needs_generated_data(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    arguments = ["simulate", "--data", str(tmp_path / "data"), "--days", "1"]

    assert main([*arguments, "--model", str(tmp_path), "--out", str(tmp_path / "out")]) == 1
    assert "generator.json: missing" in capsys.readouterr().err
