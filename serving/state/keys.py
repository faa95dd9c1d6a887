"""The Redis key builders: every key serving reads or writes, built by pure functions.

The layout (keys, types, TTLs, fields, hash tags) is documented once, in docs/redis_keys.md;
change that document with this module.
"""

from __future__ import annotations

_ESCAPES = str.maketrans({"%": "%25", "{": "%7B", "}": "%7D"})


def key_part(value: str) -> str:
    """An id as it appears inside a key name: `%`, `{` and `}` percent-encoded."""
    return value.translate(_ESCAPES)


def member_tag(prefix: str, member_id: str) -> str:
    """The start of every key of one member: `<prefix>:{m:<member_id>}`."""
    return f"{prefix}:{{m:{key_part(member_id)}}}"


def offer_tag(prefix: str, offer_id: str) -> str:
    """The start of every key of one offer: `<prefix>:{o:<offer_id>}`."""
    return f"{prefix}:{{o:{key_part(offer_id)}}}"


def preferences_key(prefix: str, member_id: str) -> str:
    """The hash holding one member's opt-outs and personalization flag."""
    return f"{member_tag(prefix, member_id)}:prefs"


def consents_key(prefix: str, member_id: str) -> str:
    """The list of one member's consent records (JSON), newest first."""
    return f"{member_tag(prefix, member_id)}:consents"


def member_cap_key(prefix: str, member_id: str, rule: str, bucket: str) -> str:
    """The hash of a member-scoped rule's counters for one member and bucket."""
    return f"{member_tag(prefix, member_id)}:cap:{rule}:{bucket}"


def shown_decision_key(prefix: str, member_id: str, decision_id: str) -> str:
    """Set while a decision counts as shown to the member (a re-show is not counted again)."""
    return f"{member_tag(prefix, member_id)}:shown:{key_part(decision_id)}"


def offer_cap_key(prefix: str, offer_id: str, rule: str, bucket: str) -> str:
    """An offer_total rule's counter for one offer and bucket."""
    return f"{offer_tag(prefix, offer_id)}:cap:{rule}:{bucket}"


def redeemed_key(prefix: str, offer_id: str) -> str:
    """How often the offer was redeemed in total; compared with its budget."""
    return f"{offer_tag(prefix, offer_id)}:redeemed"


def group_tag(prefix: str, group: str, cluster: bool) -> str:
    """The start of the keys of one group of shared state (`events`, `decisions`, `live`,
    `privacy`): `<prefix>:<group>`, on Redis Cluster `<prefix>:{<group>}` (one slot per
    group, so a group's multi-key transactions stay in one slot)."""
    return f"{prefix}:{{{group}}}" if cluster else f"{prefix}:{group}"


def event_id_key(prefix: str, event_id: str) -> str:
    """Set while an event id counts as seen (duplicates are skipped)."""
    return f"{prefix}:event:{key_part(event_id)}"


def events_key(prefix: str, cluster: bool = False) -> str:
    """The stream of kept events, oldest first."""
    return group_tag(prefix, "events", cluster)


def decisions_key(prefix: str, cluster: bool = False) -> str:
    """The stream of kept offer decisions, oldest first."""
    return group_tag(prefix, "decisions", cluster)


def cap_counter(
    prefix: str,
    scope: str,
    rule: str,
    bucket: str,
    *,
    member_id: str,
    channel: str,
    offer_id: str,
    partner_id: str,
) -> tuple[str, str | None]:
    """Where a rule keeps this member's, channel's and offer's count: (key, hash field or None)."""
    if scope == "offer_total":
        return offer_cap_key(prefix, offer_id, rule, bucket), None
    field = {"member_offer": offer_id, "member_partner": partner_id, "member_channel": channel}
    return member_cap_key(prefix, member_id, rule, bucket), field[scope]


def live_versions_key(prefix: str, cluster: bool = False) -> str:
    """The hash of live-setting versions (caps, catalog, experiments) and the reload
    generation."""
    return f"{group_tag(prefix, 'live', cluster)}:versions"


def live_setting_key(prefix: str, setting: str, cluster: bool = False) -> str:
    """The current version of a live setting (`caps`, `catalog`, `experiments`), as JSON."""
    return f"{group_tag(prefix, 'live', cluster)}:{setting}"


def live_version_key(prefix: str, setting: str, version: int, cluster: bool = False) -> str:
    """One kept version of a live setting (a published catalog), as JSON."""
    return f"{live_setting_key(prefix, setting, cluster)}:v:{version}"


def live_history_key(prefix: str, setting: str, cluster: bool = False) -> str:
    """The audit list of a live setting's changes, newest first."""
    return f"{live_setting_key(prefix, setting, cluster)}:history"


def suppressed_key(prefix: str, cluster: bool = False) -> str:
    """The hash of forgotten members: hash of the member id → when first forgotten."""
    return f"{group_tag(prefix, 'privacy', cluster)}:suppressed"


def no_personalization_key(prefix: str, cluster: bool = False) -> str:
    """The set of member ids whose personalization is off (training leaves them out)."""
    return f"{group_tag(prefix, 'privacy', cluster)}:no_personalization"


def forgotten_audit_key(prefix: str, cluster: bool = False) -> str:
    """The audit list of forgotten members (JSON, the id hashed), newest first."""
    return f"{group_tag(prefix, 'privacy', cluster)}:forgotten"


def glob_escaped(text: str) -> str:
    """`text` with the glob characters of SCAN MATCH escaped, so it matches only itself."""
    return "".join(f"\\{c}" if c in "*?[]\\" else c for c in text)
