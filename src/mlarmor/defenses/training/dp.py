"""Differentially private training (DP-SGD with Opacus), with the privacy budget ε actually spent.

:func:`train_dp` trains the user's PyTorch classifier from scratch with DP-SGD: each step samples a
Poisson batch, clips every example's gradient to ``max_grad_norm`` and adds Gaussian noise whose
scale Opacus chooses so that the whole run spends at most ``epsilon`` at ``delta``. It returns the
trained plain ``nn.Module`` and the ε its accountant reports. :class:`DPMLPClassifier` is the same
for scikit-learn users: an estimator (``fit``/``predict_proba``, ``clone``-able, picklable) that
trains a torch MLP with :func:`train_dp`, so privacy audits can train reference models with it.

Example:
    >>> from mlarmor.data import load_dataset
    >>> from mlarmor.defenses.training.dp import train_dp
    >>> from mlarmor.models import digits_mlp
    >>> data = load_dataset("demo:digits")
    >>> result = train_dp(digits_mlp(), data.x, data.y, epsilon=1.0, epochs=5, lr=1e-2)  # doctest: +SKIP
    >>> result.epsilon <= 1.0  # doctest: +SKIP
    True
"""

from __future__ import annotations

import logging
import math
import secrets
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from torch import nn

from mlarmor._validation import (
    check_bounds,
    check_choice,
    check_fraction,
    check_int,
    check_positive,
    check_seed,
)
from mlarmor.data._validate import encode_labels, numeric_inputs
from mlarmor.errors import InvalidParameterError, NotFittedError, UnsupportedModelError, invalid_parameter
from mlarmor.models.zoo import check_device

__all__ = [
    "Accountant",
    "DPEpochRecord",
    "DPMLPClassifier",
    "DPOptimizer",
    "DPResult",
    "dp_incompatibilities",
    "train_dp",
]

logger = logging.getLogger(__name__)

Accountant = Literal["prv", "rdp", "gdp"]
"""Opacus' privacy accountants: PRV (tightest, the default), RDP (Rényi DP), GDP (Gaussian DP)."""
DPOptimizer = Literal["adam", "sgd"]

_OWNER = "train_dp"
_ACCOUNTANTS: tuple[Accountant, ...] = ("prv", "rdp", "gdp")
_OPTIMIZERS: tuple[DPOptimizer, ...] = ("adam", "sgd")
# Attributes Opacus' GradSampleModule and DPOptimizer hang on parameters; removed after training so
# the returned module pickles and saves like any other.
_OPACUS_ATTRS = ("grad_sample", "_forward_counter", "_current_grad_sample", "_norm_sample", "summed_grad")
# Opacus warnings that carry no information for this use: secure_mode is off on purpose (seeded,
# reproducible runs), full backward hooks fire on inputs without gradients, RDP orders at the edge.
_QUIET = (
    r"Secure RNG turned off",
    r"Full backward hook is firing",
    r"Optimal order is the largest alpha",
    r"Using a non-full backward hook",
)


@dataclass(frozen=True, slots=True)
class DPEpochRecord:
    """What one DP-SGD epoch did.

    These figures are computed on the private training batches and are **not** covered by the
    differential-privacy guarantee (the trained model is): keep them out of anything you publish.

    Attributes:
        epoch: Epoch index, from 0.
        loss: Mean cross-entropy over the epoch's sampled examples (before each step).
        accuracy: Accuracy on the epoch's sampled examples (model in train mode, before each step).
        samples: Examples Poisson sampling drew in the epoch (about the training-set size).
        seconds: Wall-clock time of the epoch.
    """

    epoch: int
    loss: float
    accuracy: float
    samples: int
    seconds: float


