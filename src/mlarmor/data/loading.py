"""Load a :class:`~mlarmor.data.dataset.Dataset` from a file or a built-in demo set.

Sources (the extension routes, the file's first bytes are checked against it):

- ``data.npz``: a NumPy archive with arrays ``x`` (inputs) and ``y`` (labels), optionally
  ``feature_names`` and ``class_names`` as string arrays;
- ``"x.npy,y.npy"``: two ``.npy`` files, inputs and labels;
- ``data.csv`` / ``data.tsv`` / ``data.parquet``: a table with a label column (``label_column``); the
  other columns (or ``feature_columns``) are the features and must be numeric. Needs pandas, and
  pyarrow or fastparquet for Parquet;
- ``demo:digits``: scikit-learn's 8x8 digits as ``(1, 8, 8)`` images in [0, 1], 10 classes;
- ``demo:breast-cancer``: scikit-learn's breast-cancer table, 30 features min-max scaled to [0, 1]
  (the raw ranges are kept in ``Dataset.scaling``), 2 classes.

NumPy files are read with ``allow_pickle=False``: an array of Python objects is refused, never
unpickled. Nothing is downloaded.

Example:
    >>> from mlarmor.data import load_dataset
    >>> ds = load_dataset("demo:digits")
    >>> ds.n, ds.input_shape, ds.num_classes, ds.bounds
    (1797, (1, 8, 8), 10, (0.0, 1.0))
"""

from __future__ import annotations

import logging
import os
import warnings
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlarmor._validation import check_bounds
from mlarmor.errors import InputError, InvalidParameterError, MlarmorWarning, invalid_parameter

from ._demos import DEMOS
from ._validate import FloatArray, IntArray, encode_labels, feature_indices, numeric_inputs
from .dataset import Dataset, FeatureScaling

__all__ = ["DEMO_DATASETS", "load_dataset"]

_log = logging.getLogger(__name__)

DEMO_DATASETS: tuple[str, ...] = tuple(DEMOS)
"""Names of the built-in demo sets, usable as ``source``."""

_OWNER = "load_dataset"
_SUPPORTED = (
    "a .npz archive with arrays x and y, a pair 'x.npy,y.npy', a .csv/.tsv/.parquet table with a label "
    f"column, or a demo set ({', '.join(DEMO_DATASETS)})"
)
_TABLE_SUFFIXES = {".csv": "CSV", ".tsv": "TSV", ".parquet": "Parquet", ".pq": "Parquet"}
_MAGIC = {
    b"PK\x03\x04": "a zip archive",
    b"PK\x05\x06": "a zip archive",
    b"\x93NUMPY": "a NumPy .npy array",
    b"PAR1": "a Parquet file",
    b"\x80": "a Python pickle",
}


@dataclass(frozen=True, slots=True, eq=False)
class _Raw:
    name: str
    x: FloatArray
    y: IntArray
    feature_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    scaling: FeatureScaling | None = None
    bounds: tuple[float, float] | None = None


def load_dataset(
    source: str | os.PathLike[str],
    *,
    label_column: str | None = None,
    bounds: tuple[float, float] | None = None,
    immutable: Sequence[int | str] = (),
    integer: Sequence[int | str] = (),
    feature_columns: Sequence[str] | None = None,
    feature_bounds: str | os.PathLike[str] | None = None,
) -> Dataset:
    """Load a dataset from a file, a ``.npy`` pair or a built-in demo set.

    **Feature ranges.** A file of flat features (a table, or ``x`` of shape ``(n, d)``) loaded
    without ``bounds`` gets a range per feature: each column's minimum and maximum over the data and,
    when given, over ``feature_bounds`` (the training data, say, or a table of two rows: each
    feature's lowest and highest value). Attacks keep every feature inside its range, and budgets
    relative to the range (``eps_unit="range"`` in :func:`~mlarmor.assess.evaluate_evasion`) are
    measured on it.

    Args:
        source: A path (``.npz``, ``.csv``, ``.tsv``, ``.parquet``), ``"x.npy,y.npy"``, or one of
            :data:`DEMO_DATASETS`.
        label_column: For tables: the column holding the labels. String labels become class
            indices ``0..C-1`` in sorted order, with the strings kept as ``class_names``.
        bounds: Declared input range ``(low, high)``; every value must lie in it. When omitted: the
            demo sets' ``(0, 1)``; for files the smallest range holding both [0, 1] and the data.
        immutable: Features attacks must not change, as flat indices or (for tables and demo sets)
            feature names.
        integer: Features that must stay integral, as flat indices or feature names.
        feature_columns: For tables: the feature columns, in order (default: every column but the
            label column).
        feature_bounds: For flat features: a table (CSV/TSV/Parquet, with the data's feature columns
            by name) or ``.npz`` (its ``x``) whose per-feature minimum and maximum widen the ranges
            taken from the data. With ``bounds``, the ranges are clipped to them.

    Returns:
        The validated :class:`~mlarmor.data.dataset.Dataset`, named after the file or demo set.

    Raises:
        InputError: The file is missing, unreadable, of an unknown kind, or its content cannot be used
            (missing arrays, object arrays, NaN, bad labels, no samples...).
        InvalidParameterError: A parameter does not fit the data (bounds that do not hold it, an
            unknown label column or feature).
    """
    if isinstance(source, str) and source.startswith("demo:"):
        _no_table_options(label_column, feature_columns)
        raw = _demo(source)
    elif isinstance(source, str | os.PathLike):
        raw = _from_path(source, label_column=label_column, feature_columns=feature_columns)
    else:
        raise invalid_parameter("source", _OWNER, f"a path or a demo name ({_SUPPORTED})", source)
    ranges = None
    if feature_bounds is not None:
        ranges = _reference_ranges(raw, feature_bounds)
    return _build(raw, bounds=bounds, immutable=immutable, integer=integer, ranges=ranges)


