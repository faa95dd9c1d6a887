"""How long records are kept (`privacy_config.Retention`) as cut-off times and stream ids
(pure: the caller passes the clock)."""

from __future__ import annotations

from dataclasses import dataclass

from perkrank.privacy_config import DAY_SECONDS, Retention

RETENTION_KINDS = ("events", "decisions", "consents")
TRIM_SECONDS = 3600.0
"""How often each serving process removes expired records (`StateStore.trim_expired`)."""


@dataclass(frozen=True)
class Cutoffs:
    """Unix seconds per kind: a record from before it has expired."""

    events: float
    decisions: float
    consents: float

    @classmethod
    def at(cls, retention: Retention, now: float) -> Cutoffs:
        """The cut-offs of `retention` as of `now`."""
        return cls(
            events=now - retention.events_days * DAY_SECONDS,
            decisions=now - retention.decisions_days * DAY_SECONDS,
            consents=now - retention.consents_days * DAY_SECONDS,
        )


def min_stream_id(cutoff: float) -> str:
    """The first stream id at or after `cutoff` (ids are `<ms>-<seq>` of when they were added):
    XTRIM MINID with it removes the entries added before `cutoff`."""
    return f"{max(int(cutoff * 1000), 0)}-0"


def stream_seconds(stream_id: str) -> float:
    """When the entry of `stream_id` was added (Unix seconds)."""
    return int(stream_id.partition("-")[0]) / 1000
