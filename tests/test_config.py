"""Config files are validated at start and environment variables override them."""

from pathlib import Path

import pytest
from pydantic import ValidationError

from perkrank.config import (
    CONFIG_DIR,
    CapsConfig,
    ConfigError,
    ServeConfig,
    TrainConfig,
    load_config,
)
from perkrank.experiment_config import ExperimentArm


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("settings_type", "file_name"),
    [(TrainConfig, "train.yaml"), (ServeConfig, "serve.yaml"), (CapsConfig, "caps.yaml")],
)
def test_shipped_configs_are_valid(settings_type, file_name):
    assert load_config(settings_type, CONFIG_DIR / file_name) is not None


def test_unknown_key_fails_naming_the_key(tmp_path):
    path = write(tmp_path / "train.yaml", "als:\n  factorz: 10\n")
    with pytest.raises(ConfigError, match=r"train.yaml: als.factorz: Extra inputs"):
        load_config(TrainConfig, path)


def test_wrong_type_fails_naming_the_key(tmp_path):
    path = write(tmp_path / "train.yaml", "split:\n  test_days: soon\n")
    with pytest.raises(ConfigError, match=r"split.test_days"):
        load_config(TrainConfig, path)


def test_environment_variable_overrides_nested_yaml_value(tmp_path, monkeypatch):
    path = write(tmp_path / "train.yaml", "als:\n  factors: 10\n")
    monkeypatch.setenv("PERKRANK_TRAIN_ALS__FACTORS", "24")
    assert load_config(TrainConfig, path).als.factors == 24


def test_bad_environment_variable_fails_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("PERKRANK_PORT", "not-a-port")
    with pytest.raises(ConfigError, match=r"port"):
        load_config(ServeConfig, None)


def test_redis_url_comes_from_environment(monkeypatch):
    monkeypatch.setenv("PERKRANK_REDIS_URL", "redis://127.0.0.1:6390/3")
    assert load_config(ServeConfig, None).redis_url == "redis://127.0.0.1:6390/3"


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("{name: a, scope: member_offer, limit: -1, window: day}", "rules.0.limit"),
        ("{name: a, scope: member_offer, limit: 1, window: fortnight}", "unknown window"),
        ("{name: a, scope: member_galaxy, limit: 1, window: day}", "rules.0.scope"),
        ("{name: a, scope: member_offer, limit: 1, window: day, colour: red}", "colour"),
    ],
)
def test_bad_cap_rule_fails_naming_the_rule(tmp_path, rule, message):
    path = write(tmp_path / "caps.yaml", f"rules:\n  - {rule}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(CapsConfig, path)


def test_duplicate_cap_rule_names_are_rejected(tmp_path):
    rule = "{name: a, scope: member_offer, limit: 1, window: day}"
    path = write(tmp_path / "caps.yaml", f"rules:\n  - {rule}\n  - {rule}\n")
    with pytest.raises(ConfigError, match="duplicate rule names: a"):
        load_config(CapsConfig, path)


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(TrainConfig, tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("arm", "message"),
    [
        ({"policy": "popular", "model": "challenger"}, "only a personalized arm names a model"),
        ({"policy": "none", "exploration": {"kind": "epsilon", "epsilon": 0.1}}, "nothing"),
        ({"exploration": {"kind": "softmax", "temperature": 0}}, "greater than 0"),
        ({"exploration": {"kind": "epsilon", "epsilon": 1.5}}, "less than or equal to 1"),
        ({"exploration": {"kind": "thompson"}}, "does not match any of the expected tags"),
        ({"model": "../etc"}, "should match pattern"),
    ],
)
def test_an_arm_names_a_model_and_explores_only_where_it_can(arm, message):
    with pytest.raises(ValidationError, match=message):
        ExperimentArm.model_validate({"name": "arm", "share": 1.0} | arm)