def _reference_ranges(raw: _Raw, source: str | os.PathLike[str]) -> tuple[FloatArray, FloatArray]:
    if raw.x.ndim != 2 or raw.bounds is not None:
        raise InvalidParameterError(
            f"feature_bounds (--feature-bounds) applies to flat features read from a file (a table, or "
            f"an .npz of shape (n, d)); {raw.name!r} has inputs of shape {raw.x.shape[1:]}"
            f"{' and fixed bounds' if raw.bounds is not None else ''}. Leave it out."
        )
    path = _existing_file(Path(os.fspath(source)))
    suffix = path.suffix.lower()
    if suffix in _TABLE_SUFFIXES:
        from ._tables import read_ranges

        if raw.feature_names is None:
            raise InvalidParameterError(
                f"The feature-bounds table {path.name} names its columns, but the data {raw.name!r} does "
                "not name its features: give the bounds as an .npz with an array x of shape (n, d)."
            )
        return read_ranges(path, _TABLE_SUFFIXES[suffix], raw.feature_names)
    if suffix == ".npz":
        ref = _read_npz(path)
        if ref.x.shape[1:] != raw.x.shape[1:]:
            raise InputError(
                f"The feature-bounds file {path} has inputs of shape {ref.x.shape[1:]}, the data "
                f"{raw.x.shape[1:]}. Give bounds for the same features."
            )
        return ref.x.min(axis=0), ref.x.max(axis=0)
    raise InputError(
        f"Cannot read feature bounds from {path}: expected a CSV/TSV/Parquet table or an .npz file."
    )


def _build(
    raw: _Raw,
    *,
    bounds: tuple[float, float] | None,
    immutable: Sequence[int | str],
    integer: Sequence[int | str],
    ranges: tuple[FloatArray, FloatArray] | None = None,
) -> Dataset:
    feature_low = feature_high = None
    if raw.x.ndim == 2 and raw.bounds is None and (bounds is None or ranges is not None):
        feature_low, feature_high = _feature_ranges(raw, ranges)
    if bounds is not None:
        declared = check_bounds(bounds, _OWNER)
    elif raw.bounds is not None:
        declared = raw.bounds
    else:
        lowest = raw.x.min() if feature_low is None else min(raw.x.min(), feature_low.min())
        highest = raw.x.max() if feature_high is None else max(raw.x.max(), feature_high.max())
        declared = (min(0.0, float(lowest)), max(1.0, float(highest)))
        _log.info(
            "%s: no bounds declared; using %s, the smallest range holding [0, 1] and the data",
            raw.name,
            declared,
        )
    d = int(np.prod(raw.x.shape[1:]))
    resolved = {
        param: feature_indices(
            value, num_features=d, feature_names=raw.feature_names, param=param, owner=_OWNER
        )
        for param, value in (("immutable", immutable), ("integer", integer))
    }
    return Dataset(
        x=raw.x,
        y=raw.y,
        name=raw.name,
        bounds=declared,
        feature_low=feature_low,
        feature_high=feature_high,
        immutable=resolved["immutable"],
        integer=resolved["integer"],
        feature_names=raw.feature_names,
        class_names=raw.class_names,
        scaling=raw.scaling,
    )


