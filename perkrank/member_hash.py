"""The one pseudonym of a member id that suppression lists and exclusion files hold."""

from __future__ import annotations

import hashlib


def member_hash(member_id: str) -> str:
    """SHA-256 of the member id (hex): matches the id in later data without storing it."""
    return hashlib.sha256(member_id.encode("utf-8")).hexdigest()
