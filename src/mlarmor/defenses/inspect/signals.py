"""Per-sample signals of poisoned training data: losses, learning speed and trigger carriers.

Label consistency, the k-NN signal, is in :mod:`.neighbours`.

Each signal returns a :class:`~mlarmor.defenses.inspect.data.Suspicion` whose scores are on a scale
with a stated threshold (``per_class[c]["threshold"]`` and the ``threshold`` key of the method's
docstring), so :func:`~mlarmor.defenses.inspect.ensemble.inspect_data` can put them side by side.

Threat model:
    The attacker controls a share of the training rows (inputs and labels) but not training:
    dirty-label backdoors (a trigger stamped on inputs relabelled to a target class) and label
    flips. The defender holds the suspect training set and, for the model-based signals, a model
    trained on it or a way to train one. Clean-label poisons, whose labels agree with their
    content, evade the label-consistency and loss signals by construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from mlarmor._validation import check_int, check_positive, check_seed
from mlarmor.defenses.inspect.data import (
    BoolArray,
    FloatArray,
    Suspicion,
)
from mlarmor.errors import InvalidParameterError, invalid_parameter

__all__ = [
    "TrainFn",
    "learning_speed",
    "model_loss",
    "per_sample_loss",
    "retrainer",
    "robust_z",
    "trigger_carriers",
]

TrainFn = Callable[[npt.NDArray[np.float32], npt.NDArray[np.int64], int, int], nn.Module]
"""``train_fn(x, y, seed, epochs) -> model``: trains a *fresh* model on ``(x, y)``."""

# 1.4826 * MAD estimates a Gaussian's standard deviation; sqrt(pi / 2) * mean |dev| does too and
# stays positive when more than half the values tie (MAD = 0), e.g. many identical distances.
_MAD_TO_STD = 1.4826
_MEAN_AD_TO_STD = float(np.sqrt(np.pi / 2))
_EPS = 1e-12


def robust_z(values: npt.ArrayLike, groups: npt.ArrayLike | None = None) -> FloatArray:
    """Robust z-scores ``(v - median) / scale``, within each group when ``groups`` is given.

    ``scale`` is ``1.4826 * MAD``, or ``sqrt(pi/2) * mean |v - median|`` when that is larger (the MAD
    is 0 when more than half the values tie), floored at ``1e-12``. Poison is a minority of its
    group, so the median and MAD come from the clean bulk and the poison stands out in a tail
    (Iglewicz & Hoaglin's modified z-score; 3.5 is their outlier threshold).

    Args:
        values: Scores ``(n,)``.
        groups: Group label per score ``(n,)``, e.g. the class labels; ``None`` for one group.

    Returns:
        Float64 z-scores ``(n,)``.
    """
    v = np.asarray(values, dtype=np.float64)
    g = np.zeros(len(v), dtype=np.int64) if groups is None else np.asarray(groups)
    out = np.zeros(len(v))
    for c in np.unique(g):
        idx = g == c
        med = float(np.median(v[idx]))
        dev = np.abs(v[idx] - med)
        scale = max(_MAD_TO_STD * float(np.median(dev)), _MEAN_AD_TO_STD * float(dev.mean()), _EPS)
        out[idx] = (v[idx] - med) / scale
    return out


def _z_suspicion(z: FloatArray, labels: npt.NDArray[np.int64], threshold: float, method: str) -> Suspicion:
    flagged = z > threshold
    per_class = {
        int(c): {
            "n": int((labels == c).sum()),
            "flagged": int(flagged[labels == c].sum()),
            "clean_class": None,
            "threshold": threshold,
        }
        for c in np.unique(labels)
    }
    return Suspicion(scores=z, flagged=flagged, method=method, per_class=per_class)


def per_sample_loss(
    model: nn.Module, x: npt.ArrayLike, y: npt.ArrayLike, *, batch_size: int = 512
) -> FloatArray:
    """Cross-entropy of ``model``'s logits on each ``(x[i], y[i])``, in eval mode without gradients.

    Args:
        model: A module mapping ``(n, *input_shape)`` to ``(n, C)`` logits.
        x: Inputs ``(n, *input_shape)``.
        y: Integer labels ``(n,)`` in ``[0, C)``.
        batch_size: Samples per forward pass.

    Returns:
        Float64 losses ``(n,)``.

    Raises:
        InvalidParameterError: For inputs the model refuses or labels outside its classes.
    """
    owner = "per_sample_loss"
    xs = np.asarray(x, dtype=np.float32)
    ys = np.asarray(y, dtype=np.int64)
    param = next((p for p in model.parameters() if p.is_floating_point()), None)
    device = param.device if param is not None else torch.device("cpu")
    dtype = param.dtype if param is not None else torch.float32
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    try:
        with torch.no_grad():
            for start in range(0, len(xs), batch_size):
                xb = torch.as_tensor(np.array(xs[start : start + batch_size]), device=device, dtype=dtype)
                yb = torch.as_tensor(ys[start : start + batch_size], device=device)
                try:
                    logits = model(xb)
                except RuntimeError as e:
                    raise InvalidParameterError(
                        f"The 'x' parameter of {owner} must hold inputs the model accepts. Got "
                        f"samples of shape {tuple(xs.shape[1:])}, which the model refused: {e}"
                    ) from e
                if logits.dim() != 2 or int(yb.max()) >= logits.shape[1] or int(yb.min()) < 0:
                    raise invalid_parameter(
                        "y", owner, f"labels in [0, {logits.shape[-1]}), the model's classes", "others"
                    )
                out.append(F.cross_entropy(logits.float(), yb, reduction="none").cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy().astype(np.float64)


def model_loss(model: nn.Module, x: npt.ArrayLike, y: npt.ArrayLike, *, threshold: float = 3.5) -> Suspicion:
    """Flag samples whose loss under ``model`` is abnormally high for their labelled class.

    Scores are per-class robust z-scores (:func:`robust_z`) of ``sqrt(loss)``: a model that fits the
    clean majority of a class disagrees with a relabelled sample it could not memorise. Positive
    scores are multiplied by ``min(1, loss / ln 2)``, so only samples the model does not assign to
    their label (``p(y) < 1/2``) reach the threshold in full. Catches
    label flips; a backdoor the model has learned has *low* loss and goes unseen here.

    Reference:
        Arpit et al. "A Closer Look at Memorization in Deep Networks", ICML 2017 (clean patterns
        are fitted before noise). https://arxiv.org/abs/1706.05394

    Args:
        model: The model trained on the suspect data, ``(n, *input_shape)`` to ``(n, C)`` logits.
        x: Inputs ``(n, *input_shape)``.
        y: Integer labels ``(n,)``.
        threshold: Robust z above which a sample is flagged, > 0.

    Returns:
        A :class:`Suspicion` with ``method="model_loss"``.

    Raises:
        InvalidParameterError: For inputs the model refuses, labels outside its classes or a bad
            ``threshold``.
    """
    thr = check_positive(threshold, "threshold", "model_loss")
    labels = np.asarray(y, dtype=np.int64)
    loss = per_sample_loss(model, x, labels)
    # sqrt tames the tail of the loss without the spread that log gives to near-zero losses
    # (measured with 5% flipped digits: log found 16% of the flips, sqrt 94%, raw 96% but with
    # twice the false flags).
    z = robust_z(np.sqrt(loss), labels)
    # A loss outlier the model still classifies as labelled (p(y) > 1/2, loss < ln 2) is a hard
    # clean sample, not a wrong label: shrink its score below the threshold's reach in proportion.
    z = np.where(z > 0, z * np.minimum(1.0, loss / np.log(2.0)), z)
    return _z_suspicion(z, labels, thr, "model_loss")


def retrainer(model: nn.Module, *, lr: float = 1e-3, batch_size: int = 64) -> TrainFn:
    """A ``train_fn`` that trains a re-initialised copy of ``model``'s architecture.

    The copy is made with ``copy.deepcopy`` and every submodule with a ``reset_parameters`` method
    is reset under ``torch.manual_seed(seed)`` (the caller's random state is restored), then it is
    trained with :func:`mlarmor.models.fit_classifier`.

    Args:
        model: The architecture to copy; it is not changed.
        lr: Adam's learning rate.
        batch_size: Mini-batch size.

    Returns:
        ``train_fn(x, y, seed, epochs) -> model``.
    """
    import copy

    from mlarmor.models import fit_classifier

    def train(x: npt.NDArray[np.float32], y: npt.NDArray[np.int64], seed: int, epochs: int) -> nn.Module:
        fresh = copy.deepcopy(model)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for module in fresh.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
        return fit_classifier(fresh, x, y, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed)

    return train


def learning_speed(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    train_fn: TrainFn,
    epochs: int = 2,
    runs: int = 3,
    direction: Literal["fast", "slow"] = "fast",
    threshold: float = 3.5,
    seed: int = 0,
) -> Suspicion:
    """Flag samples learned abnormally fast (or slowly) within their class by a short training run.

    ``runs`` fresh models are trained for ``epochs`` each (``train_fn(x, y, seed + r, epochs)``);
    the per-class robust z-score of the mean ``sqrt(loss)`` is the score, negated for ``"fast"``.

    ``"fast"`` is Anti-Backdoor Learning's observation: a strong trigger is an easier feature than
    the class's content, so triggered samples reach a low loss first. It does not hold for every
    trigger: a 2x2 patch on 8x8 digits is learned *after* the digits (measured: triggered samples
    have a higher loss after 1-5 epochs), which makes ``"slow"`` the useful direction there, as
    for label flips. When the poison is a large share of its class (10% of the data put in one
    class is ~half of it), the class median moves and the signal fades; see the ensemble's
    ``label_consistency`` instead.

    Reference:
        Li et al. "Anti-Backdoor Learning: Training Clean Models on Poisoned Data", NeurIPS 2021.
        https://arxiv.org/abs/2110.11571

    Args:
        x: Inputs ``(n, *input_shape)``.
        y: Integer labels ``(n,)``.
        train_fn: Trains a fresh model, see :data:`TrainFn` and :func:`retrainer`.
        epochs: Epochs of each short run, at least 1.
        runs: Independent runs averaged, at least 1.
        direction: ``"fast"`` (low loss is suspicious) or ``"slow"`` (high loss is).
        threshold: Robust z above which a sample is flagged, > 0.
        seed: Seed of the first run.

    Returns:
        A :class:`Suspicion` with ``method="learning_speed"``.

    Raises:
        InvalidParameterError: For a parameter out of its range or a ``train_fn`` that does not
            return a module.
    """
    owner = "learning_speed"
    epochs = check_int(epochs, "epochs", owner)
    runs = check_int(runs, "runs", owner)
    seed = check_seed(seed, owner)
    thr = check_positive(threshold, "threshold", owner)
    if direction not in ("fast", "slow"):
        raise invalid_parameter("direction", owner, "'fast' or 'slow'", direction)
    if not callable(train_fn):
        raise invalid_parameter("train_fn", owner, "a callable train_fn(x, y, seed, epochs)", train_fn)
    xs = np.asarray(x, dtype=np.float32)
    labels = np.asarray(y, dtype=np.int64)
    root_loss = np.zeros(len(xs))
    for r in range(runs):
        fitted = train_fn(xs, labels, seed + r, epochs)
        if not isinstance(fitted, nn.Module):
            raise invalid_parameter("train_fn", owner, "a callable returning a torch.nn.Module", fitted)
        root_loss += np.sqrt(per_sample_loss(fitted, xs, labels)) / runs
    sign = -1.0 if direction == "fast" else 1.0
    result = _z_suspicion(robust_z(sign * root_loss, labels), labels, thr, owner)
    for info in result.per_class.values():
        info["direction"] = direction
    return result


def trigger_carriers(
    x: npt.ArrayLike,
    mask: npt.ArrayLike,
    pattern: npt.ArrayLike,
    *,
    threshold: float = 3.5,
    y: npt.ArrayLike | None = None,
) -> Suspicion:
    """Flag samples that carry a recovered trigger ``(mask, pattern)``.

    Each sample's distance to the trigger is the mask-weighted mean absolute difference
    ``sum(m * mean_c |x - p|) / sum(m)``; carriers match the pattern where the mask is on and sit
    near 0, the rest of the data at its typical distance. The score is the robust z-score of the
    *negated* distance over the whole set (:func:`robust_z`): a trigger is one feature shared
    across classes, so the reference is the set, not a class. Tolerates a noisy or partial
    mask/pattern, as long as it overlaps the real trigger more than the typical clean content.

    Reference:
        Wang et al. "Neural Cleanse: Identifying and Mitigating Backdoor Attacks in Neural
        Networks", IEEE S&P 2019 (the trigger ``(mask, pattern)`` this consumes).
        https://people.cs.uchicago.edu/~ravenben/publications/pdf/backdoor-sp19.pdf

    Args:
        x: Images ``(n, C, H, W)`` or ``(n, H, W)``.
        mask: ``(H, W)`` weights in ``[0, 1]``, not all 0.
        pattern: ``(C, H, W)``, ``(1, H, W)`` or ``(H, W)`` values on the scale of ``x``.
        threshold: Robust z above which a sample is flagged, > 0.
        y: Optional labels ``(n,)``, only for the per-class summary (which classes the carriers
            are labelled with: the backdoor's target).

    Returns:
        A :class:`Suspicion` with ``method="trigger_carriers"``; ``per_class`` holds one entry per
        label (or ``0`` for all samples when ``y`` is ``None``) with the mean ``distance``.

    Raises:
        InvalidParameterError: For shapes that do not fit, a mask outside ``[0, 1]`` or all 0, or
            non-finite values.
    """
    owner = "trigger_carriers"
    thr = check_positive(threshold, "threshold", owner)
    imgs = np.asarray(x, dtype=np.float64)
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    if imgs.ndim != 4 or len(imgs) == 0:
        raise invalid_parameter("x", owner, "images (n, C, H, W) or (n, H, W)", f"shape {imgs.shape}")
    h, w = imgs.shape[-2:]
    m = np.asarray(mask, dtype=np.float64)
    if m.ndim == 3 and m.shape[0] == 1:
        m = m[0]
    if m.shape != (h, w):
        raise invalid_parameter("mask", owner, f"an array of shape ({h}, {w})", f"shape {m.shape}")
    if not np.isfinite(m).all() or m.min() < 0 or m.max() > 1 or m.sum() <= 0:
        raise invalid_parameter("mask", owner, "weights in [0, 1], not all 0", "others")
    p = np.asarray(pattern, dtype=np.float64)
    if p.ndim == 2:
        p = p[None]
    if p.ndim != 3 or p.shape[-2:] != (h, w) or p.shape[0] not in (1, imgs.shape[1]):
        raise invalid_parameter(
            "pattern", owner, f"an array of shape ({imgs.shape[1]}, {h}, {w})", f"shape {p.shape}"
        )
    if not (np.isfinite(p).all() and np.isfinite(imgs).all()):
        raise invalid_parameter("x", owner, "finite values in x and pattern", "non-finite values")
    diff = np.abs(imgs - p[None]).mean(axis=1)
    distance = (diff * m).sum(axis=(1, 2)) / m.sum()
    scores = robust_z(-distance)
    flagged: BoolArray = scores > thr
    labels = np.zeros(len(imgs), dtype=np.int64) if y is None else np.asarray(y, dtype=np.int64)
    if labels.shape != (len(imgs),):
        raise invalid_parameter("y", owner, f"{len(imgs)} labels", f"shape {labels.shape}")
    per_class = {
        int(c): {
            "n": int((labels == c).sum()),
            "flagged": int(flagged[labels == c].sum()),
            "clean_class": None,
            "threshold": thr,
            "distance": float(distance[labels == c].mean()),
        }
        for c in np.unique(labels)
    }
    return Suspicion(scores=scores, flagged=flagged, method=owner, per_class=per_class)
