"""What every console page shares: the templates, the signed-in session, form checks.

A page handler asks `signed_in(request)` for the session (no session: a redirect to the
sign-in page), reads a posted form with `posted_form` (a form without this session's CSRF
token: 403) and answers with `render`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import HTTPException, Request, status
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from starlette.datastructures import FormData

from perkrank.serving.console.session import COOKIE_NAME, Session, SessionSigner

PREFIX = "/console"
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")
NAVIGATION = (
    ("overview", "Overview"),
    ("caps", "Caps"),
    ("catalog", "Catalog"),
    ("member", "Member lookup"),
    ("experiments", "Experiments"),
    ("models", "Models"),
)


def utc_time(seconds: float | None) -> str:
    """Unix seconds as `YYYY-MM-DD HH:MM` UTC (— for none)."""
    if seconds is None:
        return "—"
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def detail_text(value: Any) -> str:
    """A verdict detail's value in a few characters: lists joined, mappings as key:value."""
    if isinstance(value, dict):
        return ",".join(f"{key}:{detail_text(item)}" for key, item in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return ",".join(detail_text(item) for item in value)
    return str(value)


TEMPLATES.env.filters["utc"] = utc_time
TEMPLATES.env.filters["detail"] = detail_text


def signer_of(request: Request) -> SessionSigner:
    """The app's session signer."""
    return request.app.state.console_signer


def signed_in(request: Request) -> Session:
    """The request's console session; without one, a redirect to the sign-in page."""
    session = signer_of(request).session_of(request.cookies.get(COOKIE_NAME))
    if session is None:
        raise HTTPException(status.HTTP_303_SEE_OTHER, headers={"Location": f"{PREFIX}/login"})
    return session


async def posted_form(request: Request, session: Session) -> FormData:
    """The posted form, refused (403) without this session's CSRF token."""
    form = await request.form()
    token = form.get("csrf")
    if not isinstance(token, str) or not signer_of(request).csrf_ok(session, token):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")
    return form


def render(
    request: Request,
    template: str,
    session: Session | None,
    page: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """A page of the console (with navigation and the CSRF token when signed in)."""
    context = {
        "page": page,
        "navigation": NAVIGATION,
        "prefix": PREFIX,
        "session": session,
        "csrf": signer_of(request).csrf_token(session) if session else "",
        **values,
    }
    return TEMPLATES.TemplateResponse(request, template, context, status_code=status_code)


def redirect(path: str, **query: Any) -> HTMLResponse:
    """A 303 to a console page (after a post), with `query` as notices."""
    suffix = f"?{urlencode(query)}" if query else ""
    return HTMLResponse("", status_code=303, headers={"Location": f"{PREFIX}{path}{suffix}"})
