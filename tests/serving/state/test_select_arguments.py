"""A one-member call's ARGV built from its lists' kept numbering (`NumberedLists`) is the
byte-for-byte ARGV of a fresh `SelectCall`, whatever else the request changes."""

from dataclasses import replace

from perkrank.config import CapRule
from perkrank.serving.domain.selection import Candidate, SelectionRequest
from perkrank.serving.state.select_arguments import NumberedLists, SelectCall

CANDIDATES = [
    Candidate(f"offer-{n}", f"partner-{n % 4}", ("food", "travel", "fuel")[n % 3], n or None)
    for n in range(12)
]
RULE = CapRule(name="daily", scope="member_offer", limit=1, window="day")


def fresh(request: SelectionRequest, rules_text: str, state: str = "") -> tuple[int, bytes]:
    call = SelectCall("pk")
    call.add(request, rules_text, state)
    return call.arguments()


def test_kept_numbering_gives_the_bytes_of_a_fresh_call():
    personalized, fallback = CANDIDATES[2:9], [CANDIDATES[0], *CANDIDATES[5:11]]
    request = SelectionRequest(
        member_id="m1",
        channel="app",
        now=1.0,
        limit=3,
        max_per_partner=2,
        personalized=personalized,
        fallback=fallback,
        rules=(RULE,),
    )
    variants = [
        request,
        replace(request, member_id="m2", decision_id="ab" * 16),
        replace(request, channel="web", limit=2, local_slots=1),
        replace(request, sensitive=frozenset({"food"})),
        replace(request, sensitive=frozenset({"travel", "fuel"})),
        replace(request, personalized=fallback, fallback=personalized),
        replace(request, personalized=list(personalized[:3]), fallback=[]),
    ]
    lists = NumberedLists()
    for number, variant in enumerate(variants * 2):
        rules_text = f"rules-{number % 3}"
        state = "" if number % 2 else f"state-{number}"
        assert lists.arguments("pk", variant, rules_text, state) == fresh(
            variant, rules_text, state
        ), number


def test_at_most_size_pairs_are_kept():
    lists = NumberedLists(size=2)
    requests = [
        SelectionRequest("m", "app", 1.0, 2, 2, CANDIDATES[n : n + 3], CANDIDATES[:2])
        for n in range(5)
    ]
    for request in requests:
        assert lists.arguments("pk", request, "") == fresh(request, "")
    assert len(lists) == 2
