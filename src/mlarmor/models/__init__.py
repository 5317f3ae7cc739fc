"""Small ready-made classifiers and their training loop (:mod:`.zoo`).

The demo command, the test suites, the benchmarks and the audits that train reference models all
build their models here: :func:`digits_cnn`, :func:`digits_mlp` and :func:`tabular_mlp` return fresh
seeded modules, :func:`fit_classifier` trains one reproducibly and :func:`accuracy` scores it.
"""

from __future__ import annotations

from .zoo import (
    CnnVariant,
    Standardize,
    accuracy,
    digits_cnn,
    digits_mlp,
    fit_classifier,
    tabular_mlp,
)

__all__ = [
    "CnnVariant",
    "Standardize",
    "accuracy",
    "digits_cnn",
    "digits_mlp",
    "fit_classifier",
    "tabular_mlp",
]
