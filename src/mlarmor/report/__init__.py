"""Report writers: terminal (Rich), JSON (the versioned schema), SARIF 2.1.0 and SVG charts.

The SVG charts need NumPy and are imported on first use, so that writing a scan report stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mlarmor.report.json import to_json
from mlarmor.report.sarif import to_sarif
from mlarmor.report.terminal import print_report

if TYPE_CHECKING:
    from mlarmor.report.plot import (
        Series,
        image_grid_svg,
        line_chart_svg,
        robustness_curve_svg,
        roc_curve_svg,
    )

__all__ = [
    "Series",
    "image_grid_svg",
    "line_chart_svg",
    "print_report",
    "robustness_curve_svg",
    "roc_curve_svg",
    "to_json",
    "to_sarif",
]

_PLOT = {"Series", "image_grid_svg", "line_chart_svg", "robustness_curve_svg", "roc_curve_svg"}


def __getattr__(name: str) -> Any:
    if name not in _PLOT:
        raise AttributeError(f"module 'mlarmor.report' has no attribute {name!r}")
    value = getattr(importlib.import_module("mlarmor.report.plot"), name)
    globals()[name] = value
    return value
