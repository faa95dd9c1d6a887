"""API keys sent in `X-API-Key`: app keys read offers and preferences, admin keys do everything.

Keys come from `ServeConfig.app_api_keys` and `admin_api_keys` (environment variables
PERKRANK_APP_API_KEYS and PERKRANK_ADMIN_API_KEYS win): comma-separated `name:key` pairs or
bare keys. The service refuses to start without any key, and with the published demo keys of
configs/serve.yaml on any address but loopback. A presented key is compared with every
configured key in constant time; keys are never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import re
from dataclasses import dataclass
from enum import IntEnum

from fastapi import HTTPException, status

from perkrank.config import ConfigError, ServeConfig

API_KEY_HEADER = "X-API-Key"
MIN_KEY_LENGTH = 16
_KEY_PATTERN = re.compile(r"[!-~]+")
"""Visible ASCII, no spaces."""
DEMO_KEYS = frozenset({b"demo-app-key-change-me", b"demo-admin-key-change-me"})
"""The keys configs/serve.yaml ships: published, so only for a server on a loopback address."""


class Role(IntEnum):
    """What a key may do; a higher role may do everything a lower one may."""

    APP = 1
    ADMIN = 2


@dataclass(frozen=True)
class ApiKey:
    """One configured key: a name for humans, the secret, and its role."""

    name: str
    secret: bytes
    role: Role


class ApiKeys:
    """The configured keys; answers which role a presented key has."""

    def __init__(self, keys: list[ApiKey]) -> None:
        if not keys:
            raise ConfigError(
                "no API keys configured: set app_api_keys and admin_api_keys in the serve "
                "config or PERKRANK_APP_API_KEYS / PERKRANK_ADMIN_API_KEYS"
            )
        self._keys = keys

    @classmethod
    def from_settings(cls, settings: ServeConfig) -> ApiKeys:
        """Parse the app and admin keys of `settings` (raises ConfigError, also for demo keys
        on a host that is not loopback)."""
        keys = parse_keys(settings.app_api_keys, Role.APP)
        keys += parse_keys(settings.admin_api_keys, Role.ADMIN)
        refuse_demo_keys(keys, settings.host)
        return cls(keys)

    def key_of(self, presented: str | None) -> ApiKey | None:
        """The matching key of the highest role, None for no key or an unknown one."""
        if not presented:
            return None
        presented_bytes = presented.encode()
        match = None
        for key in self._keys:
            if hmac.compare_digest(key.secret, presented_bytes) and (
                match is None or key.role > match.role
            ):
                match = key
        return match

    def require(self, presented: str | None, needed: Role) -> str:
        """The key's name (for audit trails); raise 401 for a missing or unknown key, 403 for
        a key below `needed`."""
        key = self.key_of(presented)
        if key is None:
            problem = "unknown API key" if presented else "missing API key"
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED, f"{problem}: send a valid key in {API_KEY_HEADER}"
            )
        if key.role < needed:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN, "this API key may not do this: it needs an admin key"
            )
        return key.name


def parse_keys(text: str, role: Role) -> list[ApiKey]:
    """Keys from comma-separated `name:key` pairs or bare keys (named `<role>-<n>`)."""
    keys = []
    for position, entry in enumerate(part.strip() for part in text.split(",")):
        if not entry:
            continue
        name, separator, secret = entry.partition(":")
        if not separator:
            name, secret = f"{role.name.lower()}-{position + 1}", entry
        if len(secret) < MIN_KEY_LENGTH or not _KEY_PATTERN.fullmatch(secret):
            raise ConfigError(
                f"{role.name.lower()} API key {name!r}: use at least {MIN_KEY_LENGTH} visible "
                "ASCII characters (no spaces or commas)"
            )
        keys.append(ApiKey(name, secret.encode(), role))
    return keys


def refuse_demo_keys(keys: list[ApiKey], host: str) -> None:
    """Raise ConfigError if a published demo key would serve a host that is not loopback."""
    demo = [key for key in keys if key.secret in DEMO_KEYS]
    if not demo or is_loopback(host):
        return
    names = ", ".join(f"{key.role.name.lower()} key {key.name!r}" for key in demo)
    raise ConfigError(
        f"refusing to serve on {host!r} with the published demo API keys ({names}): they are "
        "for 127.0.0.1 only. Set your own keys in PERKRANK_APP_API_KEYS and "
        "PERKRANK_ADMIN_API_KEYS (or app_api_keys and admin_api_keys in the serve config), "
        "or bind to 127.0.0.1"
    )


def is_loopback(host: str) -> bool:
    """Whether `host` (an IP address or `localhost`) only listens on this machine."""
    if host.lower() in {"localhost", "localhost."}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
