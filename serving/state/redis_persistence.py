"""Does Redis keep what it holds across a restart? Opt-outs live only there.

Checked once at startup: a Redis with neither the append-only file (AOF) nor RDB snapshots
forgets every preference, cap counter and event on restart, so the process logs a warning
naming the settings that keep them (see the README's "Running Redis in production").
"""

from __future__ import annotations

import logging

import redis

log = logging.getLogger("perkrank.serving")

ADVICE = "appendonly yes, appendfsync everysec (and save 3600 1 300 100 60 10000 for snapshots)"
"""The Redis settings that keep opt-outs across a restart."""


def persistence_problem(client: redis.Redis) -> str | None:
    """Why state in the Redis of `client` may not survive a restart; None when it persists."""
    try:
        appendonly = client.config_get("appendonly").get("appendonly", "no")
        save = client.config_get("save").get("save", "")
    except redis.ResponseError as error:  # CONFIG renamed away, or an ACL without it
        return (
            f"cannot check whether Redis persists opt-outs (CONFIG GET refused: {error}); "
            f"make sure it runs with {ADVICE}"
        )
    except redis.RedisError as error:
        return f"cannot check whether Redis persists opt-outs ({error}); it needs {ADVICE}"
    if appendonly == "yes" or save.strip():
        return None
    return (
        'Redis has neither AOF nor RDB snapshots (appendonly no, save ""): a restart forgets '
        f"every opt-out, cap counter and event; run it with {ADVICE}"
    )


def warn_without_persistence(client: redis.Redis) -> None:
    """Log one warning when Redis may forget opt-outs on restart."""
    problem = persistence_problem(client)
    if problem is not None:
        log.warning(problem)
