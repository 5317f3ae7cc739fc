"""CSV, TSV and Parquet tables with a label column, read through pandas."""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from mlarmor.errors import InputError, InvalidParameterError, invalid_parameter

from ._validate import FloatArray, IntArray, encode_labels

__all__ = ["Table", "read_ranges", "read_table"]

_PARQUET_ENGINES = ("pyarrow", "fastparquet")
_MAX_LISTED = 12


@dataclass(frozen=True, slots=True, eq=False)
class Table:
    """Feature matrix, encoded labels and names read from one table."""

    x: npt.NDArray[np.float64]
    y: IntArray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...] | None


def _listing(items: Sequence[str], *, limit: int | None = _MAX_LISTED) -> str:
    """``items`` quoted, the first ``limit`` of them (all with ``None``) and how many more."""
    shown = items if limit is None else items[:limit]
    more = len(items) - len(shown)
    return ", ".join(repr(i) for i in shown) + (f" and {more} more" if more else "")


def _pandas(kind: str) -> ModuleType:
    if importlib.util.find_spec("pandas") is None:
        raise InputError(
            f"Reading {kind} files needs pandas, which is not installed. Install it (pip install pandas) "
            "or convert the data to .npz with arrays x and y."
        )
    return importlib.import_module("pandas")


def _check_parquet_engine() -> None:
    if not any(importlib.util.find_spec(m) is not None for m in _PARQUET_ENGINES):
        raise InputError(
            "Reading Parquet files needs pyarrow or fastparquet, and neither is installed. Install one "
            "(pip install pyarrow) or convert the data to CSV or .npz."
        )


def _read(path: Path, kind: str) -> Any:
    pd = _pandas(kind)
    if kind == "Parquet":
        _check_parquet_engine()
    else:
        with path.open("rb") as f:
            if b"\x00" in f.read(4096):
                raise InputError(
                    f"{path} is not a {kind} text file (it holds binary data). Export it as text."
                )
    try:
        if kind == "Parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep="\t" if kind == "TSV" else ",")
    except pd.errors.EmptyDataError as e:
        raise InputError(f"The dataset {path.name!r} is empty: {path} has no columns or rows.") from e
    except (ValueError, OSError, UnicodeDecodeError) as e:
        raise InputError(f"Cannot parse {path} as a {kind} table: {e}. Check the file's format.") from e


def read_table(
    path: Path, kind: str, label_column: str | None, feature_columns: Sequence[str] | None
) -> Table:
    """Read ``path`` and split it into numeric features and labels.

    Raises:
        InputError: The table cannot be read, is empty, or has non-numeric or missing values.
        InvalidParameterError: ``label_column`` or ``feature_columns`` do not name the table's columns.
    """
    df = _read(path, kind)
    columns = [str(c) for c in df.columns]
    df.columns = columns
    if label_column is None:
        raise InvalidParameterError(
            f"Loading the {kind} table {path} needs label_column (--label-column), the column that holds "
            f"the labels. Its columns are: {_listing(columns, limit=None)}."
        )
    if label_column not in columns:
        raise invalid_parameter(
            "label_column",
            "load_dataset",
            f"one of the columns of {path.name} ({_listing(columns, limit=None)})",
            label_column,
        )
    features = _feature_columns(columns, label_column, feature_columns, path)
    if len(df) == 0:
        raise InputError(f"The dataset {path.name!r} is empty: {path} has a header but no rows.")

    non_numeric = [f"{c!r} ({df[c].dtype})" for c in features if not _is_numeric(df[c])]
    if non_numeric:
        raise InputError(
            f"The feature columns of {path} must be numeric; these are not: "
            f"{', '.join(non_numeric[:_MAX_LISTED])}. Encode them as numbers (one-hot or ordinal "
            "codes) or leave them out with feature_columns."
        )
    x = df[features].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(x)
    if bad.any():
        per_column = bad.sum(axis=0)
        listed = [f"{features[i]!r} ({int(per_column[i])})" for i in np.flatnonzero(per_column)]
        raise InputError(
            f"The dataset {path.name!r} has {int(bad.sum())} missing or infinite feature value(s) in "
            f"{len(listed)} column(s): {', '.join(listed[:_MAX_LISTED])}. Impute or drop them first."
        )
    y, class_names = _labels(df[label_column], label_column, path)
    return Table(x=x, y=y, feature_names=tuple(features), class_names=class_names)


