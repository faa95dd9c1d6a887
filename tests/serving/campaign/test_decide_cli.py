"""`perkrank decide` end to end: files in, a JSON Lines file out, a rerun resumes."""

import json

import pytest
import redis

from perkrank.cli import main

CAPS = "rules:\n  - {name: email_day, scope: member_channel, limit: 100, window: day}\n"


def write_config(files, tmp_path, redis_url=None, prefix="perkrank"):
    files["caps"].write_text(CAPS, encoding="utf-8")
    config = {
        "model_uri": str(files["bundle"]),
        "caps_path": str(files["caps"]),
        "catalog_date": "2026-06-15",
        "redis_url": redis_url,
        "key_prefix": prefix,
        "default_limit": 2,
        "store_timeout_ms": 5000,
    }
    path = tmp_path / "serve.json.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def decide(files, config, members, out, *extra):
    return main(
        [
            "decide",
            *("--members", str(members), "--channel", "email", "--out", str(out)),
            *("--data", str(files["data"]), "--config", str(config), *extra),
        ]
    )


def test_decide_writes_one_line_per_member(small_service_files, tmp_path, capsys):
    files = small_service_files
    members = tmp_path / "members.txt"
    members.write_text("member_id\nalice\nbob\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"

    assert decide(files, write_config(files, tmp_path), members, out) == 0

    decided = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(d["member_id"], d["campaign"]) for d in decided] == [
        ("alice", str(out.resolve())),
        ("bob", str(out.resolve())),
    ]
    assert [o["offer_id"] for o in decided[0]["offers"]] == ["glow-beauty", "fresh-grocery"]
    assert "decided 2 members (2 with offers), skipped 0" in capsys.readouterr().out


def test_decide_resumes_on_redis_without_counting_twice(
    small_service_files, tmp_path, capsys, redis_url, redis_key_prefix
):
    files = small_service_files
    config = write_config(files, tmp_path, redis_url, redis_key_prefix)
    members = tmp_path / "members.txt"
    members.write_text("alice\nbob\ncarol\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert decide(files, config, members, out, "--campaign", "june") == 0
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"{redis_key_prefix}:{{m:carol}}:cap:email_day:"
    (counter,) = client.scan_iter(match=key.replace("{", "\\{").replace("}", "\\}") + "*")
    assert client.hget(counter, "email") == "2"
    text = out.read_text(encoding="utf-8")
    out.write_text(text[: text.rindex("carol") + 10], encoding="utf-8")  # killed mid-line

    assert decide(files, config, members, out, "--campaign", "june") == 0

    assert [json.loads(line)["member_id"] for line in out.read_text().splitlines()] == [
        "alice",
        "bob",
        "carol",
    ]
    assert client.hget(counter, "email") == "2"
    assert "decided 1 members (1 with offers), skipped 2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["decide", "--members", str(members), "--channel", "fax", "--out", str(out)])
