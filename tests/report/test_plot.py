"""Tests of the dependency-free SVG line-chart writer."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from mlarmor.errors import InvalidParameterError
from mlarmor.report import Series, line_chart_svg, robustness_curve_svg
from mlarmor.report.plot import DASHES, MAX_MARKERS, PALETTE

SVG = "{http://www.w3.org/2000/svg}"


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def find_class(root: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in root.iter(SVG + tag) if e.get("class") == cls]


def frame(root: ET.Element) -> tuple[float, float, float, float]:
    """(left, top, right, bottom) of the plot area."""
    (rect,) = find_class(root, "rect", "frame")
    x, y, w, h = (float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))
    return x, y, x + w, y + h


def polylines(root: ET.Element) -> list[list[tuple[float, float]]]:
    out = []
    for line in root.iter(SVG + "polyline"):
        pairs = (line.get("points") or "").split()
        out.append([(float(a), float(b)) for a, b in (p.split(",") for p in pairs)])
    return out


def tick_labels(root: ET.Element, anchor: str) -> list[str]:
    (ticks,) = find_class(root, "g", "ticks")
    return [t.text or "" for t in ticks if t.get("text-anchor") == anchor]


def lin(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a + (v - lo) / (hi - lo) * (b - a)


def log(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return lin(math.log10(v), math.log10(lo), math.log10(hi), a, b)


def chart(*series: Series, **kwargs: object) -> str:
    options: dict[str, object] = {"title": "T", "x_label": "x", "y_label": "y", **kwargs}
    return line_chart_svg(list(series), **options)  # type: ignore[arg-type]


SIMPLE = Series("a", [(0.0, 0.0), (2.0, 10.0), (4.0, 5.0)])


def test_document_is_standalone_svg_without_active_content() -> None:
    svg = chart(SIMPLE, Series("b", [(1.0, 1.0), (3.0, 2.0)]))
    root = parse(svg)
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    assert root.tag == SVG + "svg"
    assert (root.get("version"), root.get("viewBox")) == ("1.1", "0 0 640 400")
    assert (root.get("width"), root.get("height")) == ("640", "400")
    assert root[0].tag == SVG + "title"
    assert root[0].text == "T"
    for element in root.iter():
        assert element.tag.startswith(SVG)
        assert element.tag not in (SVG + "script", SVG + "image", SVG + "foreignObject", SVG + "a")
        for name, value in element.attrib.items():
            assert "href" not in name
            assert not name.startswith("on")
            assert "url(" not in value or value.startswith("url(#")


@pytest.mark.parametrize("n", [1, 2, 9])
def test_one_polyline_per_series_with_distinct_styles(n: int) -> None:
    series = [Series(f"s{i}", [(0.0, float(i)), (1.0, float(i + 1))]) for i in range(n)]
    root = parse(chart(*series))
    lines = list(root.iter(SVG + "polyline"))
    assert len(lines) == n
    assert len(list(root.iter(SVG + "path"))) == 0  # no diagonal asked for
    styles = {(e.get("stroke"), e.get("stroke-dasharray")) for e in lines}
    assert len(styles) == n
    assert len({e.get("stroke") for e in lines[: len(PALETTE)]}) == min(n, len(PALETTE))
    assert len({e.get("stroke-dasharray") for e in lines[: len(DASHES)]}) == min(n, len(DASHES))
    legends = find_class(root, "g", "legend")
    assert len(legends) == (n > 1)
    if n > 1:
        assert [t.text for t in legends[0].iter(SVG + "text")] == [s.label for s in series]


def test_points_map_to_pixel_coordinates() -> None:
    root = parse(chart(SIMPLE, x_range=(0.0, 4.0), y_range=(0.0, 10.0)))
    left, top, right, bottom = frame(root)
    ((p0, p1, p2),) = polylines(root)
    assert p0 == (left, bottom)
    assert p1 == pytest.approx((lin(2, 0, 4, left, right), top), abs=0.005)
    assert p2 == pytest.approx((right, lin(5, 0, 10, bottom, top)), abs=0.005)
    circles = [(float(c.get("cx", "nan")), float(c.get("cy", "nan"))) for c in root.iter(SVG + "circle")]
    assert circles == [p0, p1, p2]


def test_default_ranges_follow_data_and_include_zero_for_nonnegative_x() -> None:
    root = parse(chart(Series("a", [(1.0, 0.2), (3.0, 0.7)])))
    left, top, right, bottom = frame(root)
    ((p0, p1),) = polylines(root)
    assert p0 == pytest.approx((lin(1, 0, 3, left, right), bottom), abs=0.005)
    assert p1 == (right, top)
    assert tick_labels(root, "middle")[0] == "0"

    negative = parse(chart(Series("a", [(-2.0, 1.0), (2.0, 3.0)])))
    left, _, right, _ = frame(negative)
    ((p0, p1),) = polylines(negative)
    assert (p0[0], p1[0]) == (left, right)


def test_constant_data_gets_a_non_degenerate_range() -> None:
    root = parse(chart(Series("a", [(0.0, 0.5)])))
    left, top, _right, bottom = frame(root)
    ((point,),) = polylines(root)
    assert point == pytest.approx((left, (top + bottom) / 2), abs=0.005)


@pytest.mark.parametrize(
    ("x_range", "expected"),
    [
        ((0.0, 1.0), ["0", "0.2", "0.4", "0.6", "0.8", "1"]),
        ((0.0, 16 / 255), ["0", "0.02", "0.04", "0.06"]),
        ((0.0, 7.0), ["0", "2", "4", "6"]),
        ((-3.0, 12.0), ["0", "5", "10"]),
        ((0.0, 0.0005), ["0", "1e-4", "2e-4", "3e-4", "4e-4", "5e-4"]),
        ((1000.0, 3000.0), ["1000", "1500", "2000", "2500", "3000"]),
    ],
)
def test_linear_ticks_are_nice_and_compact(x_range: tuple[float, float], expected: list[str]) -> None:
    root = parse(chart(SIMPLE, x_range=x_range))
    assert tick_labels(root, "middle") == expected


def test_percent_tick_labels() -> None:
    root = parse(chart(SIMPLE, y_range=(0.0, 0.05), y_percent=True))
    assert tick_labels(root, "end") == ["0%", "1%", "2%", "3%", "4%", "5%"]
    root = parse(chart(SIMPLE, y_range=(0.0, 0.02), y_percent=True))
    assert tick_labels(root, "end") == ["0%", "0.5%", "1%", "1.5%", "2%"]


def test_roc_log_log_drops_non_positive_values() -> None:
    fpr = [0.0, 1e-4, 1e-3, 1e-2, 0.1, 1.0]
    tpr = [0.0, 0.2, 0.4, 0.6, 0.9, 1.0]
    series = [Series("det", list(zip(fpr, tpr, strict=True))), Series("zeros", [(0.0, 0.0), (0.5, 0.0)])]
    root = parse(chart(*series, x_log=True, y_log=True, diagonal=True))
    left, top, right, bottom = frame(root)
    det, zeros = polylines(root)
    assert zeros == []  # every point had a zero: the series is kept, but draws nothing
    assert len(det) == len(fpr) - 1
    # Default log ranges widen to whole decades: x in [1e-4, 1], y in [0.1, 1].
    assert det[0] == pytest.approx((left, log(0.2, 0.1, 1, bottom, top)), abs=0.005)
    assert det[2] == pytest.approx(((left + right) / 2, log(0.6, 0.1, 1, bottom, top)), abs=0.005)
    assert det[-1] == (right, top)
    assert tick_labels(root, "middle") == ["1e-4", "1e-3", "0.01", "0.1", "1"]
    assert tick_labels(root, "end") == ["0.1", "1"]
    (diag,) = find_class(root, "path", "reference")
    # y = x on log-log is straight: from (0.1, 0.1) to (1, 1).
    x_at = log(0.1, 1e-4, 1, left, right)
    assert diag.get("d") == f"M{x_at:g},{bottom:g} L{right:g},{top:g}"


def test_log_axis_narrower_than_a_decade_still_has_ticks() -> None:
    root = parse(chart(Series("a", [(1.0, 0.5), (2.0, 0.9)]), y_log=True, y_range=(0.4, 0.95)))
    assert tick_labels(root, "end") == ["0.4", "0.6", "0.8"]  # no decade, one 1-2-5 tick: linear
    root = parse(chart(Series("a", [(1.0, 0.15), (2.0, 0.9)]), y_log=True, y_range=(0.15, 0.9)))
    assert tick_labels(root, "end") == ["0.2", "0.5"]


def test_diagonal_bends_when_one_axis_is_log() -> None:
    root = parse(chart(Series("a", [(1e-3, 0.1), (1.0, 1.0)]), x_log=True, y_range=(0.0, 1.0), diagonal=True))
    (diag,) = find_class(root, "path", "reference")
    assert (diag.get("d") or "").count("L") == 64


def test_user_text_is_escaped_never_interpreted() -> None:
    nasty = '<script>alert("x")</script> & co \x01 \ud800'
    svg = chart(
        Series(nasty, [(0.0, 1.0), (1.0, 2.0)]), Series("b", [(0.0, 2.0)]), title=nasty, x_label=nasty
    )
    root = parse(svg)
    assert "<script" not in svg
    assert "&lt;script&gt;" in svg
    assert "&amp; co" in svg
    assert not list(root.iter(SVG + "script"))
    expected = nasty.replace("\x01", "\ufffd").replace("\ud800", "\ufffd")
    svg.encode()  # no lone surrogate left to break writing the file
    (title,) = find_class(root, "text", "title")
    assert title.text == expected
    (legend,) = find_class(root, "g", "legend")
    assert next(legend.iter(SVG + "text")).text == expected


def test_markers_carry_value_tooltips() -> None:
    root = parse(chart(Series("PGD", [(0.5, 0.25)]), x_label="eps", y_label="acc", y_percent=True))
    (circle,) = root.iter(SVG + "circle")
    assert circle.findtext(SVG + "title") == "PGD: eps = 0.5, acc = 25%"


def test_long_series_are_drawn_without_markers() -> None:
    many = Series("roc", [(i / MAX_MARKERS, i / MAX_MARKERS) for i in range(MAX_MARKERS + 1)])
    root = parse(chart(many))
    assert not list(root.iter(SVG + "circle"))
    assert len(polylines(root)[0]) == MAX_MARKERS + 1


def test_output_is_deterministic_and_rounded() -> None:
    series = [Series("a", [(1 / 3, 2 / 7), (math.pi, math.e)]), Series("b", [(0.1, 0.2)])]
    svg = chart(*series)
    assert svg == chart(*series)
    for line in parse(svg).iter(SVG + "polyline"):
        for number in re.split("[ ,]", line.get("points") or ""):
            assert re.fullmatch(r"-?\d+(\.\d{1,2})?", number), number
    other = chart(Series("a", [(1 / 3, 2 / 7), (math.pi, 3.0)]), series[1])
    clip_ids = {re.search(r'clipPath id="([^"]+)"', s).group(1) for s in (svg, other)}  # type: ignore[union-attr]
    assert len(clip_ids) == 2  # charts inlined into one page do not share a clip path


@pytest.mark.parametrize(
    ("series", "match"),
    [
        ([], "non-empty sequence of Series"),
        ([Series("a", [])], "at least one point"),
        ([Series("a", [(0.0, float("nan"))])], "finite"),
        ([Series("a", [(float("inf"), 1.0)])], "finite"),
        ([Series("a", [(0.0, "x")])], "number pairs"),  # type: ignore[list-item]
        ([Series("a", [(0.0, 1.0, 2.0)])], "number pairs"),  # type: ignore[list-item]
    ],
)
def test_invalid_series_raise(series: list[Series], match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        chart(*series)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"x_range": (1.0, 0.0)},
        {"x_range": (0.0, float("nan"))},
        {"y_range": (0.0, 1.0), "y_log": True},
        {"x_range": ("a", 1.0)},
        {"width": 10},
        {"height": 100.5},
        {"x_log": True, "y_log": True},  # no point is positive on both axes
    ],
)
def test_invalid_options_raise(kwargs: dict[str, object]) -> None:
    with pytest.raises(InvalidParameterError, match="parameter of line_chart_svg"):
        chart(Series("a", [(0.0, 0.0), (1.0, 0.0)]), **kwargs)


def test_robustness_curve_starts_at_clean_accuracy_sorted_by_eps() -> None:
    eps = [8 / 255, 0.0, 2 / 255, 4 / 255]
    accuracy = {"PGD": [0.1, 0.5, 0.6, 0.3], "FGSM": [0.4, 0.5, 0.8, 0.6]}
    root = parse(robustness_curve_svg(eps, accuracy, clean_accuracy=0.9, norm="linf", budget_eps=6 / 255))
    left, top, right, bottom = frame(root)
    pgd, fgsm = polylines(root)
    expected = [(0.0, 0.9), (2 / 255, 0.6), (4 / 255, 0.3), (8 / 255, 0.1)]  # the eps=0 entry is replaced
    for (px, py), (e, a) in zip(pgd, expected, strict=True):
        assert px == pytest.approx(lin(e, 0, 8 / 255, left, right), abs=0.005)
        assert py == pytest.approx(lin(a, 0, 1, bottom, top), abs=0.005)
    assert fgsm[0] == pgd[0]
    assert tick_labels(root, "end") == ["0%", "20%", "40%", "60%", "80%", "100%"]
    assert (root.findtext(f"{SVG}text[@class='x-label']"), root.findtext(f"{SVG}text[@class='y-label']")) == (
        "ε (L∞)",
        "Accuracy",
    )
    (marker,) = find_class(root, "g", "marker")
    assert marker.findtext(SVG + "text") == "threat budget"
    line = marker.find(SVG + "line")
    assert line is not None
    assert line.get("stroke-dasharray")
    assert float(line.get("x1", "nan")) == pytest.approx(lin(6, 0, 8, left, right), abs=0.005)
    assert len(find_class(root, "g", "legend")) == 1


def test_robustness_curve_single_series_and_budget_beyond_data() -> None:
    root = parse(robustness_curve_svg([0.5, 1.0], [0.4, 0.2], clean_accuracy=0.8, norm="l2", budget_eps=2.0))
    left, _, right, _ = frame(root)
    ((p0, _, p2),) = polylines(root)
    assert p0[0] == left
    assert p2[0] == pytest.approx((left + right) / 2, abs=0.005)  # the axis extends to the budget
    (marker,) = find_class(root, "g", "marker")
    assert float(marker.find(SVG + "line").get("x1", "nan")) == right  # type: ignore[union-attr]
    assert root.findtext(f"{SVG}text[@class='x-label']") == "ε (L2)"
    assert not find_class(root, "g", "legend")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"norm": "l1"}, "'norm'"),
        ({"eps": [0.1, -0.1]}, "'eps'"),
        ({"eps": []}, "'eps'"),
        ({"robust_accuracy": [0.5]}, "one per eps"),
        ({"robust_accuracy": {"PGD": [0.5, 1.5]}}, "'robust_accuracy'"),
        ({"robust_accuracy": {}}, "'robust_accuracy'"),
        ({"clean_accuracy": float("nan")}, "'clean_accuracy'"),
        ({"budget_eps": float("inf")}, "'budget_eps'"),
    ],
)
def test_robustness_curve_invalid_inputs_raise(kwargs: dict[str, object], match: str) -> None:
    options: dict[str, object] = {
        "eps": [0.1, 0.2],
        "robust_accuracy": [0.5, 0.4],
        "clean_accuracy": 0.9,
        "norm": "linf",
        **kwargs,
    }
    with pytest.raises(InvalidParameterError, match=match):
        robustness_curve_svg(**options)  # type: ignore[arg-type]


# roc_curve_svg: imports are local so these tests stay an append-only addition to this module.


def _roc(n_nonmembers: int, seed: int = 0) -> tuple[object, object]:
    import numpy as np

    from mlarmor.attacks.inference import roc_curve

    rng = np.random.default_rng(seed)
    scores = np.r_[rng.normal(1.0, 1.0, 300), rng.normal(0.0, 1.0, n_nonmembers)]
    fpr, tpr, _ = roc_curve(scores, np.r_[np.ones(300, bool), np.zeros(n_nonmembers, bool)])
    return fpr, tpr


def test_roc_curve_svg_has_one_line_per_curve_and_the_diagonal() -> None:
    from mlarmor.report import roc_curve_svg

    svg = roc_curve_svg({"LiRA": _roc(1000), "loss <threshold>": _roc(1000, seed=1)})
    root = parse(svg)
    assert root.findtext(SVG + "title") == "Membership inference ROC"
    assert len(polylines(root)) == 2
    (diag,) = find_class(root, "path", "reference")
    left, top, right, bottom = frame(root)
    assert diag.get("d") == f"M{left:g},{bottom:g} L{right:g},{top:g}"  # (1e-3, 1e-3) to (1, 1)
    (legend,) = find_class(root, "g", "legend")
    assert [t.text for t in legend.iter(SVG + "text")] == ["LiRA", "loss <threshold>"]
    assert root.findtext(f"{SVG}text[@class='x-label']") == "False positive rate"
    assert root.findtext(f"{SVG}text[@class='y-label']") == "True positive rate"
    assert roc_curve_svg({"a": _roc(1000)}, title="T") == roc_curve_svg({"a": _roc(1000)}, title="T")


@pytest.mark.parametrize(
    ("n_nonmembers", "first_tick"),
    [(100, "1e-3"), (1000, "1e-3"), (3000, "1e-4"), (50_000, "1e-5"), (400_000, "1e-5")],
)
def test_roc_curve_svg_axes_reach_one_over_the_non_members(n_nonmembers: int, first_tick: str) -> None:
    from mlarmor.report import roc_curve_svg

    root = parse(roc_curve_svg({"a": _roc(n_nonmembers)}))
    x_ticks, y_ticks = tick_labels(root, "middle"), tick_labels(root, "end")
    assert x_ticks[0] == y_ticks[0] == first_tick
    assert x_ticks[-1] == y_ticks[-1] == "1"


def test_roc_curve_svg_maps_points_and_drops_zeros() -> None:
    from mlarmor.report import roc_curve_svg

    fpr, tpr = [0.0, 0.0, 0.01, 0.1, 1.0], [0.0, 0.1, 0.1, 0.5, 1.0]
    root = parse(roc_curve_svg({"a": (fpr, tpr)}))  # type: ignore[dict-item]
    left, top, right, bottom = frame(root)
    ((p0, p1, p2),) = polylines(root)  # the two points at FPR 0 cannot be shown
    assert p0 == pytest.approx((log(0.01, 1e-3, 1, left, right), log(0.1, 1e-3, 1, bottom, top)), abs=0.005)
    assert p1 == pytest.approx((log(0.1, 1e-3, 1, left, right), log(0.5, 1e-3, 1, bottom, top)), abs=0.005)
    assert p2 == (right, top)


def test_roc_curve_svg_decimates_long_curves_keeping_the_shape() -> None:
    import numpy as np

    from mlarmor.report import roc_curve_svg
    from mlarmor.report.plot import ROC_MAX_POINTS

    # 200k points: a smooth curve with a vertical jump from TPR 0.2 to 0.8 at FPR 0.01.
    fpr = np.r_[np.linspace(1e-5, 0.01, 100_000), np.full(1000, 0.01), np.linspace(0.01, 1.0, 99_000)]
    tpr = np.r_[np.linspace(0.0, 0.2, 100_000), np.linspace(0.2, 0.8, 1000), np.linspace(0.8, 1.0, 99_000)]
    root = parse(roc_curve_svg({"a": (fpr, tpr)}))
    ((*points,),) = polylines(root)
    assert len(points) <= ROC_MAX_POINTS + 10
    left, top, right, bottom = frame(root)
    assert points[-1] == (right, top)
    xs = np.array([x for x, _ in points])
    ys = np.array([y for _, y in points])
    assert (np.diff(xs) >= 0).all()
    assert np.diff(xs).max() < 3  # no gap wider than a couple of pixels
    jump_x = log(0.01, 1e-5, 1, left, right)
    near = np.abs(xs - jump_x) < 3  # a bin is about 2 px wide
    assert ys[near].max() == pytest.approx(log(0.2, 1e-5, 1, bottom, top), abs=2.5)
    assert ys[near].min() == pytest.approx(log(0.8, 1e-5, 1, bottom, top), abs=2.5)


@pytest.mark.parametrize(
    ("curves", "match"),
    [
        ({}, "non-empty mapping"),
        ([([0.1], [0.2])], "non-empty mapping"),
        ({"a": ([0.1, 0.2], [0.2])}, "equal, non-zero length"),
        ({"a": ([], [])}, "equal, non-zero length"),
        ({"a": ([[0.1]], [[0.2]])}, "1-D"),
        ({"a": ([0.1, 1.2], [0.2, 0.3])}, r"rates in \[0, 1\]"),
        ({"a": ([0.1, float("nan")], [0.2, 0.3])}, r"rates in \[0, 1\]"),
        ({"a": ([0.1, 0.2],)}, "a pair"),
        ({"a": (["x"], [0.1])}, "a pair"),
    ],
)
def test_roc_curve_svg_invalid_inputs_raise(curves: object, match: str) -> None:
    from mlarmor.report import roc_curve_svg

    with pytest.raises(InvalidParameterError, match=match):
        roc_curve_svg(curves)  # type: ignore[arg-type]
