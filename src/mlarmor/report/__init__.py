"""Report writers: terminal (Rich), JSON (the versioned schema), SARIF 2.1.0 and SVG charts."""

from mlarmor.report.json import to_json
from mlarmor.report.plot import (
    Series,
    image_grid_svg,
    line_chart_svg,
    robustness_curve_svg,
    roc_curve_svg,
)
from mlarmor.report.sarif import to_sarif
from mlarmor.report.terminal import print_report

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