@dataclass(frozen=True, slots=True)
class DPResult:
    """The outcome of :func:`train_dp`.

    Attributes:
        model: The trained plain ``nn.Module`` (Opacus' wrapper removed), in eval mode. It is the
            caller's module, trained in place, unless layers had to be replaced (then a fixed copy).
        epsilon: The ε spent by the whole run, from the accountant, at ``delta``; at most the target
            up to the accountant's numerical tolerance (usually just below it).
        target_epsilon: The ε the noise was calibrated for.
        delta: δ of the guarantee.
        noise_multiplier: sigma, the noise standard deviation as a multiple of ``max_grad_norm``.
        max_grad_norm: The per-example gradient clipping norm ``C``.
        epochs: Passes over the data.
        steps: Optimiser steps taken (``epochs / sample_rate``).
        sample_rate: Probability that an example is in a given batch (Poisson sampling).
        accountant: ``"prv"``, ``"rdp"`` or ``"gdp"``.
        replaced_layers: Layers replaced to make the model DP-compatible (e.g. BatchNorm became
            GroupNorm), as ``"name: Old -> New"``; empty when none was.
        history: One :class:`DPEpochRecord` per epoch.
        seconds: Wall-clock time of the whole call.
    """

    model: nn.Module
    epsilon: float
    target_epsilon: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    epochs: int
    steps: int
    sample_rate: float
    accountant: str
    replaced_layers: tuple[str, ...]
    history: tuple[DPEpochRecord, ...]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """Everything but the model, as JSON-ready values (for reports)."""
        return {
            "epsilon_spent": self.epsilon,
            "target_epsilon": self.target_epsilon,
            "delta": self.delta,
            "noise_multiplier": self.noise_multiplier,
            "max_grad_norm": self.max_grad_norm,
            "epochs": self.epochs,
            "steps": self.steps,
            "sample_rate": self.sample_rate,
            "accountant": self.accountant,
            "replaced_layers": list(self.replaced_layers),
            "history": [
                {
                    "epoch": r.epoch,
                    "loss": r.loss,
                    "accuracy": r.accuracy,
                    "samples": r.samples,
                    "seconds": r.seconds,
                }
                for r in self.history
            ],
            "seconds": self.seconds,
        }


def dp_incompatibilities(model: nn.Module) -> list[str]:
    """Why Opacus cannot train ``model`` as it is: one line per offending layer (empty when it can).

    BatchNorm mixes the examples of a batch, so per-example gradients (and DP-SGD) are undefined for
    it; :func:`train_dp` replaces it with GroupNorm. Other layers Opacus' validators reject, and
    trainable layers with buffers (state that is not privatised), are reported too.

    Args:
        model: The module to check (its train/eval mode does not matter).

    Returns:
        Lines such as ``"2 (BatchNorm1d): BatchNorm cannot support training with differential privacy"``.
    """
    from opacus.utils.module_utils import trainable_modules
    from opacus.validators import ModuleValidator

    problems: list[str] = []
    for name, layer in trainable_modules(model):
        where = f"{name or 'the model'} ({type(layer).__name__})"
        check = ModuleValidator.VALIDATORS.get(type(layer))
        errors = [str(e) for e in check(layer)] if check is not None else []
        if not errors and any(True for _ in layer.buffers()):
            errors = ["a trainable layer with buffers, which DP-SGD does not privatise"]
        # Opacus' messages run to a paragraph; the first sentence says what is wrong.
        problems.extend(f"{where}: {e.split('. ')[0].strip().rstrip('.')}" for e in errors)
    return problems


