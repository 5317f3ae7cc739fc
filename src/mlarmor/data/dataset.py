"""The :class:`Dataset` every attack and defense reads, with the constraints attacks must respect.

A dataset is the arrays ``x`` (float32, ``(n, *input_shape)``) and ``y`` (int64 class indices,
``(n,)``) plus what makes an adversarial example *valid*:

- ``bounds``: the global input range (``(0, 1)`` for images scaled to [0, 1]);
- ``feature_low`` / ``feature_high``: per-feature ranges for tabular data, intersected with ``bounds``;
- ``immutable``: features an attacker cannot change (age, a sensor's serial number...);
- ``integer``: features that must stay whole numbers (counts, category codes).

Feature indices are *flat*: they index ``x.reshape(n, -1)``, so pixel ``(c, i, j)`` of a ``(C, H, W)``
image is ``c * H * W + i * W + j``. :meth:`Dataset.project` enforces every constraint on candidate
adversarial examples, for numpy arrays and torch tensors alike.

Example:
    >>> import numpy as np
    >>> from mlarmor.data import Dataset
    >>> ds = Dataset(x=np.zeros((4, 3)), y=np.array([0, 1, 0, 1]), immutable=(0,), integer=(2,))
    >>> ds.project(np.full((4, 3), 0.6), ds.x)[0].tolist()
    [0.0, 0.6, 1.0]
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, overload

import numpy as np
import numpy.typing as npt

from mlarmor._validation import check_bounds, check_fraction, check_int, check_seed
from mlarmor.errors import InvalidParameterError, invalid_parameter

from ._constraints import Constraints, as_like
from ._scaling import FeatureScaling
from ._validate import (
    FloatArray,
    IntArray,
    encode_labels,
    feature_indices,
    numeric_inputs,
    readonly,
)

if TYPE_CHECKING:
    import torch

__all__ = ["Dataset", "FeatureScaling"]

_OWNER = "Dataset"


@dataclass(frozen=True, kw_only=True, slots=True, eq=False)
class Dataset:
    """Inputs, labels and the constraints that valid adversarial examples satisfy.

    Arrays are converted on construction (``x`` to float32, ``y`` to int64) and stored read-only;
    construction checks everything an attack relies on and raises
    :class:`~mlarmor.errors.InvalidParameterError` saying what is wrong and how to fix it.

    Attributes:
        x: Inputs, shape ``(n, *input_shape)``, finite, within ``bounds`` and the feature ranges.
        y: Class indices ``0..C-1``, shape ``(n,)``.
        name: Shown in messages and reports.
        bounds: Global input range ``(low, high)``.
        feature_low: Optional per-feature lower limits, shape ``(num_features,)`` or ``input_shape``
            (``-inf`` for none); stored flat.
        feature_high: Optional per-feature upper limits, like ``feature_low``.
        immutable: Flat indices of features attacks must not change.
        integer: Flat indices of features that must stay integral — in raw units: through ``scaling``
            when it is set.
        feature_names: Optional name of each flat feature.
        class_names: Name of each class; defaults to ``"0".."C-1"`` with ``C = max(y) + 1``.
        scaling: How raw features were scaled to ``bounds``, when the loader scaled them.

    Example:
        >>> import numpy as np
        >>> ds = Dataset(x=np.random.default_rng(0).random((10, 1, 2, 2)), y=np.arange(10) % 2)
        >>> ds.n, ds.input_shape, ds.num_classes
        (10, (1, 2, 2), 2)
    """

    x: FloatArray
    y: IntArray
    name: str = "dataset"
    bounds: tuple[float, float] = (0.0, 1.0)
    feature_low: FloatArray | None = None
    feature_high: FloatArray | None = None
    immutable: tuple[int, ...] = ()
    integer: tuple[int, ...] = ()
    feature_names: tuple[str, ...] | None = None
    class_names: tuple[str, ...] | None = None
    scaling: FeatureScaling | None = None
    _constraints: Constraints = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str):
            raise invalid_parameter("name", _OWNER, "a string", self.name)
        what = repr(self.name)
        low, high = check_bounds(self.bounds, _OWNER)
        x = numeric_inputs(self.x, what=what, error=InvalidParameterError)
        y, _ = encode_labels(self.y, n=len(x), what=what, error=InvalidParameterError, allow_strings=False)
        d = math.prod(x.shape[1:])
        set_ = object.__setattr__
        set_(self, "bounds", (low, high))
        set_(self, "x", readonly(x))
        set_(self, "y", readonly(y))

        if self.feature_names is not None:
            names = tuple(str(n) for n in self.feature_names)
            if len(names) != d:
                raise invalid_parameter(
                    "feature_names", _OWNER, f"{d} names (one per flat feature)", len(names)
                )
            set_(self, "feature_names", names)
        class_names = self._checked_class_names(y)
        set_(self, "class_names", class_names)
        for param in ("immutable", "integer"):
            resolved = feature_indices(
                getattr(self, param),
                num_features=d,
                feature_names=self.feature_names,
                param=param,
                owner=_OWNER,
            )
            set_(self, param, resolved)
        if self.scaling is not None and (
            not isinstance(self.scaling, FeatureScaling) or self.scaling.data_min.shape != (d,)
        ):
            raise invalid_parameter("scaling", _OWNER, f"a FeatureScaling over {d} features", self.scaling)
        constraints, feature_low, feature_high = Constraints.build(
            name=self.name,
            input_shape=self.input_shape,
            bounds=(low, high),
            feature_low=self.feature_low,
            feature_high=self.feature_high,
            immutable=self.immutable,
            integer=self.integer,
            feature_names=self.feature_names,
            grid=self.scaling.affine() if self.scaling is not None and self.integer else None,
        )
        constraints.check_inputs(x)
        set_(self, "feature_low", feature_low)
        set_(self, "feature_high", feature_high)
        set_(self, "_constraints", constraints)

    def _checked_class_names(self, y: IntArray) -> tuple[str, ...]:
        top = int(y.max())
        if self.class_names is None:
            return tuple(str(i) for i in range(top + 1))
        if isinstance(self.class_names, str):
            raise invalid_parameter("class_names", _OWNER, "a sequence of strings", self.class_names)
        names = tuple(str(n) for n in self.class_names)
        if len(names) <= top:
            raise InvalidParameterError(
                f"The dataset {self.name!r} has labels up to {top} but only {len(names)} class name(s). "
                f"Give one name per class 0..{top}, or leave class_names unset."
            )
        return names

    # ------------------------------------------------------------------ derived properties

    def __repr__(self) -> str:
        parts = [
            f"name={self.name!r}",
            f"n={self.n}",
            f"input_shape={self.input_shape}",
            f"num_classes={self.num_classes}",
            f"bounds={self.bounds}",
        ]
        if self.feature_low is not None or self.feature_high is not None:
            parts.append("feature_ranges=True")
        parts += [f"{k}={v}" for k, v in (("immutable", self.immutable), ("integer", self.integer)) if v]
        return f"Dataset({', '.join(parts)})"

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.x.shape[0])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input (without the batch dimension)."""
        return tuple(int(s) for s in self.x.shape[1:])

    @property
    def num_features(self) -> int:
        """Number of flat features of one input."""
        return math.prod(self.input_shape)

    @property
    def num_classes(self) -> int:
        """Number of classes: ``len(class_names)`` (at least ``max(y) + 1``)."""
        return len(self.class_names) if self.class_names is not None else int(self.y.max()) + 1

    @property
    def class_counts(self) -> IntArray:
        """Number of samples per class, shape ``(num_classes,)``."""
        return np.bincount(self.y, minlength=self.num_classes).astype(np.int64)

    @property
    def constrained(self) -> bool:
        """Whether anything beyond ``bounds`` constrains inputs (feature ranges, immutable, integer)."""
        return bool(
            self.immutable or self.integer or self.feature_low is not None or self.feature_high is not None
        )

    @property
    def feature_limits(self) -> tuple[FloatArray, FloatArray]:
        """Effective per-feature ``(low, high)`` limits, shape ``input_shape``: bounds ∩ feature range."""
        shape = self.input_shape
        return (
            readonly(self._constraints.low.astype(np.float32).reshape(shape)),
            readonly(self._constraints.high.astype(np.float32).reshape(shape)),
        )

    # ------------------------------------------------------------------ new datasets from this one

    def subset(self, indices: npt.ArrayLike) -> Dataset:
        """The samples at ``indices`` (integer indices in ``[0, n)`` or a boolean mask of length ``n``).

        Constraints, names and ``num_classes`` carry over.

        Raises:
            InvalidParameterError: For indices out of range, a mask of the wrong length or no sample.
        """
        idx = np.asarray(indices)
        if idx.dtype.kind == "b":
            if idx.shape != (self.n,):
                raise invalid_parameter(
                    "indices", "Dataset.subset", f"a boolean mask of shape ({self.n},)", idx.shape
                )
            idx = np.flatnonzero(idx)
        elif idx.dtype.kind not in "iu" and idx.size:
            raise invalid_parameter(
                "indices", "Dataset.subset", "integer indices or a boolean mask", idx.dtype
            )
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size == 0:
            raise InvalidParameterError(
                f"Dataset.subset of {self.name!r} selected no sample. Select at least one index."
            )
        bad = (idx < 0) | (idx >= self.n)
        if bad.any():
            raise invalid_parameter(
                "indices", "Dataset.subset", f"indices in [0, {self.n})", int(idx[np.flatnonzero(bad)[0]])
            )
        return replace(self, x=self.x[idx], y=self.y[idx])

    def split(self, test_fraction: float = 0.25, seed: int = 0) -> tuple[Dataset, Dataset]:
        """Stratified ``(train, test)`` split; reproducible under ``seed``.

        Each class contributes to the test part in proportion to its size (largest remainders get the
        leftover samples); both parts keep the original sample order.

        Raises:
            InvalidParameterError: When ``test_fraction`` is not in (0, 1) or there are under 2 samples.
        """
        fraction = check_fraction(test_fraction, "test_fraction", "Dataset.split")
        rng = np.random.default_rng(check_seed(seed, "Dataset.split"))
        if self.n < 2:
            raise InvalidParameterError(
                f"Dataset.split needs at least 2 samples; {self.name!r} has {self.n}."
            )
        n_test = min(max(round(fraction * self.n), 1), self.n - 1)
        classes, counts = np.unique(self.y, return_counts=True)
        quota = counts * (n_test / self.n)
        take = np.floor(quota).astype(np.int64)
        order = np.lexsort((rng.random(len(classes)), -(quota - take)))
        take[order[: n_test - int(take.sum())]] += 1
        test_parts = [
            rng.permutation(np.flatnonzero(self.y == c))[:k] for c, k in zip(classes, take, strict=True)
        ]
        is_test = np.zeros(self.n, dtype=bool)
        is_test[np.concatenate(test_parts)] = True
        return self.subset(~is_test), self.subset(is_test)

    # ------------------------------------------------------------------ checks and constraints

    def check_against(
        self,
        input_shape: Sequence[int] | None,
        num_classes: int | None,
        *,
        bounds: tuple[float, float] | None = None,
    ) -> None:
        """Check that a model with this input shape, class count and bounds can take this dataset.

        ``None`` skips a check (a model whose input shape is unknown, say).

        Raises:
            InvalidParameterError: Saying what the model expects and what the dataset has.
        """
        if input_shape is not None and tuple(int(s) for s in input_shape) != self.input_shape:
            expected = tuple(int(s) for s in input_shape)
            hint = (
                f" Both hold {self.num_features} values: reshape x to (n, {', '.join(map(str, expected))})."
                if math.prod(expected) == self.num_features
                else " Check that the data and the model belong together."
            )
            raise InvalidParameterError(
                f"The model expects inputs of shape {expected} but the dataset {self.name!r} has inputs "
                f"of shape {self.input_shape}.{hint}"
            )
        if num_classes is not None:
            num_classes = check_int(num_classes, "num_classes", "Dataset.check_against")
            if self.num_classes > num_classes:
                raise InvalidParameterError(
                    f"The model outputs {num_classes} classes but the dataset {self.name!r} has "
                    f"{self.num_classes} (labels up to {int(self.y.max())}). Labels must lie in "
                    f"0..{num_classes - 1}: check --classes and the label encoding."
                )
        if bounds is not None:
            low, high = check_bounds(bounds, "Dataset.check_against")
            x_min, x_max = float(self.x.min()), float(self.x.max())
            if x_min < low or x_max > high:
                raise InvalidParameterError(
                    f"The model accepts inputs in [{low}, {high}] but the dataset {self.name!r} spans "
                    f"[{x_min:.7g}, {x_max:.7g}]. Rescale the data or declare the model's bounds (--bounds)."
                )

    @overload
    def project(self, x_adv: torch.Tensor, x_orig: torch.Tensor | npt.ArrayLike) -> torch.Tensor: ...
    @overload
    def project(self, x_adv: npt.ArrayLike, x_orig: npt.ArrayLike) -> npt.NDArray[np.floating]: ...

    def project(self, x_adv: Any, x_orig: Any) -> Any:
        """Enforce the constraints on candidate adversarial examples.

        In order: round integer features, clip to ``bounds`` ∩ feature ranges (integer features to
        the integers inside), restore immutable features from ``x_orig``. The result is idempotent
        under ``project`` and identical for numpy and torch inputs.

        Args:
            x_adv: Candidates, shape ``(n, *input_shape)`` or ``input_shape``; a numpy array (float
                dtypes kept, others become float32) or a floating torch tensor. A tensor stays on its
                device and dtype, and gradients flow through the clipping and the mutable features.
            x_orig: The clean inputs the candidates came from, same shape; converted to ``x_adv``'s
                kind, device and dtype.

        Returns:
            A new array or tensor of ``x_adv``'s shape. NaN values pass through unchanged.

        Raises:
            InvalidParameterError: For shapes that do not match the dataset or each other.
        """
        torch_mod = sys.modules.get("torch")
        if torch_mod is not None and isinstance(x_adv, torch_mod.Tensor):
            return self._constraints.project_torch(x_adv, x_orig)
        return self._constraints.project_numpy(x_adv, x_orig)

    @overload
    def mutable_mask(self, like: torch.Tensor) -> torch.Tensor: ...
    @overload
    def mutable_mask(self, like: npt.NDArray[Any] | None = None) -> npt.NDArray[np.floating]: ...

    def mutable_mask(self, like: Any = None) -> Any:
        """1 where attacks may change a feature, 0 on immutable features; shape ``input_shape``.

        Multiply a perturbation by it (it broadcasts over the batch). Returned as a tensor on
        ``like``'s device and dtype when ``like`` is a tensor, else as an array of ``like``'s dtype
        (float32 without ``like``).
        """
        _, frozen = self._constraints.masks()
        return as_like(~frozen, like, np.float32)

    @overload
    def integer_mask(self, like: torch.Tensor) -> torch.Tensor: ...
    @overload
    def integer_mask(self, like: npt.NDArray[Any] | None = None) -> npt.NDArray[Any]: ...

    def integer_mask(self, like: Any = None) -> Any:
        """True (or 1 in ``like``'s dtype) on integer features; shape ``input_shape``."""
        integral, _ = self._constraints.masks()
        return as_like(integral, like, np.bool_)

    def integral_limits(self, low: Any, high: Any) -> tuple[Any, Any]:
        """The whole raw numbers nearest inside ``[low, high]``, elementwise: ``(ceil(low), floor(high))``.

        In raw units (through ``scaling``), returned in the values' units; arrays or tensors of
        ``input_shape`` or ``(n, *input_shape)``. Meaningful on integer features only.
        """
        c = self._constraints
        ceil = np.ceil if isinstance(low, np.ndarray) else (lambda v: v.ceil())
        floor = np.floor if isinstance(high, np.ndarray) else (lambda v: v.floor())
        return c.from_grid(ceil(c.to_grid(low))), c.from_grid(floor(c.to_grid(high)))

    def as_tensors(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, y)`` as new torch tensors (``x`` float32 unless ``dtype``; ``y`` int64) on ``device``."""
        import torch

        x = torch.from_numpy(self.x.copy()).to(device=device, dtype=dtype or torch.float32)
        return x, torch.from_numpy(self.y.copy()).to(device=device)

    def feature_index(self, features: Sequence[int | str]) -> tuple[int, ...]:
        """Sorted flat indices of ``features`` given as indices or names (see ``feature_names``)."""
        return feature_indices(
            features,
            num_features=self.num_features,
            feature_names=self.feature_names,
            param="features",
            owner="Dataset.feature_index",
        )
