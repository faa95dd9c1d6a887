"""Problems found in the input: where (file, row, field), what, and the error listing them all.

Checks report into one `Problems` collector; `raise_if_any` raises a `DataValidationError` with
every problem, so one run lists everything to fix.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice

import numpy as np

LISTED_PROBLEMS = 50
"""Problems `str(DataValidationError)` lists; each single check also keeps at most this many."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input: file name, row (header = 1), field and what is wrong."""

    file: str
    row: int | None
    field: str | None
    message: str

    def __str__(self) -> str:
        place = self.file if self.row is None else f"{self.file} row {self.row}"
        if self.field is not None:
            place = f"{place}, field {self.field}"
        return f"{place}: {self.message}"


class DataValidationError(ValueError):
    """The data directory breaks the data contract.

    `problems` holds whole-file problems first, then row problems by file and row (at most
    `LISTED_PROBLEMS` per check); `problem_count` counts every problem found.
    """

    def __init__(self, problems: list[Problem], problem_count: int) -> None:
        self.problems = problems
        self.problem_count = problem_count
        lines = [str(problem) for problem in problems[:LISTED_PROBLEMS]]
        if problem_count > len(lines):
            lines.append(f"… and {problem_count - len(lines)} more problems")
        super().__init__("\n".join(lines))


class Problems:
    """Problems found so far: all counted, at most `LISTED_PROBLEMS` kept per check."""

    def __init__(self) -> None:
        self.kept: list[Problem] = []
        self.count = 0

    def add(self, file: str, row: int | None, field: str | None, message: str) -> None:
        self.count += 1
        self.kept.append(Problem(file, row, field, message))

    def add_rows(
        self, file: str, field: str | None, rows: np.ndarray, messages: Iterable[str]
    ) -> None:
        """One problem per row of `rows`; `messages` is only consumed for the problems kept."""
        self.count += len(rows)
        for row, message in islice(zip(rows, messages, strict=True), LISTED_PROBLEMS):
            self.kept.append(Problem(file, int(row), field, message))

    def raise_if_any(self) -> None:
        if not self.count:
            return
        file_order: dict[str, int] = {}
        for problem in self.kept:
            file_order.setdefault(problem.file, len(file_order))
        ordered = sorted(
            self.kept,
            key=lambda problem: (problem.row is not None, file_order[problem.file], problem.row),
        )
        raise DataValidationError(ordered, self.count)


def quote(value: str) -> str:
    """The cell as shown in a message: quoted, cut to 40 characters."""
    return repr(value if len(value) <= 40 else f"{value[:39]}…")