def _make_compatible(model: nn.Module) -> tuple[nn.Module, tuple[str, ...]]:
    from opacus.validators import ModuleValidator

    if not dp_incompatibilities(model):
        return model, ()
    before = dict(model.named_modules())
    fixed: nn.Module = ModuleValidator.fix(model)
    # Opacus swaps BatchNorm for GroupNorm(gcd(32, C), C). After a Linear layer (inputs (n, C)) that
    # puts one value in each group and normalises every feature to 0, so a BatchNorm1d becomes
    # GroupNorm(1, C) instead: per-example normalisation over all its channels, as LayerNorm does.
    for name, old in before.items():
        if isinstance(old, nn.BatchNorm1d):
            parent, _, child = name.rpartition(".")
            new = nn.GroupNorm(1, old.num_features, eps=old.eps, affine=old.affine)
            first = next(old.parameters(), None)
            if first is not None:
                new.to(device=first.device, dtype=first.dtype)
            setattr(fixed.get_submodule(parent), child, new)
    replaced = tuple(
        f"{name}: {type(before[name]).__name__} -> {type(module).__name__}"
        for name, module in fixed.named_modules()
        if name in before and type(before[name]) is not type(module)
    )
    remaining = dp_incompatibilities(fixed)
    if remaining:
        raise UnsupportedModelError(
            "The model has layers that differentially private training cannot handle and that could not "
            f"be replaced automatically: {'; '.join(remaining)}. Use layers with per-example gradients "
            "(Linear, Conv, GroupNorm, LayerNorm, Embedding, ...)."
        )
    logger.warning(
        "train_dp: replaced layers to make the model DP-compatible (the returned model is a fixed copy): %s",
        ", ".join(replaced),
    )
    return fixed, replaced


def _first_float_dtype(model: nn.Module) -> torch.dtype:
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)


def _probe(model: nn.Module, x: torch.Tensor, largest_label: int) -> None:
    """One forward pass on two rows: a shape mismatch becomes a clear error, not an Opacus traceback."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(x[:2])
    except RuntimeError as e:
        raise InvalidParameterError(
            f"The 'x' parameter of {_OWNER} must hold inputs the model accepts. Got samples of shape "
            f"{tuple(x.shape[1:])} instead, which the model refused: {e}"
        ) from e
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] <= largest_label:
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidParameterError(
            f"The 'model' parameter of {_OWNER} must output logits (n, C) with C > {largest_label}, the "
            f"largest label in y. Got outputs {got} instead. Give the model one output per class."
        )


def _strip_opacus(wrapped: nn.Module) -> nn.Module:
    """The plain module inside Opacus' GradSampleModule, with its hooks and parameter attributes gone."""
    inner: nn.Module = wrapped._module  # type: ignore[assignment]
    wrapped.remove_hooks()  # type: ignore[operator]
    for p in inner.parameters():
        for attr in _OPACUS_ATTRS:
            if hasattr(p, attr):
                delattr(p, attr)
        p.grad = None
    return inner


