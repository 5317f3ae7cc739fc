"""The two models the evasion benchmark attacks, trained here in seconds on scikit-learn's bundled data.

* ``digits``: a small CNN on scikit-learn's 8x8 digits (``demo:digits``, ``(1, 8, 8)`` in [0, 1]);
* ``breast-cancer``: an MLP on scikit-learn's breast-cancer table (``demo:breast-cancer``, 30 features
  min-max scaled to [0, 1]).

Both are seeded and read their inputs in [0, 1] directly (no normalisation outside the module), so
every tool attacks exactly the same function. Nothing is downloaded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from mlarmor.data import load_dataset


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


def _cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 64),
        nn.ReLU(),
        nn.Linear(64, 10),
    )


class _Standardize(nn.Module):
    """Flatten, then standardise with the training statistics (inside the model: every tool sees it)."""

    def __init__(self, x_train: np.ndarray) -> None:
        super().__init__()
        self.register_buffer("mu", torch.from_numpy(x_train.mean(axis=0)))
        self.register_buffer("sigma", torch.from_numpy(x_train.std(axis=0) + 1e-6))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mu) / self.sigma


def _mlp(x_train: np.ndarray) -> nn.Module:
    # Flatten first: the same module accepts (n, 30) and the (n, 30, 1, 1) view torchattacks' Square needs.
    return nn.Sequential(
        _Standardize(x_train),
        nn.Linear(x_train.shape[1], 64),
        nn.ReLU(),
        nn.Linear(64, 64),
        nn.ReLU(),
        nn.Linear(64, 2),
    )


def _fit(
    model: nn.Module, x: np.ndarray, y: np.ndarray, *, epochs: int, batch: int, lr: float, seed: int
) -> None:
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), batch):
            rows = order[start : start + batch]
            opt.zero_grad()
            loss_fn(model(xt[rows]), yt[rows]).backward()
            opt.step()
    model.eval()


def _accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def train(name: str, *, seed: int = 0) -> Trained:
    """Train the benchmark model ``name`` (``"digits"`` or ``"breast-cancer"``) with a fixed seed."""
    torch.manual_seed(seed)
    t0 = time.perf_counter()
    ds = load_dataset(f"demo:{name}")
    x = np.ascontiguousarray(ds.x, dtype=np.float32)
    y = np.asarray(ds.y, dtype=np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=0.3, random_state=seed, stratify=y)
    if name == "digits":
        model, floor = _cnn(), 0.97
        _fit(model, x_tr, y_tr, epochs=25, batch=32, lr=1e-3, seed=seed)
    elif name == "breast-cancer":
        model, floor = _mlp(x_tr), 0.95
        _fit(model, x_tr, y_tr, epochs=30, batch=32, lr=1e-3, seed=seed)
    else:
        raise ValueError(f"unknown benchmark model {name!r}")
    for p in model.parameters():
        p.requires_grad_(False)
    return Trained(
        name=name,
        model=model,
        x_test=np.ascontiguousarray(x_te),
        y_test=y_te,
        num_classes=int(ds.num_classes),
        input_shape=tuple(x.shape[1:]),
        clean_accuracy=_accuracy(model, x_te, y_te),
        train_seconds=time.perf_counter() - t0,
        min_accuracy=floor,
    )
