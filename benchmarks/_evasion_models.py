"""The two models the evasion benchmark attacks, trained here in seconds on scikit-learn's bundled data.

* ``digits``: a small CNN on scikit-learn's 8x8 digits (``demo:digits``, ``(1, 8, 8)`` in [0, 1]);
* ``breast-cancer``: an MLP on scikit-learn's breast-cancer table (``demo:breast-cancer``, 30 features
  min-max scaled to [0, 1]).

Both come from :mod:`mlarmor.models` (``digits_cnn()`` and ``tabular_mlp`` with its standardisation
inside), are seeded, and read their inputs in [0, 1] directly (no normalisation outside the module),
so every tool attacks exactly the same function. Nothing is downloaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split
from torch import nn

from mlarmor.data import load_dataset
from mlarmor.models import accuracy, digits_cnn, fit_classifier, tabular_mlp


@dataclass(frozen=True)
class Trained:
    """A trained model with its held-out test split."""

    name: str
    model: nn.Module
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    input_shape: tuple[int, ...]
    clean_accuracy: float
    train_seconds: float
    min_accuracy: float


def train(name: str, *, seed: int = 0) -> Trained:
    """Train the benchmark model ``name`` (``"digits"`` or ``"breast-cancer"``) with a fixed seed."""
    t0 = time.perf_counter()
    ds = load_dataset(f"demo:{name}")
    x = np.ascontiguousarray(ds.x, dtype=np.float32)
    y = np.asarray(ds.y, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    if name == "digits":
        model, floor, epochs = digits_cnn(seed=seed), 0.97, 25
    elif name == "breast-cancer":
        # Standardised inside the model, after a flatten: the same module accepts (n, 30) and the
        # (n, 30, 1, 1) view torchattacks' Square needs.
        mean, std = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6
        model = tabular_mlp(x_tr.shape[1], 2, hidden=(64, 64), mean=mean, std=std, seed=seed)
        floor, epochs = 0.95, 30
    else:
        raise ValueError(f"unknown benchmark model {name!r}")
    fit_classifier(model, x_tr, y_tr, epochs=epochs, batch_size=32, lr=1e-3, seed=seed)
    for p in model.parameters():
        p.requires_grad_(False)
    return Trained(
        name=name,
        model=model,
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te,
        num_classes=int(ds.num_classes),
        input_shape=tuple(x.shape[1:]),
        clean_accuracy=accuracy(model, x_te, y_te),
        train_seconds=time.perf_counter() - t0,
        min_accuracy=floor,
    )
