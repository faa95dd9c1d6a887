"""Structured logs: one JSON object per line on stderr, tagged with the request's id.

Each line has `ts` (UTC, ISO 8601), `level`, `logger`, `message` and `request_id` (null
outside a request); access lines (logger `perkrank.access`) add `method`, `route` (the route
template, e.g. `/v1/members/{member_id}/offers`, never the raw path), `status` and
`duration_ms`; errors add `exception`. No line holds member ids or API keys: uvicorn's own
access log, which prints raw paths, stays off.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

REQUEST_ID: ContextVar[str | None] = ContextVar("perkrank_request_id", default=None)
"""The id of the request being handled (set by `ObservabilityMiddleware`); a record that
carries its own `request_id` (as access lines do) keeps it."""
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")
"""What an access line adds, given as `extra=` to the log call."""


class JsonFormatter(logging.Formatter):
    """A log record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": record.__dict__.get("request_id") or REQUEST_ID.get(),
        }
        for name in ACCESS_FIELDS:
            if name in record.__dict__:
                line[name] = record.__dict__[name]
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A `logging.config.dictConfig` (and uvicorn `log_config`) writing JSON lines to stderr
    for perkrank's and uvicorn's loggers."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": f"{__name__}.JsonFormatter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": level, "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": level},
    }
