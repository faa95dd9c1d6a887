"""Console sessions: a signed, expiring cookie naming the admin key that signed in, and the
CSRF token every console form carries.

The cookie is `payload.signature`: the payload (key name, expiry, a random nonce) as
URL-safe base64 JSON, signed with HMAC-SHA256 under a secret derived from the configured
admin keys, so every worker accepts it and rotating the keys ends every session. The CSRF
token is the HMAC of the session's nonce: a page's forms carry it, a post without it is
refused. The JSON API never reads this cookie: it wants `X-API-Key`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

COOKIE_NAME = "perkrank_console"
SESSION_SECONDS = 8 * 3600
"""A session ends 8 hours after sign-in."""


@dataclass(frozen=True)
class Session:
    """A signed-in admin: the key's name (for audit trails), expiry and nonce."""

    actor: str
    expires: float
    nonce: str


class SessionSigner:
    """Signs and checks session cookies and CSRF tokens with one secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    @classmethod
    def from_admin_secrets(cls, admin_secrets: list[bytes]) -> SessionSigner:
        """A signer whose secret follows from the admin keys (the same in every worker)."""
        digest = hashlib.sha256(b"perkrank-console-session\0")
        for secret in sorted(admin_secrets):
            digest.update(hashlib.sha256(secret).digest())
        return cls(digest.digest())

    def new_session(self, actor: str, now: float | None = None) -> tuple[Session, str]:
        """A fresh session for `actor` and its cookie value."""
        now = time.time() if now is None else now
        session = Session(actor, now + SESSION_SECONDS, secrets.token_urlsafe(16))
        payload = json.dumps({"a": actor, "e": session.expires, "n": session.nonce})
        encoded = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
        return session, f"{encoded}.{self._sign(encoded)}"

    def session_of(self, cookie: str | None, now: float | None = None) -> Session | None:
        """The session a cookie value carries; None: missing, forged, malformed or expired."""
        if not cookie or "." not in cookie:
            return None
        encoded, _, signature = cookie.rpartition(".")
        if not hmac.compare_digest(signature, self._sign(encoded)):
            return None
        try:
            padded = encoded + "=" * (-len(encoded) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded))
            session = Session(str(payload["a"]), float(payload["e"]), str(payload["n"]))
        except (ValueError, KeyError, TypeError):
            return None
        now = time.time() if now is None else now
        return session if session.expires > now else None

    def csrf_token(self, session: Session) -> str:
        """The token this session's forms carry."""
        return self.csrf_token_for(session.nonce)

    def csrf_token_for(self, nonce: str) -> str:
        """The CSRF token of a nonce (a session's, or the sign-in form's)."""
        return self._sign(f"csrf:{nonce}")

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        """Whether a posted token is this session's."""
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(session))

    def _sign(self, text: str) -> str:
        mac = hmac.new(self._secret, text.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")