def _feature_ranges(raw: _Raw, ranges: tuple[FloatArray, FloatArray] | None) -> tuple[FloatArray, FloatArray]:
    """Each feature's range over the data, widened by ``ranges`` when given (a warning says so)."""
    low, high = raw.x.min(axis=0), raw.x.max(axis=0)
    if ranges is None:
        return low, high
    ref_low, ref_high = ranges
    outside = (low < ref_low) | (high > ref_high)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        name = raw.feature_names[i] if raw.feature_names is not None else str(i)
        warnings.warn(
            f"{int(outside.sum())} feature(s) of {raw.name!r} go beyond the feature bounds given, e.g. "
            f"{name!r} spans [{low[i]:.7g}, {high[i]:.7g}] against [{ref_low[i]:.7g}, {ref_high[i]:.7g}]; "
            "their ranges were widened to hold the data.",
            MlarmorWarning,
            stacklevel=4,
        )
    return np.minimum(low, ref_low), np.maximum(high, ref_high)


def _no_table_options(label_column: str | None, feature_columns: Sequence[str] | None) -> None:
    for param, value in (("label_column", label_column), ("feature_columns", feature_columns)):
        if value is not None:
            raise invalid_parameter(
                param, _OWNER, "None: it applies to CSV, TSV and Parquet tables only", value
            )


def _demo(source: str) -> _Raw:
    loader = DEMOS.get(source)
    if loader is None:
        raise InputError(f"Unknown demo set {source!r}. Known demo sets: {', '.join(DEMO_DATASETS)}.")
    demo = loader()
    return _Raw(
        name=demo.name,
        x=demo.x,
        y=demo.y,
        feature_names=demo.feature_names,
        class_names=demo.class_names,
        scaling=demo.scaling,
        bounds=(0.0, 1.0),
    )


def _from_path(
    source: str | os.PathLike[str], *, label_column: str | None, feature_columns: Sequence[str] | None
) -> _Raw:
    text = os.fspath(source)
    if "," in text and not Path(text).exists():
        parts = [p.strip() for p in text.split(",")]
        if len(parts) != 2 or not all(p.lower().endswith(".npy") for p in parts):
            raise InputError(
                f"Cannot read {text!r}: a comma-separated source must be two .npy files, inputs then labels "
                "('x.npy,y.npy')."
            )
        _no_table_options(label_column, feature_columns)
        return _read_npy_pair(Path(parts[0]), Path(parts[1]))
    path = _existing_file(Path(text))
    suffix = path.suffix.lower()
    if suffix not in _TABLE_SUFFIXES:
        _no_table_options(label_column, feature_columns)
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".npy":
        raise InputError(
            f"{path} is a single .npy array, but a dataset needs inputs and labels. Pass both files as "
            f"'{path},labels.npy', or save them together with numpy.savez('data.npz', x=x, y=y)."
        )
    if suffix in _TABLE_SUFFIXES:
        from ._tables import read_table

        table = read_table(path, _TABLE_SUFFIXES[suffix], label_column, feature_columns)
        return _Raw(
            name=path.name,
            x=numeric_inputs(table.x, what=repr(path.name), error=InputError),
            y=table.y,
            feature_names=table.feature_names,
            class_names=table.class_names,
        )
    raise InputError(
        f"Cannot load {path}: unknown extension {path.suffix or '(none)'!r} ({_sniff(path)}). "
        f"Expected {_SUPPORTED}."
    )


def _existing_file(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"No such file: {path}. Check the path; mlarmor reads {_SUPPORTED}.")
    if not path.is_file():
        raise InputError(f"{path} is not a file. Pass a data file; mlarmor reads {_SUPPORTED}.")
    return path


def _sniff(path: Path) -> str:
    """A short description of what the first bytes of ``path`` look like."""
    try:
        with path.open("rb") as f:
            head = f.read(4096)
    except OSError as e:
        raise InputError(f"Cannot read {path}: {e.strerror or e}. Check its permissions.") from e
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return f"it looks like {what}"
    if not head:
        return "it is empty"
    return "it looks like binary data" if b"\x00" in head else "it looks like text"


