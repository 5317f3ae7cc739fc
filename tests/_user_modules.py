"""A user's folder: ``mynet.py``, ``custom_tx.py``, whole pickled models of their classes and a CSV.

The models are written by a subprocess, so that ``mynet`` and ``custom_tx`` are never imported in the
test process: loading them there needs mlarmor to import the user's code, or to say why it cannot.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

MYNET = textwrap.dedent(
    """
    import torch


    class Net(torch.nn.Module):
        def __init__(self, scale):
            super().__init__()
            self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
            self.body = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

        def forward(self, x):
            return self.body(x / self.scale)
    """
)

CUSTOM_TX = textwrap.dedent(
    """
    import numpy as np
    from sklearn.base import BaseEstimator, TransformerMixin


    class MaxAbsScale(BaseEstimator, TransformerMixin):
        def fit(self, X, y=None):
            self.scale_ = np.abs(np.asarray(X, dtype=float)).max(axis=0) + 1e-9
            return self

        def transform(self, X):
            return np.asarray(X, dtype=float) / self.scale_
    """
)

WRITER = textwrap.dedent(
    """
    import sys

    import joblib
    import numpy as np
    import pandas as pd
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    import custom_tx
    import mynet

    rng = np.random.default_rng(0)
    n = 48
    names = np.array(["cat", "dog", "eel"])
    y = rng.integers(0, 3, n)
    scale = np.array([1.0, 10.0, 100.0, 1000.0])
    x = (rng.random((n, 4)) + 0.6 * y[:, None]) * scale  # features on very different scales
    frame = pd.DataFrame(x, columns=["petal", "weight_g", "height_mm", "price_cents"])
    frame["species"] = names[y]
    frame.to_csv("data.csv", index=False)

    torch.manual_seed(0)
    net = mynet.Net(scale * 1.6)
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    opt = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(150):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    torch.save(net, "model.pt")

    pipe = make_pipeline(custom_tx.MaxAbsScale(), LogisticRegression(max_iter=500)).fit(x, names[y])
    joblib.dump(pipe, "pipe.joblib")
    np.savez(
        "expected.npz",
        torch_pred=net(xt).argmax(1).numpy(),
        torch_acc=float((net(xt).argmax(1) == yt).float().mean()),
        sklearn_pred=pipe.predict(x),
        sklearn_acc=float((pipe.predict(x) == names[y]).mean()),
    )
    """
)


def write_user_folder(folder: Path) -> Path:
    """Write the modules, models, ``data.csv`` and ``expected.npz`` into ``folder``; return it."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "mynet.py").write_text(MYNET)
    (folder / "custom_tx.py").write_text(CUSTOM_TX)
    done = subprocess.run(
        [sys.executable, "-c", WRITER],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return folder