def train_dp(
    model: nn.Module,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    epsilon: float,
    delta: float = 1e-5,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-2,
    max_grad_norm: float = 1.0,
    optimizer: DPOptimizer = "adam",
    accountant: Accountant = "prv",
    seed: int | None = 0,
    device: str | torch.device = "cpu",
    progress: Callable[[DPEpochRecord], None] | None = None,
) -> DPResult:
    """Train ``model`` with DP-SGD so that the whole run is (ε, δ)-differentially private.

    Opacus' ``PrivacyEngine.make_private_with_epsilon`` calibrates the noise multiplier sigma for
    ``epochs`` passes at sample rate ``1 / ceil(n / batch_size)`` (Poisson sampling: each example
    joins each batch independently), then every step clips each example's gradient to
    ``max_grad_norm`` and adds ``N(0, (sigma * C)^2)`` noise before the optimiser update. The ε reported is
    the accountant's for the steps actually taken.

    The guarantee covers the training data ``(x, y)`` only through this run: the model must start
    from weights that did not see private data (a fresh initialisation, or a public pre-training),
    and any preprocessing statistics inside it (e.g. a :class:`~mlarmor.models.Standardize` layer)
    must come from public knowledge, not from ``x``. Layers without per-example gradients
    (BatchNorm) are replaced first (BatchNorm -> GroupNorm; logged and listed in
    ``replaced_layers``), which gives a fixed *copy* of the model.

    Randomness: Poisson sampling and noise come from ``torch.Generator`` objects seeded from
    ``seed``, and torch's global generator (e.g. dropout) is seeded with ``seed`` on a fork that is
    restored afterwards, so the same seed on the same device gives the same model. Whoever knows
    the seed (and the code) can regenerate the noise, and against them the guarantee is void: for a
    model you release, pass ``seed=None`` (a seed drawn from the operating system's entropy, never
    stored) or keep the seed secret. Opacus'
    ``secure_mode`` (a cryptographic noise source) is not used: it would make runs irreproducible.

    Reference:
        Abadi et al., "Deep Learning with Differential Privacy", CCS 2016.
        https://arxiv.org/abs/1607.00133
        Gopi et al., "Numerical Composition of Differential Privacy" (the PRV accountant), NeurIPS
        2021. https://arxiv.org/abs/2106.02848

    Threat model:
        Bounds what any attacker who sees the trained model (weights or outputs, any number of
        queries) can learn about whether one example was in the training data: membership
        inference and attribute inference/model inversion (MITRE ATLAS AML.T0024.000 and
        AML.T0024.001, OWASP ML03 and ML04). It says nothing about evasion, poisoning or model
        extraction, and ε > 10 or δ ≥ 1/n give little formal protection.

    Args:
        model: A classifier mapping ``(n, *input_shape)`` inputs to ``(n, C)`` logits, freshly
            initialised; trained in place (unless layers are replaced, see above).
        x: Training inputs ``(n, *input_shape)``.
        y: Class indices ``(n,)``.
        epsilon: Target ε of the whole run, > 0 (1 is strong, 8 is common, above 10 weak).
        delta: δ, in (0, 1); keep it below ``1 / n`` (a warning is raised otherwise).
        epochs: Passes over the data, >= 1 (more epochs need more noise for the same ε).
        batch_size: Expected batch size; the sample rate is ``1 / ceil(n / batch_size)``.
        lr: Learning rate, > 0.
        max_grad_norm: Per-example clipping norm ``C``, > 0.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        accountant: ``"prv"`` (tightest), ``"rdp"`` or ``"gdp"``.
        seed: Seed of the sampling, the noise and the global generator during training, >= 0;
            ``None`` for an unpredictable one (not reproducible).
        device: Where to train (``"cpu"`` unless you ask for ``"cuda"``).
        progress: Called with each epoch's :class:`DPEpochRecord`.

    Returns:
        A :class:`DPResult` with the trained model in eval mode and the ε spent.

    Raises:
        InvalidParameterError: A parameter is out of its domain, or the data does not fit the model.
        UnsupportedModelError: The model has layers DP-SGD cannot train and that cannot be replaced.
    """
    start = time.perf_counter()
    if not isinstance(model, nn.Module):
        raise invalid_parameter("model", _OWNER, "a torch.nn.Module", type(model).__name__)
    if not any(p.requires_grad for p in model.parameters()):
        raise invalid_parameter("model", _OWNER, "a torch.nn.Module with trainable parameters", model)
    epsilon = check_positive(epsilon, "epsilon", _OWNER)
    delta = check_fraction(delta, "delta", _OWNER)
    epochs = check_int(epochs, "epochs", _OWNER)
    batch_size = check_int(batch_size, "batch_size", _OWNER)
    lr = check_positive(lr, "lr", _OWNER)
    max_grad_norm = check_positive(max_grad_norm, "max_grad_norm", _OWNER)
    optimizer = check_choice(optimizer, "optimizer", _OWNER, _OPTIMIZERS)
    accountant = check_choice(accountant, "accountant", _OWNER, _ACCOUNTANTS)
    seed = secrets.randbits(63) if seed is None else check_seed(seed, _OWNER)
    dev = check_device(device, _OWNER)
    xs = numeric_inputs(x, what=_OWNER, error=InvalidParameterError)
    ys, _ = encode_labels(y, n=len(xs), what=_OWNER, error=InvalidParameterError, allow_strings=False)
    n = len(xs)
    if delta >= 1.0 / n:
        warnings.warn(
            f"delta={delta:g} is not below 1/n = {1.0 / n:.3g} for n={n} training examples: a mechanism "
            f"may then publish some records in the clear and still be ({epsilon:g}, {delta:g})-DP. Use "
            f"delta well below 1/n, e.g. {10 ** math.floor(math.log10(0.1 / n)):g}.",
            UserWarning,
            stacklevel=2,
        )
    model, replaced = _make_compatible(model)
    model.to(dev)
    dtype = _first_float_dtype(model)
    xt = torch.tensor(xs, dtype=dtype, device=dev)
    yt = torch.tensor(ys, device=dev)
    _probe(model, xt, int(ys.max()))

    from opacus import PrivacyEngine
    from torch.utils.data import DataLoader, TensorDataset

    sampling_seed, noise_seed = (int(s) for s in np.random.SeedSequence(seed).generate_state(2, np.uint64))
    sampling = torch.Generator().manual_seed(sampling_seed)
    noise = torch.Generator(device=dev).manual_seed(noise_seed)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=batch_size, generator=sampling)
    params = [p for p in model.parameters() if p.requires_grad]
    opt: torch.optim.Optimizer = (
        torch.optim.Adam(params, lr=lr)
        if optimizer == "adam"
        else torch.optim.SGD(params, lr=lr, momentum=0.9)
    )
    history: list[DPEpochRecord] = []
    forked = (
        [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    )
    with torch.random.fork_rng(devices=forked), warnings.catch_warnings():
        for message in _QUIET:
            warnings.filterwarnings("ignore", message=message)
        torch.manual_seed(seed)
        engine = PrivacyEngine(accountant=accountant)
        model.train()
        try:
            private_model, private_opt, private_loader = engine.make_private_with_epsilon(
                module=model,
                optimizer=opt,
                data_loader=loader,
                target_epsilon=epsilon,
                target_delta=delta,
                epochs=epochs,
                max_grad_norm=max_grad_norm,
                noise_generator=noise,
            )
        except NotImplementedError as e:
            raise UnsupportedModelError(
                f"Opacus cannot compute per-example gradients for this model: {e}"
            ) from e
        except ValueError as e:
            if "budget is too low" in str(e):
                raise InvalidParameterError(
                    f"epsilon={epsilon:g} at delta={delta:g} is out of reach for {epochs} epoch(s) at sample "
                    f"rate 1/{len(loader)}: no amount of noise Opacus allows gets there. Raise epsilon, or "
                    "train for fewer epochs."
                ) from e
            raise InvalidParameterError(f"Opacus refused the training setup: {e}") from e
        steps = 0
        try:
            for epoch in range(epochs):
                t0 = time.perf_counter()
                total = correct = seen = 0.0
                for xb, yb in private_loader:
                    private_opt.zero_grad(set_to_none=True)
                    logits = private_model(xb)
                    loss = F.cross_entropy(logits, yb)
                    torch.autograd.backward(loss)
                    private_opt.step()  # also on an empty batch: the noise step is part of the accounting
                    steps += 1
                    m = int(yb.shape[0])
                    if m:
                        total += float(loss.detach()) * m
                        correct += float((logits.detach().argmax(1) == yb).sum())
                        seen += m
                record = DPEpochRecord(
                    epoch=epoch,
                    loss=total / seen if seen else math.nan,
                    accuracy=correct / seen if seen else math.nan,
                    samples=int(seen),
                    seconds=time.perf_counter() - t0,
                )
                history.append(record)
                if progress is not None:
                    progress(record)
            spent = float(engine.get_epsilon(delta))
        finally:
            trained = _strip_opacus(private_model)
    trained.eval()
    return DPResult(
        model=trained,
        epsilon=spent,
        target_epsilon=epsilon,
        delta=delta,
        noise_multiplier=float(private_opt.noise_multiplier),
        max_grad_norm=max_grad_norm,
        epochs=epochs,
        steps=steps,
        sample_rate=float(private_loader.sample_rate),
        accountant=accountant,
        replaced_layers=replaced,
        history=tuple(history),
        seconds=time.perf_counter() - start,
    )


class DPMLPClassifier(ClassifierMixin, BaseEstimator):  # type: ignore[misc]
    """A scikit-learn classifier trained with differential privacy: a torch MLP fitted by :func:`train_dp`.

    A real scikit-learn estimator (``get_params``/``set_params``, ``sklearn.base.clone``, pickling,
    ``predict``/``predict_proba``/``classes_``), so it drops into pipelines, into
    :class:`~mlarmor.targets.SklearnTarget` and into the privacy audit's automatic recipe, which
    clones it to train reference models. The network is :func:`~mlarmor.models.tabular_mlp`.

    Features are used as given; no statistic of the training data enters the model (that would leak
    outside the guarantee). Scale them with public knowledge first (e.g. known feature ranges), or
    pass ``input_range=(low, high)``, a public range that is mapped to ``[-1, 1]`` inside the model.
    The classes are ``classes`` when given, else those present in ``y`` (their set is then not
    private: pass ``classes`` when it is sensitive).

    Reference:
        Abadi et al., "Deep Learning with Differential Privacy", CCS 2016.
        https://arxiv.org/abs/1607.00133

    Threat model:
        As :func:`train_dp`: bounds membership and attribute inference on the training data (MITRE
        ATLAS AML.T0024.000/.001, OWASP ML03/ML04) by ``epsilon_`` at ``delta``.

    Args:
        hidden: Widths of the hidden layers.
        epsilon: Target ε of the training run, > 0.
        delta: δ, in (0, 1), below ``1 / n``.
        epochs: Passes over the data.
        batch_size: Expected batch size (Poisson sampling).
        lr: Adam's learning rate.
        max_grad_norm: Per-example clipping norm.
        accountant: ``"prv"``, ``"rdp"`` or ``"gdp"``.
        input_range: Public ``(low, high)`` range of the features, mapped to ``[-1, 1]``; ``None`` to
            use the features as they are.
        classes: The public list of class labels; ``None`` takes the sorted labels found in ``y``.
        random_state: Seed of the weights, the sampling and the noise; ``None`` for an
            unpredictable one (see :func:`train_dp` on why a released model should not use a known seed).

    Attributes:
        model_: The trained ``torch.nn.Module`` (logits out), in eval mode.
        classes_: Class labels, in the order of the probability columns.
        n_features_in_: Number of features seen in ``fit``.
        epsilon_: The ε spent by ``fit`` (from the accountant).
        noise_multiplier_: The noise multiplier sigma used by ``fit``.
        sample_rate_: The Poisson sampling rate of ``fit``.
        steps_: The DP-SGD steps taken by ``fit``.

    Example:
        >>> from mlarmor.data import load_dataset
        >>> data = load_dataset("demo:digits")
        >>> x = data.x.reshape(data.n, -1)
        >>> clf = DPMLPClassifier(epsilon=1.0, epochs=10).fit(x, data.y)  # doctest: +SKIP
        >>> clf.epsilon_ <= 1.0, clf.predict_proba(x[:3]).shape  # doctest: +SKIP
        (True, (3, 10))
    """

    def __init__(
        self,
        hidden: Sequence[int] = (64,),
        *,
        epsilon: float = 1.0,
        delta: float = 1e-5,
        epochs: int = 10,
        batch_size: int = 64,
        lr: float = 1e-2,
        max_grad_norm: float = 1.0,
        accountant: Accountant = "prv",
        input_range: tuple[float, float] | None = None,
        classes: Sequence[Any] | None = None,
        random_state: int | None = 0,
    ) -> None:
        self.hidden = hidden
        self.epsilon = epsilon
        self.delta = delta
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.max_grad_norm = max_grad_norm
        self.accountant = accountant
        self.input_range = input_range
        self.classes = classes
        self.random_state = random_state

    def _range_stats(self, n_features: int) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        if self.input_range is None:
            return None, None
        public = "pass None, or a public range known without looking at the training data"
        low, high = check_bounds(self.input_range, type(self).__name__, "input_range", hint=public)
        mean = np.full(n_features, (low + high) / 2, dtype=np.float32)
        std = np.full(n_features, (high - low) / 2, dtype=np.float32)
        return mean, std

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> DPMLPClassifier:
        """Train a fresh MLP on ``(X, y)`` with DP-SGD; returns ``self``.

        Raises:
            InvalidParameterError: A hyper-parameter is out of its domain, or ``y`` holds a label
                missing from ``classes``.
        """
        from mlarmor.models import tabular_mlp

        owner = type(self).__name__
        xs = numeric_inputs(X, what=owner, error=InvalidParameterError)
        xs = xs.reshape(len(xs), -1)
        labels = np.asarray(y)
        if labels.ndim != 1 or len(labels) != len(xs):
            raise InvalidParameterError(
                f"The labels y of {owner} must have shape ({len(xs)},), one per row of X. Got shape "
                f"{labels.shape} instead."
            )
        classes = np.unique(labels) if self.classes is None else np.asarray(list(self.classes))
        if classes.ndim != 1 or classes.size < 2 or len(np.unique(classes)) != classes.size:
            raise invalid_parameter("classes", owner, "None or at least 2 distinct labels", self.classes)
        classes = np.sort(classes)
        index = np.searchsorted(classes, labels)
        unknown = (index >= classes.size) | (classes[np.minimum(index, classes.size - 1)] != labels)
        if unknown.any():
            raise InvalidParameterError(
                f"y holds labels that are not in the 'classes' parameter of {owner}, e.g. "
                f"{labels[unknown][0]!r}. Add them to classes, or leave classes=None."
            )
        seed = (
            secrets.randbits(63)
            if self.random_state is None
            else check_seed(self.random_state, owner, "random_state")
        )
        mean, std = self._range_stats(xs.shape[1])
        net = tabular_mlp(xs.shape[1], classes.size, hidden=self.hidden, mean=mean, std=std, seed=seed)
        result = train_dp(
            net,
            xs,
            index.astype(np.int64),
            epsilon=self.epsilon,
            delta=self.delta,
            epochs=self.epochs,
            batch_size=self.batch_size,
            lr=self.lr,
            max_grad_norm=self.max_grad_norm,
            optimizer="adam",
            accountant=self.accountant,
            seed=seed,
        )
        self.model_ = result.model
        self.classes_ = classes
        self.n_features_in_ = xs.shape[1]
        # Plain numbers only: a pickled estimator then holds no mlarmor class but this one.
        self.epsilon_ = result.epsilon
        self.noise_multiplier_ = result.noise_multiplier
        self.sample_rate_ = result.sample_rate
        self.steps_ = result.steps
        return self

    def _logits(self, X: npt.ArrayLike) -> torch.Tensor:
        model = getattr(self, "model_", None)
        if model is None:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet: call fit(X, y) before predicting."
            )
        owner = type(self).__name__
        xs = numeric_inputs(X, what=owner, error=InvalidParameterError)
        xs = xs.reshape(len(xs), -1)
        if xs.shape[1] != self.n_features_in_:
            raise InvalidParameterError(
                f"X has {xs.shape[1]} features, but {owner} was fitted on {self.n_features_in_}. Pass "
                "data with the same features."
            )
        model.eval()
        with torch.no_grad():
            return model(torch.tensor(xs, dtype=_first_float_dtype(model)))  # type: ignore[no-any-return]

    def predict_proba(self, X: npt.ArrayLike) -> np.ndarray:
        """Class probabilities ``(n, len(classes_))``, float64, columns in ``classes_`` order."""
        return torch.softmax(self._logits(X).double(), dim=1).numpy()

    def predict(self, X: npt.ArrayLike) -> np.ndarray:
        """The most probable class label of each row."""
        best = self._logits(X).argmax(1).numpy()
        return np.asarray(self.classes_[best])