def _expect(path: Path, magics: tuple[bytes, ...], kind: str, hint: str) -> None:
    with path.open("rb") as f:
        head = f.read(8)
    if not any(head.startswith(m) for m in magics):
        raise InputError(f"{path} is not {kind} ({_sniff(path)}). {hint}")


def _read_npz(path: Path) -> _Raw:
    _expect(
        path,
        (b"PK\x03\x04", b"PK\x05\x06"),
        "a NumPy .npz archive",
        "Save the data with numpy.savez(path, x=inputs, y=labels).",
    )
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise InputError(
            f"Cannot read {path} as a NumPy .npz archive: {e}. Re-save it with numpy.savez."
        ) from e
    with archive:
        keys = sorted(archive.files)
        missing = [k for k in ("x", "y") if k not in keys]
        if missing:
            raise InputError(
                f"{path} has no array named {' or '.join(map(repr, missing))}; it holds "
                f"{', '.join(map(repr, keys)) or 'no arrays'}. Save the inputs as 'x' and the labels as "
                "'y': numpy.savez(path, x=inputs, y=labels)."
            )
        arrays = {
            k: _npz_member(archive, k, path) for k in ("x", "y", "feature_names", "class_names") if k in keys
        }
    names = {k: _names(arrays.get(k), k, path) for k in ("feature_names", "class_names")}
    return _assemble(path.name, arrays["x"], arrays["y"], names["feature_names"], names["class_names"])


def _npz_member(archive: Any, key: str, path: Path) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(archive[key])
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise _object_array(f"The array {key!r} in {path}") from e
        raise InputError(f"Cannot read the array {key!r} in {path}: {e}. Re-save it with numpy.savez.") from e
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise InputError(f"Cannot read the array {key!r} in {path}: {e}. The archive may be damaged.") from e


def _object_array(what: str) -> InputError:
    return InputError(
        f"{what} holds Python objects (dtype=object), which mlarmor never unpickles: loading them could "
        "run code. Save plain numeric arrays (inputs as floats, labels as integers or strings)."
    )


def _read_npy_pair(x_path: Path, y_path: Path) -> _Raw:
    arrays = []
    for path in (_existing_file(x_path), _existing_file(y_path)):
        _expect(path, (b"\x93NUMPY",), "a NumPy .npy array", "Save it with numpy.save(path, array).")
        try:
            arrays.append(np.load(path, allow_pickle=False))
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise _object_array(str(path)) from e
            raise InputError(
                f"Cannot read {path} as a NumPy .npy array: {e}. Re-save it with numpy.save."
            ) from e
        except (OSError, EOFError) as e:
            raise InputError(
                f"Cannot read {path} as a NumPy .npy array: {e}. The file may be truncated."
            ) from e
    return _assemble(x_path.name, arrays[0], arrays[1], None, None)


def _names(arr: np.ndarray[Any, Any] | None, key: str, path: Path) -> tuple[str, ...] | None:
    if arr is None:
        return None
    if arr.dtype.kind not in "US" or arr.ndim != 1:
        raise InputError(
            f"The optional array {key!r} in {path} must be a 1-D array of strings. Got dtype {arr.dtype} "
            f"and shape {arr.shape}. Save it as numpy.array([...], dtype=str) or leave it out."
        )
    return tuple(str(s) for s in arr)


def _assemble(
    name: str,
    x: np.ndarray[Any, Any],
    y: np.ndarray[Any, Any],
    feature_names: tuple[str, ...] | None,
    class_names: tuple[str, ...] | None,
) -> _Raw:
    what = repr(name)
    inputs = numeric_inputs(x, what=what, error=InputError)
    labels, encoded_names = encode_labels(y, n=len(inputs), what=what, error=InputError, allow_strings=True)
    if encoded_names is not None:
        if class_names is not None:
            raise InputError(
                f"{name} has string labels and a class_names array; give one of them (integer labels with "
                "class_names, or string labels alone)."
            )
        class_names = encoded_names
    d = int(np.prod(inputs.shape[1:]))
    if feature_names is not None and len(feature_names) != d:
        raise InputError(
            f"{name} has {len(feature_names)} feature_names for {d} features per input. Give one name per "
            "flat feature or leave feature_names out."
        )
    if class_names is not None and len(class_names) <= int(labels.max()):
        raise InputError(
            f"{name} has labels up to {int(labels.max())} but only {len(class_names)} class_names. Give one "
            "name per class or leave class_names out."
        )
    return _Raw(name=name, x=inputs, y=labels, feature_names=feature_names, class_names=class_names)
