"""Progress lines for long CLI steps, written to stderr so stdout stays machine-readable."""

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def step(title: str) -> Iterator[None]:
    """Print `title …` before a step and its duration after it."""
    print(f"… {title}", file=sys.stderr, flush=True)
    started = time.perf_counter()
    yield
    print(f"✓ {title} ({time.perf_counter() - started:.1f}s)", file=sys.stderr, flush=True)


def report(message: str) -> None:
    """Print one progress message."""
    print(f"  {message}", file=sys.stderr, flush=True)
