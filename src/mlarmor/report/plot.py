"""Dependency-free SVG line charts: robustness curves, ROC curves and the like.

The writer emits a standalone SVG 1.1 document as text — no matplotlib, no scripts, no external
resources — so charts can be saved next to a report or inlined into HTML. Output is deterministic:
the same input gives byte-identical SVG, with pixel coordinates rounded to two decimals.

Example:
    >>> svg = robustness_curve_svg([1 / 255, 4 / 255, 8 / 255], {"PGD": [0.8, 0.5, 0.2]},
    ...                            clean_accuracy=0.9, norm="linf", budget_eps=8 / 255)
    >>> svg.startswith("<?xml")
    True
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np

from mlarmor.errors import invalid_parameter

__all__ = ["Series", "image_grid_svg", "line_chart_svg", "robustness_curve_svg", "roc_curve_svg"]

# Okabe & Ito (2008), ordered so the first colours contrast most on white; yellow comes last.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442")
# One dash pattern per palette slot, so the lines stay apart when printed in grey.
DASHES = ("", "7 3", "2 2", "9 3 2 3", "4 4", "1 3", "12 4", "6 2 2 2 2 2")
# Above this many points a series is drawn as a bare line (an ROC curve can have thousands).
MAX_MARKERS = 200

_MARGIN_LEFT, _MARGIN_RIGHT, _MARGIN_TOP, _MARGIN_BOTTOM = 72, 24, 44, 56
_MARKER_RADIUS = 3.0
_FONT = "Helvetica, Arial, sans-serif"
# Characters XML 1.0 forbids even when escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class Series:
    """One labelled line of a chart.

    Attributes:
        label: Legend and tooltip text; escaped, so any string is safe.
        points: The ``(x, y)`` data points, drawn in the given order.
    """

    label: str
    points: Sequence[tuple[float, float]]


@dataclass(frozen=True)
class _Axis:
    lo: float
    hi: float
    log: bool
    px_lo: float  # pixel of ``lo``
    px_hi: float  # pixel of ``hi``

    def t(self, v: float) -> float:
        return math.log10(v) if self.log else v

    def px(self, v: float) -> float:
        frac = (self.t(v) - self.t(self.lo)) / (self.t(self.hi) - self.t(self.lo))
        # Far out-of-range points are clipped on screen anyway; bound them to keep numbers short.
        return min(max(self.px_lo + frac * (self.px_hi - self.px_lo), -1e5), 1e5)


def _text(s: str) -> str:
    return escape(_XML_INVALID.sub("\ufffd", s), quote=True)


def _n(v: float) -> str:
    s = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if s == "-0" else s


def _compact(v: float, decimals: int | None = None) -> str:
    """Format a tick value compactly: ``0.03``, ``10``, ``2.5e-4``.

    ``decimals`` is what the axis' tick step needs; past three, all the axis' ticks go scientific.
    """
    if v == 0:
        return "0"
    tiny = abs(v) < 1e-3 if decimals is None else decimals > 3
    if tiny or abs(v) >= 1e6:
        mantissa, exponent = f"{v:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    s = f"{v:.{6 if decimals is None else decimals}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def _linear_ticks(lo: float, hi: float, target: int = 5) -> tuple[list[float], int]:
    """Ticks on a 1-2-5 grid within ``[lo, hi]`` and the decimals that show them exactly."""
    raw = (hi - lo) / target
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw * (1 - 1e-9))
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    first, last = math.ceil(lo / step - 1e-9), math.floor(hi / step + 1e-9)
    return [round(i * step, decimals + 3) for i in range(first, last + 1)], decimals


def _log_ticks(lo: float, hi: float) -> list[float]:
    """Decade ticks (thinned past eight decades); 1-2-5 ticks when under two decades show."""
    k_lo, k_hi = math.ceil(math.log10(lo) - 1e-9), math.floor(math.log10(hi) + 1e-9)
    stride = max(1, math.ceil((k_hi - k_lo + 1) / 8))
    ticks = [10.0**k for k in range(k_lo, k_hi + 1, stride)]
    if len(ticks) < 2:
        ticks = [
            m * 10.0**k
            for k in range(k_lo - 1, k_hi + 1)
            for m in (1, 2, 5)
            if lo * (1 - 1e-9) <= m * 10.0**k <= hi * (1 + 1e-9)
        ]
    return ticks if len(ticks) >= 2 else _linear_ticks(lo, hi)[0]


def _tick_label(v: float, log: bool, percent: bool, decimals: int | None) -> str:
    if percent:
        return _compact(v * 100, None if decimals is None else max(decimals - 2, 0)) + "%"
    if log:
        k = math.log10(v)
        if abs(k - round(k)) < 1e-9 and not -2 <= round(k) <= 3:
            return f"1e{round(k)}"
    return _compact(v, decimals)


def _check_range(name: str, value: tuple[float, float] | None, log: bool) -> tuple[float, float] | None:
    if value is None:
        return None
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError) as e:
        raise invalid_parameter(name, "line_chart_svg", "a pair (low, high) of numbers", value) from e
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi and (lo > 0 or not log)):
        expected = "a pair (low, high) of finite numbers with low < high"
        expected += " and low > 0 (the axis is logarithmic)" if log else ""
        raise invalid_parameter(name, "line_chart_svg", expected, value)
    return lo, hi


def _data_range(values: list[float], log: bool, include_zero: bool) -> tuple[float, float]:
    lo, hi = min(values), max(values)
    if log:
        lo, hi = 10.0 ** math.floor(math.log10(lo)), 10.0 ** math.ceil(math.log10(hi))
        return (lo / 10, hi * 10) if lo == hi else (lo, hi)
    if include_zero and lo >= 0:
        lo = 0.0
    if lo == hi == 0:
        return (0.0, 1.0) if include_zero else (-1.0, 1.0)
    if lo == hi:
        return lo - abs(lo) / 2, hi + abs(hi) / 2
    return lo, hi


def _clean_points(series: Sequence[Series], x_log: bool, y_log: bool) -> list[list[tuple[float, float]]]:
    if not series:
        raise invalid_parameter("series", "line_chart_svg", "a non-empty sequence of Series", series)
    cleaned = []
    for s in series:
        if not isinstance(s, Series) or len(s.points) == 0:
            raise invalid_parameter("series", "line_chart_svg", "Series objects with at least one point", s)
        pts = []
        for point in s.points:
            try:
                x, y = (float(v) for v in point)
            except (TypeError, ValueError) as e:
                raise invalid_parameter(
                    "series", "line_chart_svg", f"(x, y) number pairs in series {s.label!r}", point
                ) from e
            if not (math.isfinite(x) and math.isfinite(y)):
                raise invalid_parameter(
                    "series", "line_chart_svg", f"finite (x, y) points in series {s.label!r}", point
                )
            # A log axis cannot show 0 or negatives: those points are left out, by design.
            if (x > 0 or not x_log) and (y > 0 or not y_log):
                pts.append((x, y))
        cleaned.append(pts)
    return cleaned


def _legend_corner(
    plot: tuple[float, float, float, float], box: tuple[float, float], pixels: list[tuple[float, float]]
) -> tuple[float, float]:
    """The corner of the plot area whose legend box would hide the fewest data points."""
    left, top, right, bottom = plot
    w, h = box
    corners = [
        (right - w - 8, top + 8),
        (right - w - 8, bottom - h - 8),
        (left + 8, top + 8),
        (left + 8, bottom - h - 8),
    ]

    def hidden(corner: tuple[float, float]) -> int:
        cx, cy = corner
        return sum(cx - 4 <= px <= cx + w + 4 and cy - 4 <= py <= cy + h + 4 for px, py in pixels)

    return min(corners, key=hidden)  # min keeps the first corner on ties


def line_chart_svg(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool = False,
    y_log: bool = False,
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    y_percent: bool = False,
    diagonal: bool = False,
    width: int = 640,
    height: int = 400,
) -> str:
    """Render line series as a standalone SVG 1.1 document.

    Linear axes get ticks on a 1-2-5 grid, logarithmic axes get decade ticks. Each series has its
    own colour (Okabe-Ito, colour-blind safe) and dash pattern, and circle markers whose tooltip
    shows the values (series of more than ``MAX_MARKERS`` points are drawn without markers). A
    legend appears when there is more than one series, in the plot corner hiding the fewest points.
    Points outside an explicit range are clipped at the plot edge. All text is XML-escaped.

    Args:
        series: The lines to draw, in legend order.
        title: Chart title.
        x_label: Label of the horizontal axis.
        y_label: Label of the vertical axis.
        x_log: Logarithmic x axis. Points with ``x <= 0`` cannot be shown and are left out.
        y_log: Logarithmic y axis. Points with ``y <= 0`` cannot be shown and are left out.
        x_range: ``(low, high)`` of the x axis. Defaults to the data range; on a linear axis it
            starts at 0 when all x are non-negative, on a log axis it widens to whole decades.
        y_range: ``(low, high)`` of the y axis. Defaults to the data range (whole decades if log).
        y_percent: Show y tick labels as percentages of fractions (0.5 -> ``50%``).
        diagonal: Draw the dashed ``y = x`` reference line of ROC charts.
        width: Image width in pixels, at least 200.
        height: Image height in pixels, at least 150.

    Returns:
        The SVG document as text, starting with an XML declaration.

    Raises:
        InvalidParameterError: If ``series`` is empty, a series has no points, a point is not a
            finite number pair, a range is malformed (or not positive on a log axis), the size is
            too small, or a log axis is left with no positive values to derive its range from.
    """
    return _render(
        series,
        title=title,
        x_label=x_label,
        y_label=y_label,
        x_log=x_log,
        y_log=y_log,
        x_range=x_range,
        y_range=y_range,
        y_percent=y_percent,
        diagonal=diagonal,
        width=width,
        height=height,
    )


def _render(
    series: Sequence[Series],
    *,
    title: str,
    x_label: str,
    y_label: str,
    x_log: bool,
    y_log: bool,
    x_range: tuple[float, float] | None,
    y_range: tuple[float, float] | None,
    y_percent: bool,
    diagonal: bool,
    width: int,
    height: int,
    x_marker: tuple[float, str, str] | None = None,
) -> str:
    for name, value, least in (("width", width, 200), ("height", height, 150)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise invalid_parameter(name, "line_chart_svg", f"an int >= {least}", value)
    x_range, y_range = _check_range("x_range", x_range, x_log), _check_range("y_range", y_range, y_log)
    points = _clean_points(series, x_log, y_log)
    kept = [p for pts in points for p in pts]
    if not kept and (x_range is None or y_range is None):
        raise invalid_parameter(
            "series", "line_chart_svg", "at least one point with positive values on the log axes", series
        )
    x_lo, x_hi = x_range or _data_range([x for x, _ in kept], x_log, include_zero=True)
    y_lo, y_hi = y_range or _data_range([y for _, y in kept], y_log, include_zero=False)
    left, top, right, bottom = _MARGIN_LEFT, _MARGIN_TOP, width - _MARGIN_RIGHT, height - _MARGIN_BOTTOM
    xa, ya = _Axis(x_lo, x_hi, x_log, left, right), _Axis(y_lo, y_hi, y_log, bottom, top)

    # A content-derived id keeps several charts inlined in one HTML page from sharing a clip path.
    key = ([s.label for s in series], points, title, x_label, y_label, xa, ya, y_percent, x_marker)
    clip = f"mlarmor-plot-{hashlib.sha256(repr(key).encode()).hexdigest()[:12]}"
    pad = _MARKER_RADIUS + 2
    mid_x, mid_y = (left + right) / 2, (top + bottom) / 2
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{_FONT}" font-size="12">',
        f"<title>{_text(title)}</title>",
        f'<defs><clipPath id="{clip}"><rect x="{_n(left - pad)}" y="{_n(top - pad)}" '
        f'width="{_n(right - left + 2 * pad)}" height="{_n(bottom - top + 2 * pad)}"/></clipPath></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        *_grid(xa, ya, y_percent),
        f'<rect class="frame" x="{_n(left)}" y="{_n(top)}" width="{_n(right - left)}" '
        f'height="{_n(bottom - top)}" fill="none" stroke="#333333" stroke-width="1"/>',
        f'<text class="title" x="{_n(width / 2)}" y="26" text-anchor="middle" font-size="15" '
        f'font-weight="bold">{_text(title)}</text>',
        f'<text class="x-label" x="{_n(mid_x)}" y="{_n(height - 14)}" text-anchor="middle">'
        f"{_text(x_label)}</text>",
        f'<text class="y-label" x="18" y="{_n(mid_y)}" text-anchor="middle" '
        f'transform="rotate(-90 18 {_n(mid_y)})">{_text(y_label)}</text>',
        f'<g class="data" clip-path="url(#{clip})">',
    ]
    if diagonal:
        out += _diagonal(xa, ya)
    pixels: list[tuple[float, float]] = []
    for i, (s, pts) in enumerate(zip(series, points, strict=True)):
        xy = [(xa.px(x), ya.px(y)) for x, y in pts]
        pixels += xy
        out.append(f'<g class="series" data-index="{i}">')
        out.append(f'<polyline points="{" ".join(f"{_n(px)},{_n(py)}" for px, py in xy)}"{_stroke(i)}/>')
        if len(pts) <= MAX_MARKERS:
            for (x, y), (px, py) in zip(pts, xy, strict=True):
                y_text = f"{y * 100:.4g}%" if y_percent else f"{y:.4g}"
                tip = _text(f"{s.label}: {x_label} = {x:.4g}, {y_label} = {y_text}")
                out.append(
                    f'<circle cx="{_n(px)}" cy="{_n(py)}" r="{_n(_MARKER_RADIUS)}" fill="{_colour(i)}" '
                    f'stroke="#ffffff" stroke-width="1"><title>{tip}</title></circle>'
                )
        out.append("</g>")
    out.append("</g>")
    if x_marker is not None:
        out += _vertical_marker(xa, ya, *x_marker)
    if len(series) > 1:
        out += _legend([s.label for s in series], (left, top, right, bottom), pixels)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _stroke(i: int) -> str:
    """Stroke attributes of series ``i``; past the palette, the dash shifts so pairs stay unique."""
    dash = DASHES[(i + i // len(PALETTE)) % len(DASHES)]
    dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
    return f' fill="none" stroke="{_colour(i)}" stroke-width="2"{dash_attr} stroke-linejoin="round"'


def _grid(xa: _Axis, ya: _Axis, y_percent: bool) -> list[str]:
    grid = ['<g class="grid" stroke="#e3e3e3" stroke-width="1">']
    labels = ['<g class="ticks" fill="#333333">']
    x_ticks, x_dec = (_log_ticks(xa.lo, xa.hi), None) if xa.log else _linear_ticks(xa.lo, xa.hi)
    for v in x_ticks:
        sx, y0, y1 = _n(xa.px(v)), _n(ya.px_lo), _n(ya.px_hi)
        grid.append(f'<line x1="{sx}" y1="{y0}" x2="{sx}" y2="{y1}"/>')
        label = _tick_label(v, xa.log, False, x_dec)
        labels.append(f'<text x="{sx}" y="{_n(ya.px_lo + 16)}" text-anchor="middle">{label}</text>')
    y_ticks, y_dec = (_log_ticks(ya.lo, ya.hi), None) if ya.log else _linear_ticks(ya.lo, ya.hi)
    for v in y_ticks:
        sy, x0, x1 = _n(ya.px(v)), _n(xa.px_lo), _n(xa.px_hi)
        grid.append(f'<line x1="{x0}" y1="{sy}" x2="{x1}" y2="{sy}"/>')
        label = _tick_label(v, ya.log, y_percent, y_dec)
        labels.append(f'<text x="{_n(xa.px_lo - 6)}" y="{_n(ya.px(v) + 4)}" text-anchor="end">{label}</text>')
    return [*grid, "</g>", *labels, "</g>"]


def _diagonal(xa: _Axis, ya: _Axis) -> list[str]:
    t_lo, t_hi = max(xa.lo, ya.lo), min(xa.hi, ya.hi)
    if t_lo >= t_hi:
        return []
    ts = [t_lo, t_hi]
    if xa.log != ya.log:  # y = x bends when exactly one axis is logarithmic
        ts = [t_lo * (t_hi / t_lo) ** (i / 64) for i in range(65)]
    d = " L".join(f"{_n(xa.px(t))},{_n(ya.px(t))}" for t in ts)
    return [
        f'<path class="reference" d="M{d}" fill="none" stroke="#888888" stroke-width="1" '
        'stroke-dasharray="5 4"/>'
    ]


def _vertical_marker(xa: _Axis, ya: _Axis, value: float, label: str, tip: str) -> list[str]:
    px = xa.px(value)
    anchor, dx = ("end", -4) if px > xa.px_lo + 0.7 * (xa.px_hi - xa.px_lo) else ("start", 4)
    return [
        f'<g class="marker"><title>{_text(tip)}</title>',
        f'<line x1="{_n(px)}" y1="{_n(ya.px_hi)}" x2="{_n(px)}" y2="{_n(ya.px_lo)}" stroke="#333333" '
        'stroke-width="1.5" stroke-dasharray="6 4"/>',
        f'<text x="{_n(px + dx)}" y="{_n(ya.px_hi + 14)}" text-anchor="{anchor}" fill="#333333">'
        f"{_text(label)}</text></g>",
    ]


def _legend(
    labels: list[str], plot: tuple[float, float, float, float], pixels: list[tuple[float, float]]
) -> list[str]:
    left, _, right, _ = plot
    # Text width is estimated (no font metrics here): at most about 7.5 px per character at 12 px.
    text_width = 7.5 * max(len(label) for label in labels)
    box = (min(44 + text_width, right - left - 16), 18.0 * len(labels) + 8)
    lx, ly = _legend_corner(plot, box, pixels)
    out = [
        f'<g class="legend"><rect x="{_n(lx)}" y="{_n(ly)}" width="{_n(box[0])}" '
        f'height="{_n(box[1])}" fill="#ffffff" fill-opacity="0.9" stroke="#bbbbbb"/>'
    ]
    for i, label in enumerate(labels):
        cy = ly + 13 + 18 * i
        out.append(
            f'<line x1="{_n(lx + 6)}" y1="{_n(cy)}" x2="{_n(lx + 30)}" y2="{_n(cy)}"{_stroke(i)}/>'
            f'<text x="{_n(lx + 36)}" y="{_n(cy + 4)}">{_text(label)}</text>'
        )
    out.append("</g>")
    return out


def robustness_curve_svg(
    eps: Sequence[float],
    robust_accuracy: Mapping[str, Sequence[float]] | Sequence[float],
    *,
    clean_accuracy: float,
    norm: str,
    title: str = "Robustness curve",
    budget_eps: float | None = None,
) -> str:
    """Plot accuracy under attack against the perturbation budget ε.

    Every series starts at ``(0, clean_accuracy)`` and follows its points sorted by ε; entries
    at ``ε == 0`` are replaced by that clean point (no attack is possible at zero budget). The y
    axis is fixed to 0..100 %.

    Args:
        eps: The budgets the attacks were run at, each finite and ``>= 0``.
        robust_accuracy: Accuracy in ``[0, 1]`` at each ``eps``, either one sequence or a mapping
            from attack name to sequence (one line each, with a legend).
        clean_accuracy: Accuracy without attack, in ``[0, 1]``.
        norm: ``"linf"`` or ``"l2"``; gives the axis label ``ε (L∞)`` or ``ε (L2)``.
        title: Chart title.
        budget_eps: If given, a dashed vertical marker labelled "threat budget" at this ε.

    Returns:
        The SVG document as text.

    Raises:
        InvalidParameterError: If a value is out of range, not finite, or a sequence's length
            differs from ``eps``'s.
    """
    owner = "robustness_curve_svg"
    norms = {"linf": "ε (L∞)", "l2": "ε (L2)"}
    if norm not in norms:
        raise invalid_parameter("norm", owner, "one of 'linf', 'l2'", norm)
    try:
        eps_values = [float(e) for e in eps]
    except (TypeError, ValueError) as e:
        raise invalid_parameter("eps", owner, "a sequence of floats", eps) from e
    if not eps_values or not all(math.isfinite(e) and e >= 0 for e in eps_values):
        raise invalid_parameter("eps", owner, "a non-empty sequence of finite floats >= 0", eps)

    def fraction(name: str, value: float) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError) as e:
            raise invalid_parameter(name, owner, "a float in [0, 1]", value) from e
        if not 0 <= v <= 1:  # also rejects NaN
            raise invalid_parameter(name, owner, "a float in [0, 1]", value)
        return v

    clean = fraction("clean_accuracy", clean_accuracy)
    if budget_eps is not None and not (math.isfinite(budget_eps) and budget_eps >= 0):
        raise invalid_parameter("budget_eps", owner, "a finite float >= 0 or None", budget_eps)
    named = (
        dict(robust_accuracy)
        if isinstance(robust_accuracy, Mapping)
        else {"robust accuracy": robust_accuracy}
    )
    if not named:
        raise invalid_parameter("robust_accuracy", owner, "at least one attack's accuracies", robust_accuracy)
    series = []
    for label, accuracies in named.items():
        accs = [fraction("robust_accuracy", a) for a in accuracies]
        if len(accs) != len(eps_values):
            raise invalid_parameter(
                "robust_accuracy", owner, f"{len(eps_values)} values (one per eps) for {label!r}", accuracies
            )
        pts = sorted(((e, a) for e, a in zip(eps_values, accs, strict=True) if e > 0), key=lambda p: p[0])
        series.append(Series(str(label), [(0.0, clean), *pts]))
    x_hi = max(*eps_values, budget_eps or 0.0)
    marker = None
    if budget_eps is not None:
        marker = (budget_eps, "threat budget", f"threat budget: ε = {budget_eps:.4g}")
    return _render(
        series,
        title=title,
        x_label=norms[norm],
        y_label="Accuracy",
        x_log=False,
        y_log=False,
        x_range=(0.0, x_hi) if x_hi > 0 else None,
        y_range=(0.0, 1.0),
        y_percent=True,
        diagonal=False,
        width=640,
        height=400,
        x_marker=marker,
    )


# An ROC curve is decimated to at most about this many points before drawing.
ROC_MAX_POINTS = 500


def _roc_floor(curves: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """The low end of both ROC axes: 1e-3, or the decade below 1/n_nonmembers, down to 1e-5."""
    positive = [f[f > 0].min() for f, _ in curves if (f > 0).any()]
    if not positive:
        return 1e-3
    # The smallest positive FPR of a full ROC curve is one non-member: 1 / n_nonmembers.
    decade = 10.0 ** math.floor(math.log10(min(positive)) + 1e-9)
    return min(max(decade, 1e-5), 1e-3)


def _decimate_log(fpr: np.ndarray, tpr: np.ndarray, lo: float, max_points: int) -> list[tuple[float, float]]:
    """Thin a curve to about ``max_points``: the first and last point of each log-FPR bin.

    Bins are ``2 / max_points`` of the log range wide (about a pixel), so every turn wider than a
    bin is kept; points left of ``lo`` share the first bin, whose last point enters the plot.
    """
    if fpr.size <= max_points:
        return list(zip(fpr.tolist(), tpr.tolist(), strict=True))
    width = -math.log10(lo) / (max_points // 2)
    bins = np.floor((np.log10(np.maximum(fpr, lo)) - math.log10(lo)) / width)
    changes = bins[1:] != bins[:-1]
    keep = np.r_[True, changes] | np.r_[changes, True]
    return list(zip(fpr[keep].tolist(), tpr[keep].tolist(), strict=True))


def roc_curve_svg(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    *,
    title: str = "Membership inference ROC",
) -> str:
    """Plot membership-inference ROC curves on log-log axes, where the low-FPR regime shows.

    Both axes run from 1e-3 to 1, or from the decade below ``1 / n_nonmembers`` (read off the
    smallest positive FPR of the curves) when that is lower, but not below 1e-5; the dashed
    ``y = x`` diagonal is chance. Points with a zero FPR or TPR cannot be shown on log axes and
    are left out. Curves longer than ``ROC_MAX_POINTS`` are thinned to about that many points,
    keeping the first and last point of each log-FPR bin about a pixel wide, so the shape stays.

    Args:
        curves: Attack name to ``(fpr, tpr)``, e.g. the first two arrays of
            :func:`mlarmor.attacks.inference.roc_curve`; one line each, with a legend when more
            than one.
        title: Chart title.

    Returns:
        The SVG document as text.

    Raises:
        InvalidParameterError: If ``curves`` is empty, or a curve's arrays are not 1-D, of equal
            non-zero length, with values in ``[0, 1]``.
    """
    owner = "roc_curve_svg"
    if not isinstance(curves, Mapping) or not curves:
        raise invalid_parameter("curves", owner, "a non-empty mapping of name to (fpr, tpr)", curves)
    checked = []
    for label, curve in curves.items():
        try:
            fpr, tpr = (np.asarray(a, dtype=np.float64) for a in curve)
        except (TypeError, ValueError) as e:
            raise invalid_parameter(
                "curves", owner, f"a pair (fpr, tpr) of arrays for {label!r}", curve
            ) from e
        if fpr.ndim != 1 or fpr.shape != tpr.shape or fpr.size == 0:
            raise invalid_parameter(
                "curves",
                owner,
                f"1-D fpr and tpr arrays of equal, non-zero length for {label!r}",
                f"shapes {fpr.shape} and {tpr.shape}",
            )
        if not (((fpr >= 0) & (fpr <= 1)).all() and ((tpr >= 0) & (tpr <= 1)).all()):  # rejects NaN
            raise invalid_parameter("curves", owner, f"rates in [0, 1] for {label!r}", curve)
        checked.append((fpr, tpr))
    lo = _roc_floor(checked)
    series = [
        Series(str(label), _decimate_log(fpr, tpr, lo, ROC_MAX_POINTS))
        for label, (fpr, tpr) in zip(curves, checked, strict=True)
    ]
    return line_chart_svg(
        series,
        title=title,
        x_label="False positive rate",
        y_label="True positive rate",
        x_log=True,
        y_log=True,
        x_range=(lo, 1.0),
        y_range=(lo, 1.0),
        diagonal=True,
    )


# Most tiles per row of an image grid (ten classes of digits fit on one row).
GRID_COLUMNS = 10
_GRID_GAP, _GRID_MARGIN, _GRID_LABEL, _GRID_TITLE = 8, 8, 18, 28


def image_grid_svg(
    images: np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    title: str = "",
    cell: int = 64,
) -> str:
    """Render small images as a standalone SVG grid of pixel rectangles (no ``<image>``, no encoding).

    Each image becomes a tile of ``cell`` pixels on its longer side, made of one ``<rect>`` per pixel
    (grey for one channel, RGB for three), at most ``GRID_COLUMNS`` tiles per row, each with its
    label underneath and as tooltip. Meant for small images such as model-inversion
    reconstructions: the document grows with ``n * H * W``. Output is deterministic and all text is
    XML-escaped.

    Args:
        images: Values in ``[0, 1]``, shape ``(n, H, W)`` or ``(n, C, H, W)`` with ``C`` 1 or 3. Scale
            other ranges first, e.g. ``(x - low) / (high - low)``.
        labels: One caption per image.
        title: Title above the grid (and the document's ``<title>``).
        cell: Size in pixels of the longer side of each tile, at least 8.

    Returns:
        The SVG document as text, starting with an XML declaration.

    Raises:
        InvalidParameterError: For a shape other than those above, values outside ``[0, 1]`` (or NaN),
            a number of labels different from the number of images, or ``cell`` below 8.

    Example:
        >>> svg = image_grid_svg(np.eye(3)[None], labels=["identity"], cell=30)
        >>> svg.count('width="1" height="1"')
        9
    """
    owner = "image_grid_svg"
    if isinstance(cell, bool) or not isinstance(cell, int) or cell < 8:
        raise invalid_parameter("cell", owner, "an int >= 8", cell)
    try:
        arr = np.asarray(images, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise invalid_parameter("images", owner, "a numeric array", type(images).__name__) from e
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or 0 in arr.shape:
        raise invalid_parameter(
            "images",
            owner,
            "a non-empty array (n, H, W) or (n, C, H, W) with C = 1 or 3",
            f"shape {arr.shape}",
        )
    if not ((arr >= 0) & (arr <= 1)).all():  # also rejects NaN
        raise invalid_parameter(
            "images",
            owner,
            "values in [0, 1] (scale them first)",
            f"values in [{arr.min():g}, {arr.max():g}]",
        )
    n, channels, h, w = arr.shape
    if labels is not None and (isinstance(labels, str) or len(labels) != n):
        raise invalid_parameter("labels", owner, f"a sequence of {n} strings (one per image) or None", labels)
    captions = [str(label) for label in labels] if labels is not None else None

    scale = cell / max(h, w)
    columns = min(n, GRID_COLUMNS)
    rows = math.ceil(n / columns)
    tile_h = cell + (_GRID_LABEL if captions is not None else 0)
    top = _GRID_MARGIN + (_GRID_TITLE if title else 0)
    grid_width = columns * cell + (columns - 1) * _GRID_GAP
    # No font metrics here: a bold 15 px title takes at most about 9 px per character.
    width = 2 * _GRID_MARGIN + max(grid_width, math.ceil(9 * len(title)))
    left = (width - grid_width) / 2
    height = top + rows * tile_h + (rows - 1) * _GRID_GAP + _GRID_MARGIN
    levels = np.rint(arr * 255).astype(np.int64)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="{_FONT}" font-size="12">',
        f"<title>{_text(title)}</title>",
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    if title:
        out.append(
            f'<text class="title" x="{_n(width / 2)}" y="{_GRID_MARGIN + 16}" text-anchor="middle" '
            f'font-size="15" font-weight="bold">{_text(title)}</text>'
        )
    for k in range(n):
        x0 = left + (k % columns) * (cell + _GRID_GAP) + (cell - w * scale) / 2
        y0 = top + (k // columns) * (tile_h + _GRID_GAP) + (cell - h * scale) / 2
        tip = f"<title>{_text(captions[k])}</title>" if captions is not None else ""
        out.append(
            f'<g class="image" data-index="{k}" transform="translate({_n(x0)} {_n(y0)}) scale({_n(scale)})" '
            f'shape-rendering="crispEdges">{tip}'
        )
        rgb = levels[k] if channels == 3 else np.repeat(levels[k], 3, axis=0)
        for i in range(h):
            for j in range(w):
                r, g, b = rgb[:, i, j]
                out.append(f'<rect x="{j}" y="{i}" width="1" height="1" fill="#{r:02x}{g:02x}{b:02x}"/>')
        out.append("</g>")
        if captions is not None:
            cx = left + (k % columns) * (cell + _GRID_GAP) + cell / 2
            cy = top + (k // columns) * (tile_h + _GRID_GAP) + cell + 14
            caption = _text(captions[k])
            out.append(f'<text class="label" x="{_n(cx)}" y="{_n(cy)}" text-anchor="middle">{caption}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
