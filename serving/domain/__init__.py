"""Serving policy as pure functions: what the state stores decide, with no I/O."""
