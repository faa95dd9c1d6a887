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


class Counter:
    """Progress of `total` units of work: `advance()` prints "title done/total, ~Ns left"."""

    def __init__(self, title: str, total: int, *, every: int = 1) -> None:
        self.title, self.total, self.every = title, total, max(every, 1)
        self.done = 0
        self.started = time.perf_counter()

    def advance(self, detail: str = "") -> None:
        """Count one unit done; print a line every `every` units and at the last one."""
        self.done += 1
        if self.done % self.every and self.done != self.total:
            return
        elapsed = time.perf_counter() - self.started
        left = elapsed / self.done * max(self.total - self.done, 0)
        suffix = f": {detail}" if detail else ""
        report(f"{self.title} {self.done}/{self.total}, {elapsed:.0f}s, ~{left:.0f}s left{suffix}")


def every_quarter(total: int) -> int:
    """A `Counter` step that prints about four lines over `total` units."""
    return max(total // 4, 1)
