"""The Redis key layout: every key serving reads or writes, built by pure functions.

`<prefix>` is `ServeConfig.key_prefix`. Ids inside key names are written verbatim except `%`,
`{` and `}`, which are percent-encoded (`%25`, `%7B`, `%7D`), so an id can neither end a hash
tag early nor make two keys collide; hash fields hold ids verbatim. `<bucket>` is
`perkrank.serving.windows.current_bucket(rule.window, now).label`.

| Key                                            | Holds                               | TTL    |
|------------------------------------------------|-------------------------------------|--------|
| `<prefix>:{m:<member_id>}:prefs`               | hash: opt-outs (below)              | none   |
| `<prefix>:{m:<member_id>}:cap:<rule>:<bucket>` | hash: offer/partner/channel → count | window |
| `<prefix>:{o:<offer_id>}:cap:<rule>:<bucket>`  | integer: count                      | window |
| `<prefix>:{o:<offer_id>}:redeemed`             | integer: redemptions so far         | none   |
| `<prefix>:event:<event_id>`                    | "1": the event id was seen          | 7 days |
| `<prefix>:events`                              | stream: kept events (below)         | none   |
| `<prefix>:live:versions`                       | hash: caps, catalog, reload → int   | none   |
| `<prefix>:live:<setting>`                      | string: JSON of the current version | none   |
| `<prefix>:live:<setting>:history`              | list: JSON audit, newest first      | none   |

Cap counters: a rule with scope member_offer, member_partner or member_channel keeps one hash
per member and bucket whose fields are the offer ids, partner ids or channels it counted; a
rule with scope offer_total keeps one integer per offer and bucket. A `total` window has the
bucket `total` and no expiry; every other bucket's counters expire when the bucket ends (TTL
"window"). `select` adds to the counters of rules that count `served`; `record_events` to
those of rules that count impressions, clicks or redemptions, in the bucket of the event's own
time (an event whose bucket has ended counts nothing), and a redemption also adds to
`redeemed`, which `select` compares with the offer's budget.

Events: `record_events` runs one Lua script (serving/events.lua) per batch. An event with an
`event_id` first sets its id key (SET NX, 7 days); if the key existed, the event is a
duplicate and changes nothing. Every kept event is appended to the events stream (XADD
MAXLEN ~ `ServeConfig.events_kept`) with the fields type, member_id, offer_id, partner_id,
category, channel, ts (Unix seconds) and event_id (empty when none was sent).

The preference hash has the fields `opt_out_all` and `personalization` ("1"/"0") and one field
`channel:<channel>`, `category:<category>` or `partner:<partner_id>` (value "1") per opt-out.

Live settings: `<setting>` is `caps` (the cap rules in force) or `catalog` (the published
offers). The versions hash holds each setting's version and the reload generation, which
`POST /v1/admin/reload` bumps; every serving process polls it and loads what changed. A
setting's current version is `{version, actor, at, value}` (`actor`: the API key's name; `at`:
Unix seconds); its history keeps the last 100 changes `{version, actor, at, old, new}` (for
the catalog, `old` and `new` are `{offers, sha256}` summaries, not whole catalogs). All of a
change is written in one MULTI/EXEC transaction.

Hash tags: all of one member's keys share the slot of `{m:<member_id>}` and all of one offer's
keys the slot of `{o:<offer_id>}`. One `select` call touches the member's slot and the slots of
every candidate offer in one Lua script, so it needs a non-cluster Redis (a single primary,
optionally with replicas or Sentinel); Redis Cluster would reject the script's cross-slot keys.
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


def member_cap_key(prefix: str, member_id: str, rule: str, bucket: str) -> str:
    """The hash of a member-scoped rule's counters for one member and bucket."""
    return f"{member_tag(prefix, member_id)}:cap:{rule}:{bucket}"


def offer_cap_key(prefix: str, offer_id: str, rule: str, bucket: str) -> str:
    """An offer_total rule's counter for one offer and bucket."""
    return f"{offer_tag(prefix, offer_id)}:cap:{rule}:{bucket}"


def redeemed_key(prefix: str, offer_id: str) -> str:
    """How often the offer was redeemed in total; compared with its budget."""
    return f"{offer_tag(prefix, offer_id)}:redeemed"


def event_id_key(prefix: str, event_id: str) -> str:
    """Set while an event id counts as seen (duplicates are skipped)."""
    return f"{prefix}:event:{key_part(event_id)}"


def events_key(prefix: str) -> str:
    """The stream of kept events, oldest first."""
    return f"{prefix}:events"


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


def live_versions_key(prefix: str) -> str:
    """The hash of live-setting versions (caps, catalog) and the reload generation."""
    return f"{prefix}:live:versions"


def live_setting_key(prefix: str, setting: str) -> str:
    """The current version of a live setting (`caps` or `catalog`), as JSON."""
    return f"{prefix}:live:{setting}"


def live_history_key(prefix: str, setting: str) -> str:
    """The audit list of a live setting's changes, newest first."""
    return f"{live_setting_key(prefix, setting)}:history"
