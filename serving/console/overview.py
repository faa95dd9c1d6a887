"""The overview page's figures: offers served and suppressed (this process's counters),
events and redemptions per day (the store's event log), and the versions in force."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import Counter as PromCounter

from perkrank.serving.api.observability import OFFERS_SERVED, OFFERS_SUPPRESSED
from perkrank.serving.caps_preview import SECONDS_PER_DAY, read_since
from perkrank.serving.console.charts import Chart, bar_chart
from perkrank.serving.domain.context import ServingContext

DAYS = 14


@dataclass(frozen=True)
class Overview:
    """What the overview page shows."""

    served: int
    suppressed: dict[str, int]
    days: list[str]
    events_by_day: dict[str, list[int]]
    """Event type → count per day of `days`."""
    versions: dict[str, str]
    charts: list[Chart]


def counter_values(counter: PromCounter, label: str) -> dict[str, int]:
    """A labelled counter's totals by the label's value (this process)."""
    totals: Counter[str] = Counter()
    for metric in counter.collect():
        for sample in metric.samples:
            if sample.name.endswith("_total"):
                totals[sample.labels.get(label, "")] += int(sample.value)
    return dict(totals)


def events_per_day(context: ServingContext, days: int, now: float) -> tuple[list[str], dict]:
    """The last `days` UTC days and, per event type, how many events the store kept each day."""
    start = (int(now) // SECONDS_PER_DAY - days + 1) * SECONDS_PER_DAY
    labels = [
        datetime.fromtimestamp(start + day * SECONDS_PER_DAY, UTC).strftime("%m-%d")
        for day in range(days)
    ]
    counts = {kind: [0] * days for kind in ("impression", "click", "redemption")}
    for stored in read_since(context.store.read_events, start):
        day = int(stored.event.ts - start) // SECONDS_PER_DAY
        if 0 <= day < days and stored.event.type in counts:
            counts[stored.event.type][day] += 1
    return labels, counts


def overview(context: ServingContext, now: float | None = None) -> Overview:
    """The overview of the context in force."""
    now = time.time() if now is None else now
    suppressed = counter_values(OFFERS_SUPPRESSED, "reason")
    served = sum(counter_values(OFFERS_SERVED, "channel").values())
    days, counts = events_per_day(context, DAYS, now)
    experiments = ", ".join(item.name for item in context.experiments.experiments) or "none"
    versions = {
        "Model": context.model_version,
        "Caps": f"version {context.caps_version} ({len(context.rules())} rules)",
        "Catalog": f"version {context.catalog_version} "
        f"({len(context.ranker.catalog.offers)} offers)",
        "Experiments": f"version {context.experiments_version}: {experiments}",
    }
    charts = [
        bar_chart("Events per day", days, {kind: values for kind, values in counts.items()}),
        bar_chart(
            "Offers served and suppressed (this process, since start)",
            ["served", *suppressed],
            {"offers": [served, *suppressed.values()]},
        ),
    ]
    return Overview(served, suppressed, days, counts, versions, charts)
