"""Built-in demo sets, read from the copies that ship inside scikit-learn (nothing is downloaded)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._validate import FloatArray, IntArray
from .dataset import FeatureScaling

__all__ = ["DEMOS", "DemoData"]


@dataclass(frozen=True, slots=True, eq=False)
class DemoData:
    """Arrays and metadata of one demo set, before the user's constraints are applied."""

    name: str
    x: FloatArray
    y: IntArray
    feature_names: tuple[str, ...]
    class_names: tuple[str, ...]
    scaling: FeatureScaling | None = None


def _digits() -> DemoData:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # Pixel intensities are integers 0..16; dividing by 16 puts them exactly in [0, 1].
    x = (np.asarray(bunch.images, dtype=np.float32) / np.float32(16.0))[:, None, :, :]
    return DemoData(
        name="digits",
        x=x,
        y=np.asarray(bunch.target, dtype=np.int64),
        feature_names=tuple(str(n) for n in bunch.feature_names),
        class_names=tuple(str(c) for c in bunch.target_names),
    )


def _breast_cancer() -> DemoData:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    raw = np.asarray(bunch.data, dtype=np.float64)
    scaling = FeatureScaling(data_min=raw.min(axis=0), data_max=raw.max(axis=0))
    x = np.clip(scaling.from_original(raw), 0.0, 1.0).astype(np.float32)
    return DemoData(
        name="breast-cancer",
        x=x,
        y=np.asarray(bunch.target, dtype=np.int64),
        feature_names=tuple(str(n) for n in bunch.feature_names),
        class_names=tuple(str(c) for c in bunch.target_names),
        scaling=scaling,
    )


DEMOS: dict[str, Callable[[], DemoData]] = {
    "demo:breast-cancer": _breast_cancer,
    "demo:digits": _digits,
}
"""Loader of each demo set by its ``demo:`` name."""
