"""`perkrank evaluate-offline`: the candidate bundle ranks each logged decision's member through
the serving ranker, and the estimates follow from the exported logs (worked out by hand).

small_app's world: the candidate ranks glow-beauty before fresh-grocery for alice.
"""

import csv
import json

import pytest

from perkrank.cli import main
from perkrank.config import ConfigError
from perkrank.training.offline_evaluation import model_uri

TS = "2026-06-15T10:00:00+00:00"
# (decision, offers shown with their propensity, policy); the first offers of d1 and d2 are
# clicked.
LOGGED = [
    ("d1", [("glow-beauty", 0.5), ("fresh-grocery", 1.0)], "personalized"),
    ("d2", [("fresh-grocery", 0.5), ("glow-beauty", 1.0)], "personalized"),
    ("d3", [("glow-beauty", 0.5), ("fresh-grocery", 1.0)], "personalized"),
    ("d4", [("fresh-grocery", 0.5), ("glow-beauty", 1.0)], "personalized"),
    ("d5", [("fresh-grocery", 1.0)], "popular"),
]


def write_logs(directory):
    decisions, events = directory / "decisions.csv", directory / "events.csv"
    rows = [
        {
            "decision_id": decision_id,
            "ts": TS,
            "member_id": "alice",
            "channel": "app",
            "model_version": "local:bundle",
            "experiment": "",
            "arm": "",
            "policy": policy,
            "personalized": policy == "personalized",
            "offer_id": offer_id,
            "rank": rank,
            "score": 0.0,
            "propensity": propensity,
        }
        for decision_id, shown, policy in LOGGED
        for rank, (offer_id, propensity) in enumerate(shown, start=1)
    ]
    with decisions.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    clicks = [("d1", "glow-beauty"), ("d2", "fresh-grocery")]
    with events.open("w", newline="") as file:
        writer = csv.DictWriter(
            file, fieldnames=["type", "member_id", "offer_id", "ts", "decision_id"]
        )
        writer.writeheader()
        for decision_id, offer_id in clicks:
            writer.writerow(
                {
                    "type": "click",
                    "member_id": "alice",
                    "offer_id": offer_id,
                    "ts": TS,
                    "decision_id": decision_id,
                }
            )
    return decisions, events


def test_evaluate_offline_prints_and_writes_the_estimates(small_service_files, tmp_path, capsys):
    decisions, events = write_logs(tmp_path)
    out = tmp_path / "estimate.json"

    code = main(
        [
            "evaluate-offline",
            f"--model={small_service_files['bundle']}",
            f"--data={small_service_files['data']}",
            f"--decisions={decisions}",
            f"--events={events}",
            f"--json={out}",
        ]
    )

    printed = capsys.readouterr().out
    assert code == 0
    written = json.loads(out.read_text())
    assert (written["decisions"], written["left_out"], written["agreement"]) == (4, 1, 0.5)
    clicks = written["estimates"]["click"]
    # Only d1 and d3 agree with the candidate (weights 2, 2 at both positions); d1's click.
    assert clicks["ips"]["per_decision"] == pytest.approx(2 / 4)
    assert clicks["ips"]["per_impression"] == pytest.approx(2 / 4 / 2)
    assert clicks["snips"]["per_decision"] == pytest.approx(2 / 4)
    assert written["estimates"]["redemption"]["ips"]["per_decision"] == 0
    assert written["effective_sample_size"] == [2.0, 2.0]
    assert "| click | IPS | 0.5000 (" in printed


def test_bad_rows_name_the_file_row_and_field(small_service_files, tmp_path, capsys):
    decisions, events = write_logs(tmp_path)
    decisions.write_text(decisions.read_text().replace(TS, "yesterday", 1))

    code = main(
        [
            "evaluate-offline",
            f"--model={small_service_files['bundle']}",
            f"--data={small_service_files['data']}",
            f"--decisions={decisions}",
            f"--events={events}",
        ]
    )

    assert code == 2
    assert f"{decisions}: row 1, field 'ts'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("3", "models:/perkrank-offers/3"),
        ("challenger", "models:/perkrank-offers@challenger"),
        ("models:/other/2", "models:/other/2"),
    ],
)
def test_a_version_or_alias_names_the_served_models_name(model, expected):
    assert model_uri(model, "models:/perkrank-offers@champion") == expected


def test_a_version_needs_a_registered_served_model():
    with pytest.raises(ConfigError, match="not a bundle directory"):
        model_uri("3", "var/models/champion")
