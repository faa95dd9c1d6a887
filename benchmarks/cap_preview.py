"""How long the cap preview's what-if replay takes over a week of logged decisions.

A synthetic log (seeded): `--members` members, 200 offers of 40 partners, `--decisions`
decisions of 5 offers each spread over 7 days, and one impression and (1 in 20) one
redemption per decision. Timed: `replay` under three rules (member_offer week, member_partner
day, offer_total day, counting `served`), and `preview` (both rule sets replayed, warnings,
figures). The floor is `replay` with no rules: the walk over the same log without counters.
Results: benchmarks/results/cap_preview.md.

    .venv/bin/python benchmarks/cap_preview.py [--decisions 100000] [--members 20000]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

from perkrank.config import CapRule
from perkrank.serving.domain.cap_preview import preview, replay
from perkrank.serving.domain.decisions import DecidedOffer, Decision
from perkrank.serving.domain.events import OfferEvent, StoredEvent
from perkrank.serving.domain.selection import Candidate

RESULTS = Path(__file__).with_name("results")
START = 1_780_000_000.0
RULES = (
    CapRule(name="offer_week", scope="member_offer", limit=3, window="week"),
    CapRule(name="partner_day", scope="member_partner", limit=2, window="day"),
    CapRule(name="offer_day", scope="offer_total", limit=2000, window="day"),
)
LOWERED = (RULES[0].model_copy(update={"limit": 1}), *RULES[1:])


def synthetic_log(decisions: int, members: int, seed: int = 7):
    draw = random.Random(seed)
    candidates = {f"o{i}": Candidate(f"o{i}", f"p{i % 40}", f"c{i % 12}") for i in range(200)}
    offer_ids = sorted(candidates)
    log, events = [], []
    for index in range(decisions):
        ts = START + index * 7 * 86_400 / decisions
        shown = draw.sample(offer_ids, 5)
        member = f"m{draw.randrange(members)}"
        offers = tuple(DecidedOffer(o, rank, 1.0, 1.0) for rank, o in enumerate(shown, 1))
        log.append(
            Decision(f"d{index}", member, "app", ts, "v", None, None, "personalized", True, offers)
        )
        first = candidates[shown[0]]
        for kind in ("impression", "redemption") if index % 20 == 0 else ("impression",):
            event = OfferEvent(
                kind, member, first.offer_id, first.partner_id, first.category, "app", ts + 1
            )
            events.append(StoredEvent(f"{int((ts + 1) * 1000)}-0", event))
    return log, events, candidates


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=20_000)
    arguments = parser.parse_args()
    log, events, candidates = synthetic_log(arguments.decisions, arguments.members)
    now = START + 7 * 86_400
    floor = min(timed(lambda: replay((), log, events, candidates)) for _ in range(2))
    capped = min(timed(lambda: replay(RULES, log, events, candidates)) for _ in range(2))
    whole = timed(lambda: preview(RULES, LOWERED, log, events, candidates, now))
    result = preview(RULES, LOWERED, log, events, candidates, now)
    rows = [
        ("replay, no rules (floor)", floor),
        ("replay, 3 rules", capped),
        ("preview (2 replays + figures)", whole),
    ]
    lines = [
        "# Cap preview replay",
        "",
        f"Machine: 2 cores, shared; `benchmarks/cap_preview.py`. {len(log)} decisions of 5 offers "
        f"({arguments.members} members, 200 offers, 7 days) and {len(events)} events.",
        "",
        "| step | seconds | µs per decision | ratio to floor |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {seconds:.2f} | {seconds / len(log) * 1e6:.1f} | {seconds / floor:.2f} |"
            for name, seconds in rows
        ),
        "",
        f"Offers shown: {result.offers_shown[0]} under the 3 rules, {result.offers_shown[1]} with "
        "offer_week lowered from 3 to 1.",
        "",
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cap_preview.md").write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
