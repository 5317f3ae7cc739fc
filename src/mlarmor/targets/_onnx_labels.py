"""The class labels an ONNX classifier names, read statically from its graph (private).

skl2onnx exports carry them as attributes of the classifier node (``LinearClassifier``,
``TreeEnsembleClassifier``, ``SVMClassifier``...: ``classlabels_strings`` or
``classlabels_int64s``) and of the ``ZipMap`` that turns the probabilities into ``{label: p}``
dicts. The graph is walked with the scanner's protobuf reader (no ``onnx`` package, nothing run):
ModelProto.graph (7) → GraphProto.node (1) → NodeProto.op_type (4) / attribute (5) →
AttributeProto.name (1), ints (8), strings (9).
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from mlarmor.scan._protobuf import LEN, VARINT, Field, ProtobufError, iter_fields, read_string, read_varint

__all__ = ["graph_class_labels"]

_M_GRAPH, _G_NODE, _N_OP_TYPE, _N_ATTRIBUTE = 7, 1, 4, 5
_A_NAME, _A_INTS, _A_STRINGS = 1, 8, 9
_LABEL_ATTRIBUTES = ("classlabels_strings", "classlabels_int64s", "classlabels_ints")


def _ints(view: memoryview, f: Field) -> list[int]:
    if f.wire == VARINT:
        return [f.value - (1 << 64) if f.value >= 1 << 63 else f.value]
    out, pos = [], f.start
    while pos < f.end:  # packed repeated int64
        value, pos = read_varint(view, pos, f.end)
        out.append(value - (1 << 64) if value >= 1 << 63 else value)
    return out


def _node_labels(view: memoryview, node: Field) -> tuple[str, tuple[str, ...] | None]:
    op_type, labels = "", None
    for g in iter_fields(view, node.start, node.end):
        if g.number == _N_OP_TYPE and g.wire == LEN:
            op_type = read_string(view, g)
        elif g.number == _N_ATTRIBUTE and g.wire == LEN:
            name, ints, strings = "", [], []
            for a in iter_fields(view, g.start, g.end):
                if a.number == _A_NAME and a.wire == LEN:
                    name = read_string(view, a)
                elif a.number == _A_INTS:
                    ints += _ints(view, a)
                elif a.number == _A_STRINGS and a.wire == LEN:
                    strings.append(read_string(view, a))
            if name in _LABEL_ATTRIBUTES and (ints or strings):
                labels = tuple(strings) if strings else tuple(str(i) for i in ints)
    return op_type, labels


def _labels(view: memoryview, zipmap_output: bool) -> tuple[str, ...] | None:
    found: dict[str, tuple[str, ...]] = {}
    for f in iter_fields(view, 0, len(view)):
        if f.number != _M_GRAPH or f.wire != LEN:
            continue
        for g in iter_fields(view, f.start, f.end):
            if g.number == _G_NODE and g.wire == LEN:
                op_type, labels = _node_labels(view, g)
                if labels is not None:
                    found.setdefault(op_type, labels)
    if not found or len({frozenset(v) for v in found.values()}) != 1:
        return None  # no labels, or nodes that disagree: nothing to trust
    if zipmap_output:
        # The adapter orders a ZipMap's columns by sorted key: the labels in that order.
        labels = next(iter(found.values()))
        numeric = all(label.lstrip("-").isdigit() for label in labels)
        return tuple(sorted(labels, key=int if numeric else str))
    classifier = [v for k, v in found.items() if k != "ZipMap"]
    return classifier[0] if classifier else None


def graph_class_labels(
    source: str | os.PathLike[str] | bytes, *, zipmap_output: bool
) -> tuple[str, ...] | None:
    """The class labels in the order of the score output's columns, or ``None`` when not named.

    Args:
        source: The ``.onnx`` file or its bytes.
        zipmap_output: Whether the scores are read from a ZipMap (columns in sorted label order)
            rather than the classifier's probability tensor (columns in its ``classlabels`` order).
    """
    try:
        if isinstance(source, bytes | bytearray):
            return _labels(memoryview(bytes(source)), zipmap_output)
        with Path(source).open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
            view = memoryview(mapped)
            try:
                return _labels(view, zipmap_output)
            finally:
                view.release()
    except (OSError, ValueError, ProtobufError):
        return None  # an unreadable graph names no classes; the adapter already loaded it
