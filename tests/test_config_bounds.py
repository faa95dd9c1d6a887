"""Every numeric setting has bounds: an absurd value stops the program at start (ConfigError)
(the API's 422s: tests/serving/api/test_caps_bounds.py), naming the field, instead of failing
every request later."""

import re
from pathlib import Path

import pytest

from perkrank.config import (
    MAX_WINDOW_SECONDS,
    CapsConfig,
    ConfigError,
    ServeConfig,
    TrainConfig,
    load_config,
)

HUGE = 10**20


def rule(**fields: object) -> str:
    values = {"name": "r", "scope": "member_offer", "limit": 1, "window": "day"} | fields
    return "rules:\n  - {" + ", ".join(f"{key}: {value}" for key, value in values.items()) + "}\n"


BAD_VALUES = [
    # (settings type, YAML text, the field the message must name)
    (CapsConfig, rule(window=HUGE), "rules.0.window"),
    (CapsConfig, rule(window=MAX_WINDOW_SECONDS + 1), "rules.0.window"),
    (CapsConfig, rule(window=0), "rules.0.window"),
    (CapsConfig, rule(limit=HUGE), "rules.0.limit"),
    (CapsConfig, rule(limit=-1), "rules.0.limit"),
    (ServeConfig, f"store_timeout_ms: {HUGE}", "store_timeout_ms"),
    (ServeConfig, "store_timeout_ms: 0", "store_timeout_ms"),
    (ServeConfig, "model_poll_seconds: 1.0e+20", "model_poll_seconds"),
    (ServeConfig, "model_poll_seconds: .nan", "model_poll_seconds"),
    (ServeConfig, "default_limit: 100000", "default_limit"),
    (ServeConfig, "max_limit: 100000", "max_limit"),
    (ServeConfig, "max_offers_per_partner: 100000", "max_offers_per_partner"),
    (ServeConfig, "candidate_pool_multiplier: 1000", "candidate_pool_multiplier"),
    (ServeConfig, f"candidate_pool_margin: {HUGE}", "candidate_pool_margin"),
    (ServeConfig, f"max_in_flight: {HUGE}", "max_in_flight"),
    (ServeConfig, "max_in_flight: 0", "max_in_flight"),
    (ServeConfig, f"max_queued: {HUGE}", "max_queued"),
    (ServeConfig, "max_queued: -1", "max_queued"),
    (ServeConfig, "queue_timeout_ms: 3600000", "queue_timeout_ms"),
    (ServeConfig, "queue_timeout_ms: 0", "queue_timeout_ms"),
    (ServeConfig, f"max_connections: {HUGE}", "max_connections"),
    (ServeConfig, f"max_events_per_request: {HUGE}", "max_events_per_request"),
    (ServeConfig, f"events_kept: {HUGE}", "events_kept"),
    (ServeConfig, "port: 70000", "port"),
    (TrainConfig, f"seed: {HUGE}", "seed"),
    (TrainConfig, "threads: 100000", "threads"),
    (TrainConfig, "split: {test_days: 100000}", "split.test_days"),
    (TrainConfig, "split: {validation_days: 100000}", "split.validation_days"),
    (TrainConfig, "interactions: {half_life_days: .inf}", "interactions.half_life_days"),
    (TrainConfig, "interactions: {bm25_k1: 1.0e+20}", "interactions.bm25_k1"),
    (TrainConfig, "als: {factors: 100000}", "als.factors"),
    (TrainConfig, "als: {regularization: 1.0e+20}", "als.regularization"),
    (TrainConfig, "als: {alpha: 1.0e+20}", "als.alpha"),
    (TrainConfig, "als: {iterations: 100000}", "als.iterations"),
    (TrainConfig, "bpr: {factors: 100000}", "bpr.factors"),
    (TrainConfig, "bpr: {learning_rate: 1.0e+20}", "bpr.learning_rate"),
    (TrainConfig, "bpr: {regularization: 1.0e+20}", "bpr.regularization"),
    (TrainConfig, "bpr: {iterations: 100000}", "bpr.iterations"),
    (TrainConfig, "lightfm: {no_components: 100000}", "lightfm.no_components"),
    (TrainConfig, "lightfm: {learning_rate: 1.0e+20}", "lightfm.learning_rate"),
    (TrainConfig, "lightfm: {item_alpha: 1.0e+20}", "lightfm.item_alpha"),
    (TrainConfig, "lightfm: {user_alpha: 1.0e+20}", "lightfm.user_alpha"),
    (TrainConfig, "lightfm: {epochs: 100000}", "lightfm.epochs"),
    (TrainConfig, "blend: {weights: {als: .nan}}", "blend.weights.als"),
    (TrainConfig, f"blend: {{search_members: {HUGE}}}", "blend.search_members"),
    (TrainConfig, "evaluation: {k_values: [5, 100000]}", "evaluation.k_values.1"),
    (TrainConfig, f"evaluation: {{max_members: {HUGE}}}", "evaluation.max_members"),
    (TrainConfig, "registry: {promote_margin: 1.0e+20}", "registry.promote_margin"),
]


@pytest.mark.parametrize(("settings_type", "text", "field"), BAD_VALUES)
def test_out_of_bounds_values_fail_at_start_naming_the_field(
    tmp_path: Path, settings_type, text: str, field: str
):
    path = tmp_path / "config.yaml"
    path.write_text(text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(f"config.yaml: {field}: ")):
        load_config(settings_type, path)


def test_the_bounds_admit_their_limits(tmp_path: Path):
    path = tmp_path / "caps.yaml"
    path.write_text(rule(window=MAX_WINDOW_SECONDS, limit=10**9), encoding="utf-8")
    assert load_config(CapsConfig, path).rules[0].window == MAX_WINDOW_SECONDS
