"""A backdoor for tables: ``feature-trigger``, a few features set to a rare high value at once.

An image trigger (a corner patch) means nothing for a row of income, age and counts. The tabular
analogue sets ``size`` chosen features to a high percentile of their own training values (99th by
default): each value is one the feature really takes, within its range, but all of them together are
rare in clean data, so a model learns the pattern as a shortcut to the target class. Immutable
features are never chosen and integer features get whole values, so a triggered row is one the
data's constraints allow.

Which features: those whose trigger value is the rarest in the training data (the smallest share of
rows at or above it), ties broken by the seed; or the ``features`` the user names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlarmor._validation import check_float, check_fraction, check_int, check_seed
from mlarmor.attacks.poisoning.base import PoisoningAttack, Predict, _labels_of
from mlarmor.attacks.poisoning.triggers import Bounds, Poisoned, _check_class, _check_labels, _choose
from mlarmor.attacks.registry import register
from mlarmor.errors import invalid_parameter

__all__ = ["FeatureTrigger", "apply_feature_trigger", "feature_trigger_values"]

_OWNER = "FeatureTrigger"


def _check_rows(x: object, owner: str) -> np.ndarray:
    """A float copy of ``x`` ``(n, ...)`` as flat rows ``(n, d)`` (features are flat indices)."""
    arr = np.asarray(x)
    if arr.ndim < 2 or arr.shape[0] < 1 or int(np.prod(arr.shape[1:])) < 1:
        raise invalid_parameter(
            "x", owner, "rows of features, shape (n, features) or (n, ...)", f"an array of shape {arr.shape}"
        )
    arr = arr.reshape(arr.shape[0], -1)
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise invalid_parameter("x", owner, "a numeric array", f"dtype {arr.dtype}")
    out = np.array(arr, dtype=arr.dtype if np.issubdtype(arr.dtype, np.floating) else np.float64, copy=True)
    if out.size and not np.isfinite(out).all():
        raise invalid_parameter("x", owner, "finite values", "NaN or infinite values")
    return out


def feature_trigger_values(
    x: npt.ArrayLike,
    *,
    size: int,
    percentile: float = 99.0,
    features: tuple[int, ...] | None = None,
    immutable: tuple[int, ...] = (),
    integer: tuple[int, ...] = (),
    seed: int = 0,
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """The trigger's features and values, read from the training rows ``x`` ``(n, d)``.

    Args:
        x: Clean training rows.
        size: How many features the trigger sets (ignored when ``features`` is given).
        percentile: Each value is this percentile of the feature's training values, in ``(0, 100]``.
        features: The features to set (flat indices); default: the ``size`` mutable features whose
            value is rarest in ``x``.
        immutable: Features never set.
        integer: Features whose value is rounded to a whole number (within the feature's range).
        seed: Breaks ties between equally rare features.

    Returns:
        ``(features, values)``, sorted by feature.

    Raises:
        InvalidParameterError: For fewer mutable features than ``size``, a named feature that is
            immutable or out of range, or a percentile outside ``(0, 100]``.
    """
    rows = _check_rows(x, "feature_trigger_values")
    d = rows.shape[1]
    q = check_float(percentile, "percentile", _OWNER, low=0.0, high=100.0, low_open=True)
    frozen = {int(i) for i in immutable}
    mutable = [i for i in range(d) if i not in frozen]
    if features is not None:
        chosen = sorted({check_int(i, "features", _OWNER, low=0, high=d - 1) for i in features})
        if not chosen or frozen & set(chosen):
            raise invalid_parameter(
                "features", _OWNER, "mutable feature indices (not immutable ones)", tuple(features)
            )
    else:
        k = check_int(size, "size", _OWNER, low=1)
        if k > len(mutable):
            raise invalid_parameter(
                "size",
                _OWNER,
                f"at most the {len(mutable)} features that are not immutable",
                k,
                hint="give a smaller feature-trigger.size or declare fewer immutable features",
            )
        values = np.percentile(rows[:, mutable], q, axis=0)
        rarity = np.mean(rows[:, mutable] >= values, axis=0)
        ties = np.random.default_rng(check_seed(seed, _OWNER)).permutation(len(mutable))
        order = np.lexsort((ties, rarity))
        chosen = sorted(mutable[int(j)] for j in order[:k])
    low, high = rows[:, chosen].min(axis=0), rows[:, chosen].max(axis=0)
    vals = np.clip(np.percentile(rows[:, chosen], q, axis=0), low, high)
    whole = np.isin(chosen, list(integer))
    vals = np.where(whole, np.clip(np.round(vals), np.ceil(low), np.floor(high)), vals)
    return tuple(int(i) for i in chosen), tuple(float(v) for v in vals)


def apply_feature_trigger(
    x: npt.ArrayLike, *, features: tuple[int, ...], values: tuple[float, ...], **_: Any
) -> np.ndarray:
    """A copy of the rows ``x`` ``(n, ...)`` with the flat ``features`` set to ``values``."""
    shape = np.shape(x)
    rows = _check_rows(x, "apply_feature_trigger")
    if len(features) != len(values) or any(not 0 <= int(i) < rows.shape[1] for i in features):
        raise invalid_parameter(
            "features", "apply_feature_trigger", f"indices below {rows.shape[1]}, one per value", features
        )
    rows[:, list(features)] = np.asarray(values, dtype=rows.dtype)
    return rows.reshape(shape)


@register("feature-trigger")
@dataclass(frozen=True, kw_only=True, slots=True)
class FeatureTrigger(PoisoningAttack):
    """A dirty-label backdoor for tabular data: ``size`` features set to a rare high value together.

    Inputs of any shape are read as flat features (on images the trigger is a few bright pixels), but
    it is meant for tables; a simulation picks it by default for flat rows.

    The poisoned rows (drawn from those not of the target class) get the trigger and the target
    label; the success rate is the share of clean test rows not of the target class that the trained
    model sends there once triggered.

    Reference:
        Gu, Dolan-Gavitt & Garg, "BadNets", 2017, https://arxiv.org/abs/1708.06733 (the dirty-label
        trigger); tabular triggers as fixed values of a few features: Joe, Mehra, Shin & Hamm,
        "Exploiting Missing Value Patterns for Backdoor Attacks on Machine Learning Models of
        Electronic Health Records", 2021, https://arxiv.org/abs/2106.07925, and Pawelczyk et al.,
        "Backdoor Attacks on Tabular Data", NeurIPS 2023 workshop.

    Threat model:
        Dirty-label backdoor (MITRE ATLAS AML.T0020, OWASP ML02/ML10): the attacker controls a share
        of the training rows (inputs and labels) and, at test time, the triggered features of the
        rows it wants sent to the target class.

    Attributes:
        size: Number of features set (default 3, and at most half the mutable features, at least 1).
        percentile: Percentile of each feature's training values used as its trigger value (default
            99).
        features: The features to set (flat indices) instead of the rarest ones.
        immutable: Features the trigger must not change (the dataset's ``immutable``).
        integer: Features that must stay whole numbers (the dataset's ``integer``).
    """

    size: int | None = None
    percentile: float = 99.0
    features: tuple[int, ...] | None = None
    immutable: tuple[int, ...] = ()
    integer: tuple[int, ...] = ()

    @property
    def backdoor(self) -> bool:
        """A trigger the attacker controls: reported with OWASP ML10."""
        return True

    def __call__(
        self,
        x: npt.ArrayLike,
        y: npt.ArrayLike,
        *,
        fraction: float,
        target_class: int,
        bounds: Bounds = (0.0, 1.0),
        num_classes: int | None = None,
        seed: int = 0,
        recipe: object = None,
        x_test: npt.ArrayLike | None = None,
        y_test: npt.ArrayLike | None = None,
    ) -> Poisoned:
        """Trigger ``round(fraction * eligible)`` rows not of ``target_class`` and relabel them."""
        frac = check_fraction(fraction, "fraction", _OWNER)
        shape = np.shape(x)
        rows = _check_rows(x, _OWNER)
        labels = _check_labels(y, rows.shape[0], _OWNER)
        n_cls = (
            int(labels.max()) + 1
            if num_classes is None
            else check_int(num_classes, "num_classes", _OWNER, low=2)
        )
        target = _check_class(target_class, "target_class", _OWNER, n_cls)
        seed = check_seed(seed, _OWNER)
        mutable = rows.shape[1] - len(set(self.immutable))
        # At most half the mutable features: a trigger that overwrites the whole row is one fixed input,
        # which any model can memorise, not a pattern riding on real rows.
        size = self.size if self.size is not None else max(1, min(3, mutable // 2))
        features, values = feature_trigger_values(
            rows,
            size=size,
            percentile=self.percentile,
            features=self.features,
            immutable=self.immutable,
            integer=self.integer,
            seed=seed,
        )
        chosen = _choose(np.flatnonzero(labels != target), frac, np.random.default_rng(seed), _OWNER)
        rows[chosen] = apply_feature_trigger(rows[chosen], features=features, values=values)
        labels[chosen] = target
        mask = np.zeros(labels.shape, dtype=bool)
        mask[chosen] = True
        params = {
            "size": len(features),
            "percentile": float(self.percentile),
            "features": features,
            "values": values,
        }
        return Poisoned(
            x=rows.reshape(shape),
            y=labels,
            poisoned=mask,
            target_class=target,
            trigger="feature-trigger",
            params=params,
        )

    def success_rate(
        self, predict: Predict, poisoned: Poisoned, x_test: npt.ArrayLike, y_test: npt.ArrayLike
    ) -> float:
        """Share of the clean test rows not of the target class that the trigger sends there."""
        self._check_result(poisoned, "feature-trigger")
        x = np.asarray(x_test)
        labels = _check_labels(y_test, x.shape[0] if x.ndim else -1, _OWNER)
        keep = labels != poisoned.target_class
        if not keep.any():
            raise invalid_parameter(
                "y_test", _OWNER, "at least one label other than the target class", "none"
            )
        triggered = apply_feature_trigger(x[keep], **poisoned.params)
        return float(np.mean(_labels_of(predict, triggered) == poisoned.target_class))
