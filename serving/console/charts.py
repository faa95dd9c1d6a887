"""Bar charts as inline SVG geometry, computed here and drawn by templates/chart.html.

Pure: values in, rectangles out. A chart has groups (e.g. days or offers), each with one bar
per series (e.g. "in force" and "proposed"); bars share one scale from zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH = 640
HEIGHT = 220
LABEL_ROOM = 36
"""Pixels under the bars for the group labels."""
TOP_ROOM = 22
"""Pixels above the tallest bar for the scale's label."""
COLORS = ("#2f6db5", "#e08a1e", "#3a9a5b", "#a4488c")


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    color: str
    title: str


@dataclass(frozen=True)
class Chart:
    """What the template draws: bars, group labels (x, text), the legend, the maximum."""

    title: str
    bars: list[Bar]
    labels: list[tuple[float, str]]
    legend: list[tuple[str, str]]
    maximum: float
    width: int = WIDTH
    height: int = HEIGHT


def bar_chart(title: str, groups: Sequence[str], series: Mapping[str, Sequence[float]]) -> Chart:
    """Grouped bars: `series` maps a series name to one value per group."""
    maximum = max((value for values in series.values() for value in values), default=0.0)
    scale = (HEIGHT - LABEL_ROOM - TOP_ROOM) / maximum if maximum > 0 else 0.0
    slot = WIDTH / max(len(groups), 1)
    bar_width = slot * 0.8 / max(len(series), 1)
    bars, labels = [], []
    for index, group in enumerate(groups):
        left = index * slot + slot * 0.1
        labels.append((index * slot + slot / 2, group))
        for number, (name, values) in enumerate(series.items()):
            height = values[index] * scale
            bars.append(
                Bar(
                    x=left + number * bar_width,
                    y=HEIGHT - LABEL_ROOM - height,
                    width=max(bar_width - 2, 1),
                    height=height,
                    color=COLORS[number % len(COLORS)],
                    title=f"{group} · {name}: {values[index]:g}",
                )
            )
    legend = [(name, COLORS[number % len(COLORS)]) for number, name in enumerate(series)]
    return Chart(title, bars, labels, legend, maximum)
