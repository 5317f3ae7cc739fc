"""Built-in training recipes: ``train(x, y, seed) -> torch.nn.Module`` functions for the demo sets.

They are what ``--recipe demo:digits-cnn`` and ``--recipe demo:digits-mlp`` name (see
:func:`mlarmor.targets.recipe.load_recipe`): the demo and the docs retrain models with them, and a
user's own ``file.py:train`` has the same signature. Each returns the trained module in eval mode,
outputting logits.

Example:
    >>> from mlarmor.data import load_dataset
    >>> ds = load_dataset("demo:digits")
    >>> model = train_digits_cnn(ds.x[:200], ds.y[:200], seed=0)  # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np
from torch import nn

from mlarmor.models.zoo import digits_cnn, digits_mlp, fit_classifier

__all__ = ["RECIPES", "train_digits_cnn", "train_digits_mlp"]


def train_digits_cnn(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    """A :func:`~mlarmor.models.digits_cnn` trained 30 epochs with Adam (lr 1e-3, batches of 64)."""
    return fit_classifier(digits_cnn(seed=seed), x, y, epochs=30, lr=1e-3, seed=seed)


def train_digits_mlp(x: np.ndarray, y: np.ndarray, seed: int) -> nn.Module:
    """A :func:`~mlarmor.models.digits_mlp` (64 hidden units) trained 40 epochs with Adam (lr 1e-3)."""
    return fit_classifier(digits_mlp(seed=seed), x, y, epochs=40, lr=1e-3, seed=seed)


# ``demo:NAME`` recipe specs -> function names in this module.
RECIPES: dict[str, str] = {"digits-cnn": "train_digits_cnn", "digits-mlp": "train_digits_mlp"}
