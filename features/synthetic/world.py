"""The hidden world of a synthetic program: its partners and items, and its members' traits.

`generate` draws it first from its seed; `hidden_world` draws it again from the same arguments
(same seed, same draws), so the simulator reads the planted tastes without them being written
(`world_of`: from the arguments `generate` writes to generator.json).
"""

from __future__ import annotations

import calendar
import json
from datetime import date
from pathlib import Path

import numpy as np

from perkrank.features.synthetic.members import Members, build_members
from perkrank.features.synthetic.program import Program, build_program

GENERATOR_FILE = "generator.json"
"""The generator's arguments, written beside the tables: what rebuilds the hidden world."""


def draw_world(
    rng: np.random.Generator, members: int, months: int, period_days: np.ndarray
) -> tuple[Program, Members]:
    """The program and its members, the first draws of `rng`."""
    program = build_program(rng, months)
    return program, build_members(rng, program, members, period_days[0], period_days[months])


def hidden_world(*, members: int, months: int, seed: int, start: date) -> tuple[Program, Members]:
    """The program and members `generate` drew with these arguments."""
    rng = np.random.Generator(np.random.PCG64(seed))
    return draw_world(rng, members, months, period_days(start, months + 2))


def world_of(data_dir: Path) -> tuple[Program, Members, date]:
    """The program and members of a `perkrank generate` directory, and the first day of its
    catalog month after the history (from its generator.json)."""
    path = Path(data_dir) / GENERATOR_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; only perkrank generate data can be simulated")
    arguments = json.loads(path.read_text())
    start, months = date.fromisoformat(arguments["start"]), arguments["months"]
    program, members = hidden_world(
        members=arguments["members"], months=months, seed=arguments["seed"], start=start
    )
    served_month = int(period_days(start, months + 1)[months])
    return program, members, date.fromordinal(date(1970, 1, 1).toordinal() + served_month)


def period_days(start: date, count: int) -> np.ndarray:
    """Start day (days since 1970-01-01) of `count` monthly periods and the end of the last."""
    epoch = date(1970, 1, 1).toordinal()
    return np.array([_add_months(start, month).toordinal() - epoch for month in range(count + 1)])


def _add_months(day: date, months: int) -> date:
    year, month_index = divmod(day.month - 1 + months, 12)
    month = month_index + 1
    last_day = calendar.monthrange(day.year + year, month)[1]
    return date(day.year + year, month, min(day.day, last_day))
