"""Console sessions and CSRF tokens: signed, expiring, bound to the admin keys (pure)."""

from perkrank.serving.console.session import SESSION_SECONDS, SessionSigner

NOW = 1_780_000_000.0


def signer(*secrets: bytes) -> SessionSigner:
    return SessionSigner.from_admin_secrets(list(secrets or [b"admin-key-for-tests-0001"]))


def test_a_cookie_carries_its_session_until_it_expires():
    session, cookie = signer().new_session("ops", now=NOW)

    assert signer().session_of(cookie, now=NOW + 1) == session
    assert session.actor == "ops"
    assert signer().session_of(cookie, now=NOW + SESSION_SECONDS - 1) == session
    assert signer().session_of(cookie, now=NOW + SESSION_SECONDS) is None


def test_a_forged_or_foreign_cookie_is_refused():
    _, cookie = signer().new_session("ops", now=NOW)
    payload, _, signature = cookie.rpartition(".")
    _, other = signer().new_session("intruder", now=NOW)

    assert signer().session_of(f"{other.rpartition('.')[0]}.{signature}", now=NOW) is None
    tampered = ("y" if signature[0] == "x" else "x") + signature[1:]
    assert signer().session_of(f"{payload}.{tampered}", now=NOW) is None
    assert signer(b"another-admin-key-0001").session_of(cookie, now=NOW) is None
    for garbage in (None, "", "no-dot", ".", "%%%.%%%"):
        assert signer().session_of(garbage, now=NOW) is None


def test_the_csrf_token_is_the_sessions_own():
    first, _ = signer().new_session("ops", now=NOW)
    second, _ = signer().new_session("ops", now=NOW)

    assert signer().csrf_ok(first, signer().csrf_token(first))
    assert not signer().csrf_ok(first, signer().csrf_token(second))
    assert not signer().csrf_ok(first, "")
    assert not signer().csrf_ok(first, None)
