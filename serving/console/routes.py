"""The console's router: sign-in and sign-out, the overview and member lookup pages; the caps,
catalog, experiments and models pages come from their own modules.

`console_routes(settings)` is included by the app factory; `serve_console(app, settings)`
also mounts the static files and the session signer.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Annotated, get_args

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from perkrank.config import ServeConfig
from perkrank.serving.api.auth import Role, parse_keys
from perkrank.serving.api.deps import context_of
from perkrank.serving.api.schemas import MEMBER_ID_PATTERN, Channel
from perkrank.serving.console.caps_pages import caps_pages
from perkrank.serving.console.catalog_pages import catalog_pages
from perkrank.serving.console.experiments_pages import experiments_pages
from perkrank.serving.console.models_pages import models_pages
from perkrank.serving.console.overview import overview
from perkrank.serving.console.pages import (
    PREFIX,
    posted_form,
    redirect,
    render,
    signed_in,
    signer_of,
)
from perkrank.serving.console.session import COOKIE_NAME, SESSION_SECONDS, SessionSigner
from perkrank.serving.domain.ranking import OfferRequest
from perkrank.serving.explaining import explain_member
from perkrank.serving.model_registry import ModelRegistry

LOGIN_COOKIE = "perkrank_console_login"
"""A random nonce set with the sign-in form: its CSRF token is this nonce's signature."""
CHANNELS: tuple[str, ...] = get_args(Channel)
SIGN_IN_PROBLEMS = {"bad-key": "That is not an admin key.", "signed-out": "Signed out."}
"""What the sign-in page may say (by code: the query never puts its own text on the page)."""


def serve_console(
    app: FastAPI, settings: ServeConfig, model_registry: ModelRegistry | None = None
) -> None:
    """Add `/console` to `app`: its pages, static files, session signer and the registry the
    models page lists and changes (None: it shows the model in force only)."""
    app.state.model_registry = model_registry
    admin_secrets = [key.secret for key in parse_keys(settings.admin_api_keys, Role.ADMIN)]
    app.state.console_signer = SessionSigner.from_admin_secrets(admin_secrets)
    static = StaticFiles(packages=[("perkrank.serving.console", "static")])
    app.mount(f"{PREFIX}/static", static, name="console-static")
    app.include_router(console_routes(settings))


def console_routes(settings: ServeConfig) -> APIRouter:
    """Every console page (not in the OpenAPI document)."""
    router = APIRouter(prefix=PREFIX, include_in_schema=False)

    @router.get("/login")
    async def login_page(request: Request, problem: str = "") -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        response = render(
            request,
            "login.html",
            None,
            "login",
            problem=SIGN_IN_PROBLEMS.get(problem, ""),
            login_csrf=signer_of(request).csrf_token_for(nonce),
        )
        _set_cookie(request, response, LOGIN_COOKIE, nonce, 600)
        return response

    @router.post("/login")
    async def login(request: Request) -> HTMLResponse:
        form = await request.form()
        signer = signer_of(request)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        token = form.get("csrf")
        expected = signer.csrf_token_for(nonce)
        if not nonce or not isinstance(token, str) or not hmac.compare_digest(token, expected):
            return HTMLResponse("missing or wrong CSRF token", status_code=403)
        key = request.app.state.keys.key_of(str(form.get("api_key", "")))
        if key is None or key.role < Role.ADMIN:
            return redirect("/login", problem="bad-key")
        _, cookie = signer.new_session(key.name)
        response = redirect("/")
        _set_cookie(request, response, COOKIE_NAME, cookie, SESSION_SECONDS)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    @router.post("/logout")
    async def logout(request: Request) -> HTMLResponse:
        await posted_form(request, signed_in(request))
        response = redirect("/login", problem="signed-out")
        response.delete_cookie(COOKIE_NAME, path=PREFIX)
        return response

    @router.get("/")
    async def overview_page(request: Request) -> HTMLResponse:
        session = signed_in(request)
        await run_in_threadpool(request.app.state.recorder.flush)
        figures = await run_in_threadpool(overview, context_of(request))
        return render(request, "overview.html", session, "overview", overview=figures)

    @router.get("/member")
    async def member_page(
        request: Request,
        member_id: Annotated[str, Query(max_length=128)] = "",
        channel: str = "app",
    ) -> HTMLResponse:
        session = signed_in(request)
        explained, problem = None, ""
        if member_id:
            if not re.fullmatch(MEMBER_ID_PATTERN, member_id) or channel not in CHANNELS:
                problem = "member id: letters, digits, '.', '_', '-' only; channel: one listed"
            else:
                offer_request = OfferRequest(member_id, channel, settings.default_limit, None, None)
                explained = await run_in_threadpool(
                    explain_member, context_of(request), settings, offer_request
                )
        return render(
            request,
            "member.html",
            session,
            "member",
            member_id=member_id,
            channel=channel,
            channels=CHANNELS,
            explained=explained,
            problem=SIGN_IN_PROBLEMS.get(problem, ""),
        )

    router.include_router(caps_pages())
    router.include_router(catalog_pages(settings))
    router.include_router(experiments_pages())
    router.include_router(models_pages(settings))
    return router


def _set_cookie(
    request: Request, response: HTMLResponse, name: str, value: str, seconds: int
) -> None:
    """An HttpOnly, SameSite=Strict cookie of the console's paths (Secure over HTTPS)."""
    secure = request.url.scheme == "https"
    response.set_cookie(
        name, value, max_age=seconds, path=PREFIX, httponly=True, samesite="strict", secure=secure
    )
