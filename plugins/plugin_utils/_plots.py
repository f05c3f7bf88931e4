"""The run's plots as PNG bytes, drawn on the controller with matplotlib (an optional dependency).

Input: ``results.plot_series``. Restarts show as dashed red lines, world-size changes as dotted
grey lines with the new size written at the top.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Mapping
from typing import Any

MISSING = (
    "matplotlib is not installed for the controller's Python, so the run's plots were not drawn "
    "(the metrics, logs and summary are saved): pip install matplotlib"
)
WIDTH, HEIGHT, DPI = 8.0, 4.5, 100  # 800 x 450 pixels


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def draw(series: Mapping[str, Any], key: str, ylabel: str, title: str) -> bytes | None:
    """One plot of ``series[key]`` by epoch as PNG bytes: a line of (epoch, value) points, or one
    line for each label of a mapping (each rank's); None when there is no point to draw."""
    lines = series.get(key) or {}
    if not isinstance(lines, Mapping):
        lines = {ylabel: lines}
    if not any(lines.values()):
        return None
    # A Figure without pyplot draws with Agg and never needs a display; imported here, for
    # matplotlib is optional.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(WIDTH, HEIGHT), dpi=DPI)
    axes = figure.add_subplot()
    for label, points in lines.items():
        epochs, values = zip(*points, strict=True)
        axes.plot(epochs, values, marker="o", label=label)  # the first in tab:blue, each next its own colour
    for i, epoch in enumerate(series["restarts"]):
        axes.axvline(epoch - 0.5, color="tab:red", linestyle="--", label="restart" if i == 0 else None)
    for epoch, size in series["world_sizes"][1:]:
        axes.axvline(epoch - 0.5, color="grey", linestyle=":")
        axes.annotate(
            f"world size {size}",
            (epoch - 0.5, 1),
            xycoords=("data", "axes fraction"),
            xytext=(3, -12),
            textcoords="offset points",
            fontsize=8,
            color="dimgrey",
        )
    axes.set_xlabel("epoch")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.xaxis.get_major_locator().set_params(integer=True)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    out = io.BytesIO()
    # No Software key: the same run draws the same bytes, so a re-run changes no file.
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()
