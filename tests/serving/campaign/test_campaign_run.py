"""`run_campaign`: one decision line per member, opt-outs and caps as for offers requests, and a
rerun after an interruption that neither skips nor counts twice."""

import json

import pytest

from perkrank.campaign_run import CampaignFileError, read_members, run_campaign
from perkrank.serving.campaign import campaign_decision_id
from perkrank.serving.domain.selection import Preferences
from tests.serving.campaign.world import campaign_context, counters, member_ids, reopened

OPTED_OUT = ("M00000002", "M00000010")


class KilledError(Exception):
    """Stands for the process being killed."""


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def prepared(store):
    context = campaign_context(store)
    store.set_preferences(OPTED_OUT[0], Preferences(opt_out_all=True))
    store.set_preferences(OPTED_OUT[1], Preferences(opted_out_channels=frozenset({"email"})))
    return context


def run(context, out, **options):
    values = {"campaign": "june", "channel": "email", "out": out, "limit": 5, "chunk": 16}
    return run_campaign(context, member_ids(), **values | options)


def test_one_decision_per_member_opt_outs_and_caps(new_store, tmp_path):
    store = new_store()
    done = run(prepared(store), tmp_path / "out.jsonl")

    decided = lines(tmp_path / "out.jsonl")
    assert [d["member_id"] for d in decided] == member_ids()
    assert done.decided == len(member_ids()) and done.skipped == 0
    by_member = {d["member_id"]: d for d in decided}
    for member_id in OPTED_OUT:
        assert by_member[member_id]["offers"] == []
        assert by_member[member_id]["suppressed"]["opt_out"] > 0
    assert done.with_offers == len(member_ids()) - len(OPTED_OUT)
    assert all(d["decision_id"] == campaign_decision_id("june", d["member_id"]) for d in decided)
    shown: dict[str, int] = {}
    for decision in decided:
        assert len(decision["offers"]) <= 5
        for offer in decision["offers"]:
            shown[offer["offer_id"]] = shown.get(offer["offer_id"], 0) + 1
    assert max(shown.values()) == 25  # offer_total: limit 25, reached and never passed
    totals = {
        key.split("}")[0].removeprefix("{o:"): count
        for key, count in counters(store).items()
        if ":cap:offer_total:" in key
    }
    assert totals == shown
    assert len(reopened(store).read_decisions("0-0", 1000)) == len(member_ids())


@pytest.mark.parametrize("killed_at", [0, 3, 7])
def test_rerun_after_interruption_counts_once(new_store, tmp_path, killed_at):
    uninterrupted = new_store()
    run(prepared(uninterrupted), tmp_path / "whole.jsonl")
    store = new_store()
    out = tmp_path / "resumed.jsonl"

    def kill(chunk):
        if chunk == killed_at:  # decided and counted, not yet written
            raise KilledError

    with pytest.raises(KilledError):
        run(prepared(store), out, before_write=kill)
    written = len(lines(out))
    assert written == killed_at * 16
    resumed = run(prepared(reopened(store)), out)  # a new process

    assert resumed.skipped == written
    assert [d["member_id"] for d in lines(out)] == member_ids()
    assert counters(store) == counters(uninterrupted)
    assert any(":cap:offer_total:" in key for key in counters(store))


def test_a_partly_written_last_line_is_decided_again(tmp_path):
    from perkrank.serving.state.memory import MemoryStateStore

    store = MemoryStateStore()
    out = tmp_path / "out.jsonl"
    run(prepared(store), out, before_write=lambda chunk: None)
    complete = out.read_bytes()
    last = complete.rstrip(b"\n").rsplit(b"\n", 1)[1]
    out.write_bytes(complete[: -len(last) - 1] + last[:20])  # killed while writing it

    again = run(prepared(store), out)

    assert again.decided == 1
    assert [d["member_id"] for d in lines(out)] == member_ids()


def test_another_campaign_in_the_output_file_is_refused(tmp_path):
    from perkrank.serving.state.memory import MemoryStateStore

    out = tmp_path / "out.jsonl"
    run(prepared(MemoryStateStore()), out)
    with pytest.raises(CampaignFileError, match=r"out.jsonl:1: campaign 'june', not 'july'"):
        run(prepared(MemoryStateStore()), out, campaign="july")


def test_members_file_header_duplicates_and_bad_ids(tmp_path):
    members = tmp_path / "members.txt"
    members.write_text("member_id\nM1\n\nM2\nM1\n", encoding="utf-8")
    assert read_members(members) == ["M1", "M2"]
    members.write_text("M1\nM 2\n", encoding="utf-8")
    with pytest.raises(CampaignFileError, match=r"members.txt:2: member_id 'M 2'"):
        read_members(members)