def read_ranges(path: Path, kind: str, features: Sequence[str]) -> tuple[FloatArray, FloatArray]:
    """The minimum and maximum of each of ``features`` over the rows of the table at ``path``.

    Raises:
        InputError: The table cannot be read, lacks one of ``features``, or they hold no usable number.
    """
    df = _read(path, kind)
    df.columns = [str(c) for c in df.columns]
    missing = [c for c in features if c not in df.columns]
    if missing:
        raise InputError(
            f"The feature-bounds table {path} lacks {len(missing)} feature column(s) of the data: "
            f"{_listing(missing)}. Give a table with every feature column (the training data, or two "
            "rows: each feature's lowest and highest value)."
        )
    if len(df) == 0:
        raise InputError(f"The feature-bounds table {path} has a header but no rows.")
    non_numeric = [repr(c) for c in features if not _is_numeric(df[c])]
    if non_numeric:
        raise InputError(
            f"The feature columns of the feature-bounds table {path} must be numeric; these are not: "
            f"{', '.join(non_numeric[:_MAX_LISTED])}."
        )
    x = df[list(features)].to_numpy(dtype=np.float64, na_value=np.nan)
    x[~np.isfinite(x)] = np.nan
    empty = [str(features[int(i)]) for i in np.flatnonzero(np.isnan(x).all(axis=0))]
    if empty:
        raise InputError(
            f"The feature-bounds table {path} has no finite value in column(s) {_listing(empty)}."
        )
    return np.nanmin(x, axis=0).astype(np.float32), np.nanmax(x, axis=0).astype(np.float32)


def _feature_columns(
    columns: list[str], label_column: str, feature_columns: Sequence[str] | None, path: Path
) -> list[str]:
    if feature_columns is None:
        features = [c for c in columns if c != label_column]
        if not features:
            raise InputError(f"{path} has only the label column {label_column!r}; it needs feature columns.")
        return features
    if isinstance(feature_columns, str) or not isinstance(feature_columns, Sequence) or not feature_columns:
        raise invalid_parameter(
            "feature_columns", "load_dataset", "a non-empty list of column names", feature_columns
        )
    features = [str(c) for c in feature_columns]
    unknown = [c for c in features if c not in columns]
    if unknown:
        raise invalid_parameter(
            "feature_columns", "load_dataset", f"columns of {path.name} ({_listing(columns)})", unknown
        )
    if label_column in features or len(set(features)) != len(features):
        raise invalid_parameter(
            "feature_columns", "load_dataset", "distinct columns other than the label column", features
        )
    return features


def _is_numeric(series: Any) -> bool:
    pd = importlib.import_module("pandas")  # no type stubs; imported after _pandas() checked it
    return bool(pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype))


def _labels(series: Any, label_column: str, path: Path) -> tuple[IntArray, tuple[str, ...] | None]:
    pd = importlib.import_module("pandas")  # no type stubs; imported after _pandas() checked it
    missing = np.asarray(series.isna())
    if missing.any():
        raise InputError(
            f"The label column {label_column!r} of {path} has {int(missing.sum())} missing label(s), the "
            f"first at row index {int(np.flatnonzero(missing)[0])}. Drop or label those rows."
        )
    if pd.api.types.is_bool_dtype(series.dtype):
        values = series.to_numpy(dtype=np.int64)
    elif pd.api.types.is_numeric_dtype(series.dtype):
        values = series.to_numpy()
    else:
        values = series.astype(str).to_numpy(dtype=str)
    what = f"{path.name!r} (label column {label_column!r})"
    return encode_labels(values, n=len(series), what=what, error=InputError, allow_strings=True)
