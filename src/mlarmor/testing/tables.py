"""User-shaped tables for tests and benchmarks: string labels, features on very different scales.

Built-in demo sets are scaled to [0, 1] with integer labels; users bring neither. These generators
make the tables that issue 11's checks and ``benchmarks/bench_userdata.py`` run on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd  # type: ignore[import-untyped]  # pandas ships no type stubs

__all__ = ["CUSTOMER_SCALES", "customers", "loans"]

CUSTOMER_SCALES = np.array([1, 1e3, 1e5, 0.01, 50, 7, 1e4, 0.5, 300, 2, 1e6, 0.1])
"""The scale (and mean) of each of :func:`customers`' twelve features."""


def loans(n: int, seed: int = 0) -> Any:
    """Loan decisions: ``age`` 11-15 (whole years), ``income`` 20k-90k, ``debt_ratio`` in [0, 1].

    The label column ``decision`` holds ``"approve"`` or ``"deny"``, mostly from the income and the
    ratio, with noise.
    """
    rng = np.random.default_rng(seed)
    age = rng.integers(11, 16, n)
    income = rng.uniform(20_000, 90_000, n).round(0)
    ratio = rng.uniform(0, 1, n).round(3)
    score = (income - 55_000) / 35_000 - 1.5 * (ratio - 0.5) + 0.3 * (age - 13)
    label = np.where(score + rng.normal(0, 0.2, n) > 0, "approve", "deny")
    return pd.DataFrame({"age": age, "income": income, "debt_ratio": ratio, "decision": label})


def customers(n: int, seed: int = 0) -> Any:
    """Customers: features ``f0``..``f11`` on the scales of :data:`CUSTOMER_SCALES`, label ``status``.

    ``status`` is ``"churned"`` or ``"stayed"``, from ``f0`` with noise.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, CUSTOMER_SCALES.size)) * CUSTOMER_SCALES + CUSTOMER_SCALES
    status = np.where(x[:, 0] + rng.normal(0, 1, n) > 1, "churned", "stayed")
    columns = [f"f{i}" for i in range(CUSTOMER_SCALES.size)]
    return pd.DataFrame(x.round(4), columns=columns).assign(status=status)
