"""The web console at `/console`: server-rendered pages over the same functions as the admin
API, signed in with an admin key (a session cookie, CSRF tokens on every form)."""
