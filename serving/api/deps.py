"""What handlers depend on: the caller's key checked for a role, the context in force, the
live refresher. Declared once here; handlers name them in their signatures.

`AppKey` and `AdminKey` are the name of the presented key (for audit trails) once its role is
checked: 401 for a missing or unknown key, 403 for an app key where an admin key is needed.
The offers hot path calls `require_key` and `context_of` directly instead: FastAPI's
per-dependency work would cost more than its ranking.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request, Security
from fastapi.dependencies.models import Dependant
from fastapi.security import APIKeyHeader

from perkrank.serving.api.auth import API_KEY_HEADER, Role
from perkrank.serving.domain.context import ServingContext
from perkrank.serving.live import LiveRefresher

PresentedKey = Annotated[str | None, Security(APIKeyHeader(name=API_KEY_HEADER, auto_error=False))]
"""The raw `X-API-Key` header (also what OpenAPI documents as the security scheme)."""


def require_key(request: Request, presented: str | None, role: Role) -> str:
    """The presented key's name if it has `role` (or higher); 401/403 otherwise."""
    return request.app.state.keys.require(presented, role)


def context_of(request: Request) -> ServingContext:
    """The serving context in force for this request (read once per request)."""
    return request.app.state.holder.current


async def _app_key(request: Request, api_key: PresentedKey) -> str:
    return require_key(request, api_key, Role.APP)


async def _admin_key(request: Request, api_key: PresentedKey) -> str:
    return require_key(request, api_key, Role.ADMIN)


def key_role(dependant: Dependant) -> Role | None:
    """The highest role a route's dependencies check the key for; None: it checks no key."""
    roles = [key_role(sub) for sub in dependant.dependencies]
    roles += [
        role
        for sub in dependant.dependencies
        for check, role in ((_app_key, Role.APP), (_admin_key, Role.ADMIN))
        if sub.call is check
    ]
    return max((role for role in roles if role is not None), default=None)


async def _context(request: Request) -> ServingContext:
    return context_of(request)


async def _live(request: Request) -> LiveRefresher:
    return request.app.state.live


async def _partners(request: Request) -> Any:
    return request.app.state.partners


AppKey = Annotated[str, Depends(_app_key)]
"""An app or admin key's name."""
AdminKey = Annotated[str, Depends(_admin_key)]
"""An admin key's name."""
Context = Annotated[ServingContext, Depends(_context)]
"""The serving context in force."""
Live = Annotated[LiveRefresher, Depends(_live)]
"""The process's live refresher (admin changes go through it)."""
Partners = Annotated[Any, Depends(_partners)]
"""The partners table (a pandas DataFrame) published catalogs are checked against; None:
publishing is refused."""
