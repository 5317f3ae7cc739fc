"""Detectors of poisoned training samples, working on learned representations.

Both detectors take representations ``features`` ``(n, d)`` of the training samples (typically the
penultimate-layer activations of a model trained on the suspect data, see :func:`activations`) and
their labels ``y`` ``(n,)``, and return a :class:`Suspicion`: one score per sample (higher is more
suspicious), a boolean flag per sample and a per-class summary. They work class by class, because a
backdoor or a clean-label poison hides inside the class it is labelled with.

Classes with fewer than ``min_class_size`` samples are skipped (score 0, nothing flagged) and say so
in ``per_class[c]["skipped"]`` rather than failing the whole run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import silhouette_score
from threadpoolctl import threadpool_limits
from torch import nn

from mlarmor._validation import check_float, check_int, check_seed
from mlarmor.errors import InvalidParameterError, invalid_parameter

__all__ = ["Suspicion", "activation_clustering", "activations", "spectral_signatures"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Silhouette is quadratic in the class size; above this many samples it is estimated on a sample.
_SILHOUETTE_SAMPLE = 2000


@dataclass(frozen=True, eq=False)
class Suspicion:
    """Per-sample suspicion scores and flags from a poisoned-sample detector.

    Attributes:
        scores: ``(n,)`` floats, higher is more suspicious; how they compare across classes depends
            on ``method`` (see the detector's docstring).
        flagged: ``(n,)`` booleans, the samples the detector would remove.
        method: ``"spectral_signatures"`` or ``"activation_clustering"``.
        per_class: Summary per class label: ``n`` samples, ``flagged`` count, ``clean_class`` (the
            detector's verdict on the class, ``None`` when the method makes none) and
            method-specific figures; ``skipped`` holds the reason when a class was not examined.
    """

    scores: FloatArray
    flagged: BoolArray
    method: str
    per_class: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def n_flagged(self) -> int:
        """Number of flagged samples."""
        return int(self.flagged.sum())

    def suspicious_indices(self) -> npt.NDArray[np.intp]:
        """Indices of the flagged samples, the highest score first (ties by index)."""
        idx = np.flatnonzero(self.flagged)
        order = np.argsort(-self.scores[idx], kind="stable")
        return idx[order]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary: method, counts, per-class figures and the flagged indices."""
        return {
            "method": self.method,
            "n": len(self.scores),
            "n_flagged": self.n_flagged,
            "suspicious_indices": [int(i) for i in self.suspicious_indices()],
            "per_class": {str(c): dict(info) for c, info in self.per_class.items()},
        }


def _check_inputs(features: object, y: object, owner: str) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    try:
        x = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise invalid_parameter(
            "features", owner, "a 2-D array of numbers (n, d)", type(features).__name__
        ) from e
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise invalid_parameter("features", owner, "a non-empty 2-D array (n, d)", f"shape {x.shape}")
    if not np.isfinite(x).all():
        raise invalid_parameter(
            "features",
            owner,
            "finite numbers (no NaN or inf)",
            f"{int((~np.isfinite(x)).sum())} non-finite values",
        )
    labels = np.asarray(y)
    if labels.ndim != 1 or len(labels) != len(x):
        raise invalid_parameter(
            "y", owner, f"a 1-D array of {len(x)} labels, one per row of features", f"shape {labels.shape}"
        )
    if labels.dtype.kind not in "iu":
        if labels.dtype.kind == "f" and np.isfinite(labels).all() and (labels == np.round(labels)).all():
            labels = labels.astype(np.int64)
        else:
            raise invalid_parameter("y", owner, "integer class labels", f"dtype {labels.dtype}")
    return x, labels.astype(np.int64)


def _skip(n_c: int, min_class_size: int) -> dict[str, Any]:
    return {
        "n": n_c,
        "flagged": 0,
        "clean_class": None,
        "skipped": f"only {n_c} samples, fewer than min_class_size={min_class_size}",
    }


def _eligible_classes(
    labels: npt.NDArray[np.int64], min_size: int, per_class: dict[int, dict[str, Any]]
) -> Iterator[tuple[int, npt.NDArray[np.intp]]]:
    """Each class of at least ``min_size`` samples as (class, indices); the rest are marked skipped."""
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        if len(idx) < min_size:
            per_class[int(c)] = _skip(len(idx), min_size)
            continue
        yield int(c), idx


def spectral_signatures(
    features: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    expected_fraction: float = 0.05,
    min_class_size: int = 10,
) -> Suspicion:
    """Score samples by their outlier score along the top singular direction of their class.

    For each class ``c`` with representations ``R_c`` ``(n_c, d)``: centre them (``R_c - mean``; the
    mean must go, else the top singular vector points at the class mean and measures the norm
    of the samples rather than their deviation), take the top right singular vector ``v`` of the
    centred matrix and score each sample ``((r - mean) . v) ** 2``. The ``ceil(1.5 *
    expected_fraction * n_c)`` highest scores of each class are flagged, as in the paper.

    The method makes no verdict on whether a class is poisoned: it flags that many samples in
    every class (``per_class[c]["clean_class"]`` is ``None``), so on clean classes about ``1.5 *
    expected_fraction`` of the samples are false flags by construction. Scores are on the scale of
    each class's representations; compare them within a class, or use ``flagged``.

    Reference:
        Tran, Li, Madry. "Spectral Signatures in Backdoor Attacks", NeurIPS 2018.
        https://arxiv.org/abs/1811.00636

    Threat model:
        Poisoned samples (e.g. backdoor triggers) labelled as the target class leave a signal in
        the learned representation that dominates the class's covariance; works best when they are
        a minority (a few to ~30%) of their class.

    Args:
        features: Representations ``(n, d)``, finite floats.
        y: Integer labels ``(n,)``.
        expected_fraction: Upper estimate of the poisoned fraction of a class, in ``(0, 0.5)``.
        min_class_size: Classes with fewer samples are skipped, at least 2.

    Returns:
        A :class:`Suspicion` with ``method="spectral_signatures"``.

    Raises:
        InvalidParameterError: For arrays of the wrong shape, non-finite features, non-integer
            labels or a parameter out of its range.
    """
    owner = "spectral_signatures"
    x, labels = _check_inputs(features, y, owner)
    fraction = check_float(
        expected_fraction, "expected_fraction", owner, low=0.0, high=0.5, low_open=True, high_open=True
    )
    min_size = check_int(min_class_size, "min_class_size", owner, low=2)
    scores = np.zeros(len(x))
    flagged = np.zeros(len(x), dtype=bool)
    per_class: dict[int, dict[str, Any]] = {}
    for c, idx in _eligible_classes(labels, min_size, per_class):
        n_c = len(idx)
        centred = x[idx] - x[idx].mean(axis=0)
        _, s, vt = np.linalg.svd(centred, full_matrices=False)
        class_scores = (centred @ vt[0]) ** 2
        k = min(math.ceil(1.5 * fraction * n_c), n_c - 1)
        top = idx[np.argsort(-class_scores, kind="stable")[:k]]
        scores[idx] = class_scores
        flagged[top] = True
        total = float((s**2).sum())
        per_class[int(c)] = {
            "n": n_c,
            "flagged": k,
            "clean_class": None,
            "threshold": float(class_scores[np.isin(idx, top)].min()) if k else float("inf"),
            "top_singular_share": float(s[0] ** 2 / total) if total > 0 else 0.0,
        }
    return Suspicion(scores=scores, flagged=flagged, method=owner, per_class=per_class)


def activation_clustering(
    features: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    n_components: int = 10,
    size_threshold: float = 0.35,
    silhouette_threshold: float = 0.10,
    seed: int = 0,
    min_class_size: int = 10,
) -> Suspicion:
    """Split each class in two clusters and flag the small one when the split is real.

    For each class: centre its representations, project them on their top ``n_components``
    principal directions (the paper uses ICA; PCA keeps the same directions of largest spread
    and is deterministic), run 2-means. The class is judged poisoned when the smaller cluster
    holds less than ``size_threshold`` of the class *and* the silhouette score of the split is above
    ``silhouette_threshold``; a clean class splits into two halves of similar size or into
    clusters that overlap, so nothing in it is flagged. Every sample of a poisoned class's small
    cluster is flagged.

    Scores rank samples across the whole set: ``score = flagged + (1 - f) * d_big / (d_big +
    d_small)``, where ``f`` is the relative size of the class's smaller cluster and ``d_big``,
    ``d_small`` are the sample's distances to the two centroids in the reduced space. Flagged
    samples thus score in ``[1.5 - size_threshold, 2]`` and all others below 1; within each group,
    samples nearer the small cluster of a lopsided split rank higher.

    Reference:
        Chen et al. "Detecting Backdoor Attacks on Deep Neural Networks by Activation
        Clustering", 2018. https://arxiv.org/abs/1811.03728

    Threat model:
        Poisoned samples labelled as a target class are recognised by a different feature (the
        trigger) than its clean samples, so their representations form a separate, smaller
        cluster; a poisoned fraction above ``size_threshold`` of the class goes unnoticed.

    Args:
        features: Representations ``(n, d)``, finite floats.
        y: Integer labels ``(n,)``.
        n_components: Dimensions kept before clustering, at least 1 (capped by ``d`` and ``n_c - 1``).
        size_threshold: Largest relative size of a poisoned cluster, in ``(0, 0.5]``.
        silhouette_threshold: Smallest silhouette score of a real split, in ``(-1, 1)``.
        seed: Seed of the k-means initialisation (and of the silhouette sample for big classes).
        min_class_size: Classes with fewer samples are skipped, at least 4.

    Returns:
        A :class:`Suspicion` with ``method="activation_clustering"``.

    Raises:
        InvalidParameterError: For arrays of the wrong shape, non-finite features, non-integer
            labels or a parameter out of its range.
    """
    owner = "activation_clustering"
    x, labels = _check_inputs(features, y, owner)
    k_dims = check_int(n_components, "n_components", owner)
    size_thr = check_float(size_threshold, "size_threshold", owner, low=0.0, high=0.5, low_open=True)
    sil_thr = check_float(
        silhouette_threshold, "silhouette_threshold", owner, low=-1.0, high=1.0, low_open=True, high_open=True
    )
    seed = check_seed(seed, owner)
    min_size = check_int(min_class_size, "min_class_size", owner, low=4)
    scores = np.zeros(len(x))
    flagged = np.zeros(len(x), dtype=bool)
    per_class: dict[int, dict[str, Any]] = {}
    for c, idx in _eligible_classes(labels, min_size, per_class):
        n_c = len(idx)
        centred = x[idx] - x[idx].mean(axis=0)
        u, s, _ = np.linalg.svd(centred, full_matrices=False)
        dims = min(k_dims, n_c - 1, int((s > s[0] * 1e-10).sum()) if s[0] > 0 else 0)
        info: dict[str, Any] = {"n": n_c, "flagged": 0, "clean_class": True}
        per_class[int(c)] = info
        if dims == 0:
            info["note"] = "all representations are identical"
            continue
        reduced = u[:, :dims] * s[:dims]
        # 2-means on a <= n_components-dim projection is cheap; OpenMP threads cost more than they
        # save here and oversubscribe machines where the process may use few cores.
        with threadpool_limits(limits=1, user_api="openmp"):
            km = KMeans(n_clusters=2, n_init=10, random_state=seed).fit(reduced)
        assign = km.labels_
        sizes = np.bincount(assign, minlength=2)
        if sizes.min() == 0:
            info["note"] = "2-means found a single cluster"
            continue
        small = int(np.argmin(sizes))
        rel = float(sizes[small] / n_c)
        sil = float(
            silhouette_score(reduced, assign, sample_size=min(n_c, _SILHOUETTE_SAMPLE), random_state=seed)
        )
        dist = np.linalg.norm(reduced[:, None, :] - km.cluster_centers_[None, :, :], axis=2)
        d_small, d_big = dist[:, small], dist[:, 1 - small]
        denom = d_big + d_small
        near_small = np.divide(d_big, denom, out=np.full(n_c, 0.5), where=denom > 0)
        poisoned = rel < size_thr and sil > sil_thr
        in_small = assign == small
        scores[idx] = (1.0 - rel) * near_small + (in_small if poisoned else 0.0)
        if poisoned:
            flagged[idx[in_small]] = True
        info.update(
            flagged=int(in_small.sum()) if poisoned else 0,
            clean_class=not poisoned,
            small_cluster_fraction=rel,
            silhouette=sil,
            n_components=dims,
        )
    return Suspicion(scores=scores, flagged=flagged, method=owner, per_class=per_class)


def _penultimate(model: nn.Module) -> tuple[str, nn.Linear]:
    last: tuple[str, nn.Linear] | None = None
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear):
            last = (name, module)
    if last is None:
        raise InvalidParameterError(
            "The 'model' parameter of activations must contain an nn.Linear layer when 'layer' is "
            "None (its input is the default representation). Got a model without one; name the "
            f"layer to read instead, one of {_layer_names(model)}."
        )
    return last


def _layer_names(model: nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules() if name]


def activations(
    model: nn.Module,
    x: npt.ArrayLike,
    *,
    layer: str | None = None,
    batch_size: int = 256,
) -> npt.NDArray[np.float32]:
    """Representations of ``x`` read from inside ``model`` with a forward hook.

    Runs the model in eval mode without gradients, in batches on the model's device, restores its
    training mode afterwards and flattens each sample's representation.

    Args:
        model: A PyTorch module.
        x: Inputs ``(n, *input_shape)`` the model accepts (cast to its floating dtype).
        layer: Name of a submodule (as in ``model.named_modules()``) whose *output* is read;
            ``None`` reads the *input* of the last ``nn.Linear``, the penultimate representation.
        batch_size: Samples per forward pass, at least 1.

    Returns:
        A float32 array ``(n, d)``.

    Raises:
        InvalidParameterError: For an unknown layer name (the message lists the valid ones), a
            model without ``nn.Linear`` when ``layer`` is ``None``, or inputs the model refuses.
    """
    owner = "activations"
    if not isinstance(model, nn.Module):
        raise invalid_parameter("model", owner, "a torch.nn.Module", type(model).__name__)
    batch = check_int(batch_size, "batch_size", owner)
    try:
        xs = np.asarray(x, dtype=np.float32)
    except (TypeError, ValueError) as e:
        raise invalid_parameter("x", owner, "an array of numbers", type(x).__name__) from e
    if xs.ndim < 2 or len(xs) == 0:
        raise invalid_parameter("x", owner, "a non-empty array (n, *input_shape)", f"shape {xs.shape}")

    read_input = layer is None
    if layer is None:
        _, target = _penultimate(model)
    else:
        modules = dict(model.named_modules())
        if not isinstance(layer, str) or not layer or layer not in modules:
            raise invalid_parameter("layer", owner, f"one of {_layer_names(model)}", layer)
        target = modules[layer]

    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    captured: list[torch.Tensor] = []

    def hook(_module: nn.Module, inputs: tuple[Any, ...], output: Any) -> None:
        value = inputs[0] if read_input else output
        if not isinstance(value, torch.Tensor):
            raise InvalidParameterError(
                f"The 'layer' parameter of {owner} must name a module whose output is a tensor. "
                f"Got {layer!r}, which returns {type(value).__name__}; pick another layer."
            )
        captured.append(value.detach().reshape(len(value), -1).to("cpu", torch.float32))

    was_training = model.training
    handle = target.register_forward_hook(hook)
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(xs), batch):
                xb = torch.as_tensor(np.array(xs[start : start + batch]), device=device, dtype=dtype)
                try:
                    model(xb)
                except RuntimeError as e:
                    raise InvalidParameterError(
                        f"The 'x' parameter of {owner} must hold inputs the model accepts. Got "
                        f"samples of shape {tuple(xs.shape[1:])}, which the model refused: {e}"
                    ) from e
    finally:
        handle.remove()
        model.train(was_training)
    if len(captured) != math.ceil(len(xs) / batch):
        raise InvalidParameterError(
            f"The 'layer' parameter of {owner} must name a module that runs once per forward pass. "
            f"Got {layer!r}, which ran {len(captured)} times over {math.ceil(len(xs) / batch)} batches."
        )
    return torch.cat(captured).numpy()
