"""Off-policy evaluation on a simulated log with known truth (`simulation.ope_check`): the
code of `perkrank evaluate-offline` finds a new policy's TRUE redemption rate.

One small seeded program and log (400 members, 8,000 decisions): everything is drawn from
fixed seeds, so the bounds below are checked on one fixed draw, not on chance.
"""

from dataclasses import replace

import pytest

from perkrank.simulation.ope_check import OpeSetting, OpeTrial, ope_trial

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
SETTING = replace(OpeSetting(), members=400, decisions=8000)


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> OpeTrial:
    return ope_trial(tmp_path_factory.mktemp("ope"), SETTING, seed=0)


def test_the_log_has_the_asked_decisions_and_the_new_policy_differs_from_the_logger(trial):
    assert trial.evaluation.decisions == SETTING.decisions
    assert 0.1 < trial.evaluation.agreement < 0.9
    assert trial.logged_per_decision < trial.true_per_decision


def test_the_two_truths_agree_the_population_and_the_logged_visits(trial):
    assert trial.sample_true_per_decision == pytest.approx(trial.true_per_decision, rel=0.05)


def test_doubly_robust_finds_the_true_rate_and_ips_covers_it(trial):
    estimates = trial.evaluation.estimates["redemption"]
    truth = trial.true_per_impression
    low, high = estimates["ips"].per_impression_ci
    assert estimates["dr"].per_impression == pytest.approx(truth, rel=0.2)
    assert low <= truth <= high
