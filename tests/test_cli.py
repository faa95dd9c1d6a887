"""The `perkrank` command's surface: every command listed with its help, usage errors instead
of tracebacks, --version, the generator's default dates, and `serve` refusing the demo keys
off loopback."""

import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime
from importlib import metadata

import pandas as pd
import pytest

from perkrank.cli import main
from perkrank.demo import history_start


def usage_error(arguments: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """What `perkrank ARGUMENTS` writes to stderr, asserting argparse's exit 2."""
    with pytest.raises(SystemExit) as stopped:
        main(arguments)
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["generate", "--members", "0"], "argument --members: 0 is out of range"),
        (["generate", "--members", "-5"], "argument --members: -5 is out of range"),
        (["generate", "--months", "0"], "argument --months: 0 is out of range"),
        (["generate", "--months", "many"], "argument --months: 'many' is not a whole number"),
        (["generate", "--seed", "-1"], "argument --seed: -1 is out of range: use at least 0"),
        (["generate", "--start", "2025-13-01"], "argument --start: '2025-13-01' is not a date"),
        (["demo", "--members", "0"], "argument --members: 0 is out of range"),
        (["serve", "--data", ".", "--port", "0"], "argument --port: 0 is out of range"),
        (["serve", "--data", ".", "--port", "65536"], "argument --port: 65536 is out of range"),
        (["serve", "--data", ".", "--workers", "0"], "argument --workers: 0 is out of range"),
        (["caps", "history", "--limit", "0"], "argument --limit: 0 is out of range"),
        (["events", "export", "--out", "e.csv", "--page-size", "0"], "argument --page-size: 0"),
        (["caps", "show", "--url", "127.0.0.1:8000"], "is not an http(s) URL"),
    ],
)
def test_bad_numbers_and_urls_are_usage_errors(arguments, message, tmp_path, capsys):
    if arguments[0] == "generate":
        arguments = [*arguments, "--out", str(tmp_path / "data")]

    error = usage_error(arguments, capsys)

    assert message in error
    assert "Traceback" not in error
    assert not (tmp_path / "data").exists()


def test_missing_directories_and_files_in_the_way_are_usage_errors(tmp_path, capsys):
    missing = str(tmp_path / "missing")
    in_the_way = tmp_path / "a-file"
    in_the_way.write_text("not a directory", encoding="utf-8")

    for arguments in (["validate", missing], ["train", "--data", missing]):
        assert f"{missing}: no such directory" in usage_error(arguments, capsys)
    assert f"{missing}: no such directory" in usage_error(["serve", "--data", missing], capsys)
    error = usage_error(["generate", "--out", str(in_the_way)], capsys)
    assert f"{in_the_way}: exists and is not a directory" in error


def test_import_complete_journey_names_a_missing_raw_file(tmp_path, capsys):
    assert main(["import-complete-journey", "--source", str(tmp_path), "--out", "x"]) == 1
    assert "missing campaign_descriptions.csv" in capsys.readouterr().err


def test_import_complete_journey_writes_the_contract_tables(tmp_path, capsys):
    from tests.features.complete_journey_raw import write_raw

    raw, out = write_raw(tmp_path / "raw"), tmp_path / "data"
    assert main(["import-complete-journey", "--source", str(raw), "--out", str(out)]) == 0
    assert "offers: 4 rows" in capsys.readouterr().out  # campaign × coupon
    assert main(["validate", str(out)]) == 0


def test_version_is_the_installed_package_version(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--version"])

    assert stopped.value.code == 0
    assert capsys.readouterr().out == f"perkrank {metadata.version('perkrank')}\n"


def test_generate_by_default_ends_the_history_last_month_so_the_catalog_covers_today(tmp_path):
    today = datetime.now(UTC).date()

    assert main(["generate", "--members", "40", "--months", "2", "--out", str(tmp_path)]) == 0

    offers = pd.read_csv(tmp_path / "offers.csv", parse_dates=["valid_from", "valid_to"])
    purchases = pd.read_csv(tmp_path / "purchases.csv", parse_dates=["ts"])
    this_month = pd.Timestamp(today.replace(day=1))
    valid_today = offers[(offers.valid_from <= str(today)) & (offers.valid_to >= str(today))]
    assert len(valid_today) > 0
    assert purchases.ts.min() >= pd.Timestamp(history_start(today, 2))
    assert purchases.ts.max() < this_month


def test_generate_start_overrides_the_default(tmp_path):
    arguments = ["generate", "--members", "40", "--months", "1", "--start", "2025-01-01"]

    assert main([*arguments, "--out", str(tmp_path)]) == 0

    purchases = pd.read_csv(tmp_path / "purchases.csv", parse_dates=["ts"])
    assert date(2025, 1, 1) <= purchases.ts.min().date()
    assert purchases.ts.max().date() < date(2025, 2, 1)


def test_serve_refuses_the_demo_keys_on_an_address_that_is_not_loopback(tmp_path):
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("PERKRANK_")
    }
    command = [sys.executable, "-m", "perkrank.cli", "serve", "--data", str(tmp_path)]

    command += ["--host", "0.0.0.0"]

    result = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=120)

    assert result.returncode == 2
    assert "refusing to serve on '0.0.0.0' with the published demo API keys" in result.stderr
    assert "PERKRANK_APP_API_KEYS" in result.stderr
    assert "PERKRANK_ADMIN_API_KEYS" in result.stderr
    assert "Traceback" not in result.stderr


COMMANDS = [
    *("generate", "import-complete-journey", "validate", "train", "promote"),
    *("evaluate-offline", "serve", "caps", "experiments", "levers", "offers", "events"),
    *("decisions", "decide", "consents", "members", "demo", "simulate"),
]


def test_help_lists_every_command_and_each_command_has_its_own_help(capsys):
    with pytest.raises(SystemExit) as stopped:
        main(["--help"])
    assert stopped.value.code == 0
    listed = capsys.readouterr().out
    assert re.findall(r"^    (\S+)", listed, re.MULTILINE) == COMMANDS
    assert "95 % intervals" in " ".join(listed.split())  # evaluate-offline's %, not a format

    for command in COMMANDS:
        with pytest.raises(SystemExit) as stopped:
            main([command, "--help"])
        assert stopped.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: perkrank {command} ")
