"""Bounded request bodies, read only once the caller's key is checked, and 422s that never
echo large inputs.

`RequestLimits` (plain ASGI) guards the body of every request that may carry one (POST, PUT,
PATCH, DELETE): when the app first asks for it, after routing and before a byte is read, it
checks the key the route asks for (401/403), refuses a declared Content-Length above the
route's limit (413), and then counts the body as it is read, cutting a chunked one off with
413 once it passes the limit. Offers files get `max_upload_bytes`, every other body
`max_json_body_bytes`. Validation errors keep FastAPI's `loc`, `msg` and `type`; echoed inputs
are cut to a short prefix.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from perkrank.config import ServeConfig
from perkrank.serving.api.auth import API_KEY_HEADER
from perkrank.serving.api.deps import key_role

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UPLOAD_PATHS = frozenset({"/v1/admin/offers", "/console/catalog/check"})
"""Routes whose body is a file, limited by `max_upload_bytes` instead of `max_json_body_bytes`."""
MAX_ECHO_CHARS = 100
"""Longest input a 422 echoes: longer text is cut to this prefix and `…`, longer JSON dropped."""
MAX_MESSAGE_CHARS = 300
"""Longest `msg` of a 422 (a validator's message may quote its input)."""


def limit_requests(app: FastAPI, settings: ServeConfig) -> None:
    """Bound `app`'s request bodies (the key checked first) and trim what its 422s echo."""
    app.add_middleware(
        RequestLimits,
        json_bytes=settings.max_json_body_bytes,
        upload_bytes=settings.max_upload_bytes,
    )
    app.add_exception_handler(RequestValidationError, _validation_failed)


class BodyTooLarge(HTTPException):
    """A body passed its route's limit while it was read: 413."""

    def __init__(self, limit: int, setting: str) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes ({setting})")


class RequestLimits:
    """Key first, then a bounded body, for every request that may carry one."""

    def __init__(self, app: ASGIApp, json_bytes: int, upload_bytes: int) -> None:
        self.app = app
        self._limits = {
            False: (json_bytes, "max_json_body_bytes"),
            True: (upload_bytes, "max_upload_bytes"),
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in BODY_METHODS:
            await self.app(scope, receive, send)
            return
        await self.app(scope, self._guarded(scope, receive), send)

    def _guarded(self, scope: Scope, receive: Receive) -> Receive:
        """`receive` that admits the request on its first call (raising HTTPException: 401,
        403, 413) and raises BodyTooLarge once more body came in than the route's limit."""
        received: int | None = None
        limit, setting = self._limits[False]

        async def guarded_receive() -> Message:
            nonlocal received, limit, setting
            if received is None:
                limit, setting = self._admit(scope)
                received = 0
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit, setting)
            return message

        return guarded_receive

    def _admit(self, scope: Scope) -> tuple[int, str]:
        """The routed request's body limit and its setting, once its key has the role the
        route asks for and its declared length is within the limit."""
        route = scope.get("route")
        limit, setting = self._limits[getattr(route, "path", None) in UPLOAD_PATHS]
        headers = Headers(scope=scope)
        role = key_role(route.dependant) if isinstance(route, APIRoute) else None
        if role is not None:
            scope["app"].state.keys.require(headers.get(API_KEY_HEADER), role)
        if _declared_length(headers) > limit:
            raise BodyTooLarge(limit, setting)
        return limit, setting


def _declared_length(headers: Headers) -> int:
    """The body's Content-Length (0 when none, or one the server would not accept)."""
    try:
        return int(headers.get("content-length", "0"))
    except ValueError:
        return 0


async def _validation_failed(request: Request, error: Exception) -> Response:
    """FastAPI's 422, its echoed inputs cut short."""
    assert isinstance(error, RequestValidationError)
    return JSONResponse(
        {"detail": [trimmed_error(item) for item in error.errors()]}, status_code=422
    )


def trimmed_error(error: Mapping[str, Any]) -> dict[str, Any]:
    """A validation error with `msg` shortened, and `input` and the `ctx` values cut to a
    short prefix (an input that is neither text nor short JSON is dropped)."""
    trimmed = {name: value for name, value in error.items() if name not in ("input", "ctx")}
    trimmed["msg"] = shortened(str(error.get("msg", "")), MAX_MESSAGE_CHARS)
    if "input" in error:
        echoed = echo(error["input"])
        if echoed is not None or error["input"] is None:
            trimmed["input"] = echoed
    if isinstance(error.get("ctx"), Mapping):
        trimmed["ctx"] = {
            name: value if _is_scalar(value) and not isinstance(value, str) else echo(str(value))
            for name, value in error["ctx"].items()
        }
    return jsonable_encoder(trimmed)


def echo(value: Any) -> Any:
    """What a 422 may show of an input: short text, a number, or JSON of at most
    MAX_ECHO_CHARS; None for anything larger that is not text."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value[: MAX_ECHO_CHARS + 1]).decode("utf-8", "replace")
    if _is_scalar(value):
        return shortened(value) if isinstance(value, str) else value
    try:
        text = json.dumps(jsonable_encoder(value))
    except (TypeError, ValueError):
        return None
    return value if len(text) <= MAX_ECHO_CHARS else None


def shortened(text: str, most: int = MAX_ECHO_CHARS) -> str:
    """`text`, or its first `most` characters and `…`."""
    return text if len(text) <= most else text[:most] + "…"


def _is_scalar(value: Any) -> bool:
    """Whether `value` is JSON's null, text, a number or a boolean."""
    return value is None or isinstance(value, str | int | float | bool)
