"""Clean-label targeted poisoning by gradient matching (Witches' Brew).

The attacker wants a few chosen test images, the *victims*, classified as ``adversarial_class`` by a
model the user trains **from scratch** on data that holds the attacker's rows. The labels of those
rows stay correct: only their pixels move, within a small L-infinity ball, so a human reviewer sees
well-labelled images of ``adversarial_class``.

The poisons are brewed on a surrogate trained with the user's own recipe on the clean data. Their
perturbation is optimised so that the parameter gradient of the ordinary training loss on the
poisons points the same way as the gradient of the *adversarial* loss, the victims' cross-entropy
towards ``adversarial_class``: every training step that fits the poisons then also pushes the
victims over. Feature collision (Poison Frogs) is not used, as it needs a fixed feature extractor
and fails when the victim model is retrained from scratch.

Typical use::

    p = gradient_matching(x, y, train=recipe, x_victims=xv, y_victims=yv,
                          adversarial_class=3, fraction=0.05, eps=0.15)
    model = recipe(p.x, p.y, 101)                    # the user's training, another seed
    rate = clean_label_success_rate(predict, p)      # share of victims now in class 3

Measured on small data, read before trusting a zero: on the 8x8 digits (1437 training rows, the
``digits_cnn`` trained 20 epochs from scratch with seed 101, surrogate seed 0, single-victim brews
of 250 steps) no victim was flipped, at any budget from 1% to 9% and eps 0.1 to 0.3, nor with
``retrain=3``, nor even with eps 1.0 (unconstrained poisons). The poisons do move the victims: their
adversarial log-probability rises against the same rows left unperturbed, on average by 0.1 / 1.5
/ 2.4 nats at 1% / 5% / 9% and eps 0.1, and 0.9 / 3.6 / 4.6 nats at eps 0.2, from -6 to -28.
So a zero success rate here bounds this attack on this data, not clean-label poisoning in
general: the paper's success (about 90% at 1% budget on CIFAR-10) was on 3072-dimensional inputs,
where an eps-ball holds far more room than on 64 pixels with 17 gray levels.

Threat model:
    The attacker knows the training data and the training recipe (architecture, optimiser,
    epochs), not the victim's random seed; it may perturb, within ``eps`` in L-infinity, the inputs
    of ``round(fraction * n)`` rows of ``adversarial_class`` but not their labels, nor the
    training procedure; the victim inputs are used unmodified at test time (MITRE ATLAS
    AML.T0020, OWASP ML02 data poisoning).

Reference:
    Geiping, Fowl, Huang, Czaja, Taylor, Moeller & Goldstein, "Witches' Brew: Industrial Scale Data
    Poisoning via Gradient Matching", ICLR 2021, https://arxiv.org/abs/2009.02276.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

from mlarmor._validation import check_bounds, check_fraction, check_int, check_positive, check_seed
from mlarmor.attacks.poisoning.base import PoisoningAttack, Predict
from mlarmor.attacks.poisoning.triggers import (
    Bounds,
    Poisoned,
    _check_images,
    _check_labels,
    poisoned_count,
)
from mlarmor.attacks.registry import register
from mlarmor.errors import InvalidParameterError, invalid_parameter

if TYPE_CHECKING:
    from mlarmor.targets.recipe import Recipe

__all__ = ["SURROGATE_SEED", "CleanLabel", "TrainFn", "clean_label_success_rate", "gradient_matching"]

TrainFn = Callable[[np.ndarray, np.ndarray, int], nn.Module]
"""The user's recipe: ``train(x, y, seed)`` returns a module mapping inputs to logits."""

_TRIGGER = "gradient-matching"
SURROGATE_SEED = 1000
"""Added to the call's seed for :class:`CleanLabel`'s surrogates: they train under other seeds than a
victim model trained with the call's seed (the attacker does not know the victim's seed)."""


def _flat_grad(loss: torch.Tensor, params: Sequence[torch.Tensor], *, create_graph: bool) -> torch.Tensor:
    grads = torch.autograd.grad(loss, params, create_graph=create_graph)
    return torch.cat([g.reshape(-1) for g in grads])


class _Surrogate:
    """A trained model with the victims' adversarial gradient, the direction poisons must follow."""

    def __init__(self, model: nn.Module, x_vic: torch.Tensor, y_adv: torch.Tensor) -> None:
        model.eval()
        self.model = model
        self.params = [p for p in model.parameters() if p.requires_grad]
        loss = F.cross_entropy(model(x_vic), y_adv)
        self.target = _flat_grad(loss, self.params, create_graph=False).detach()
        self.target_norm = self.target.norm()

    def misalignment(self, x: torch.Tensor, y: torch.Tensor, *, create_graph: bool) -> torch.Tensor:
        """``1 - cos`` between the poisons' training gradient and the adversarial one."""
        g = _flat_grad(F.cross_entropy(self.model(x), y), self.params, create_graph=create_graph)
        cos: torch.Tensor = (g @ self.target) / (g.norm() * self.target_norm + 1e-12)
        return 1.0 - cos


def _brew(
    first: list[_Surrogate],
    rebuild: Callable[[torch.Tensor, int], list[_Surrogate]],
    x_base: torch.Tensor,
    y_base: torch.Tensor,
    *,
    eps: float,
    steps: int,
    retrain: int,
    lr: float,
    bounds: Bounds,
    generator: torch.Generator,
    on_step: Callable[[], None],
) -> tuple[torch.Tensor, float]:
    """One restart: signed Adam on the mean misalignment; returns (delta, final misalignment)."""
    low, high = bounds
    # ``u`` is the perturbation in units of eps, so one learning rate fits every input scale.
    u = (torch.rand(x_base.shape, generator=generator, dtype=x_base.dtype) * 2 - 1).requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    milestones = [steps * 3 // 8, steps * 5 // 8, steps * 7 // 8]
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=0.1)
    surrogates = first
    stage_len = max(1, steps // (retrain + 1))

    def delta_of(v: torch.Tensor) -> torch.Tensor:
        # The feasible set is the eps-ball and the bounds; clamping inside the graph keeps the
        # gradient honest about pixels already at a bound.
        return torch.clamp(x_base + eps * v, low, high) - x_base

    def loss_of(delta: torch.Tensor, *, create_graph: bool) -> torch.Tensor:
        losses = [s.misalignment(x_base + delta, y_base, create_graph=create_graph) for s in surrogates]
        return torch.stack(losses).mean()

    for step in range(steps):
        stage = step // stage_len
        if step and step % stage_len == 0 and stage <= retrain:
            # Sleeper Agent's retraining: a model trained on the current poisons moves the target.
            surrogates = rebuild(delta_of(u.detach()), stage)
        opt.zero_grad()
        loss = loss_of(delta_of(u), create_graph=True)
        (grad_u,) = torch.autograd.grad(loss, u)
        u.grad = grad_u.sign()  # signed Adam, as in the paper
        opt.step()
        sched.step()
        with torch.no_grad():
            u.clamp_(-1.0, 1.0)
        on_step()
    delta = delta_of(u.detach())
    return delta, float(loss_of(delta, create_graph=False).detach())


def gradient_matching(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    train: TrainFn,
    x_victims: npt.ArrayLike,
    y_victims: npt.ArrayLike,
    adversarial_class: int,
    fraction: float,
    eps: float = 16 / 255,
    steps: int = 250,
    restarts: int = 1,
    ensemble: int = 1,
    retrain: int = 0,
    lr: float = 0.1,
    bounds: Bounds = (0.0, 1.0),
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Poisoned:
    """Brew clean-label poisons that make a model trained from scratch misclassify the victims.

    A surrogate is trained with ``train(x, y, seed)`` on the clean data. ``round(fraction * n)`` rows
    of ``adversarial_class`` are drawn at random (from ``seed``); their perturbation ``delta``, with
    ``|delta|_inf <= eps`` and ``x + delta`` within ``bounds``, minimises ``1 - cos(g_p, g_v)``
    where ``g_p`` is the surrogate's parameter gradient of the cross-entropy of the poisons with
    their true labels and ``g_v`` that of the victims' cross-entropy towards ``adversarial_class``.
    The optimiser is Adam on the sign of the gradient, its learning rate divided by 10 at 3/8, 5/8
    and 7/8 of the steps; of ``restarts`` random starts, the best-aligned one is kept. With
    ``ensemble`` and ``retrain`` the misalignment is averaged over several surrogates, retrained
    on the current poisons along the way.

    Surrogate seeds are ``seed, seed + 1, ...``: evaluate the victim with a seed outside that range,
    or the attack is measured against its own surrogate.

    Args:
        x: Training images ``(n, C, H, W)`` or ``(n, H, W)`` within ``bounds``.
        y: Their integer labels ``(n,)``; returned unchanged.
        train: The user's recipe, ``train(x, y, seed) -> nn.Module`` returning logits; it must
            accept ``x`` as given.
        x_victims: The test images to misclassify, ``(m, *x.shape[1:])``, within ``bounds``.
        y_victims: Their true labels ``(m,)``, none equal to ``adversarial_class``.
        adversarial_class: The class the victims should be put in, and the class of the poisons.
        fraction: Share of all ``n`` training rows to perturb, in ``(0, 1)``; they are taken from
            ``adversarial_class``, which must hold that many.
        eps: L-infinity budget of the perturbation, in input units (``16/255`` by default; on
            inputs quantised to ``k`` levels over ``bounds``, one level is ``(high - low) / (k - 1)``).
        steps: Optimisation steps per restart.
        restarts: Independent random starts; the one with the lowest alignment loss is kept.
        ensemble: Surrogates trained with different seeds; the loss is averaged over them, which
            helps the poisons transfer to a victim trained with an unknown seed.
        retrain: How many times, evenly spread over the steps, the surrogates are retrained from
            scratch on the data as currently poisoned (Sleeper Agent's retraining); each costs
            ``ensemble`` calls of ``train`` per restart. ``0`` keeps the clean surrogates.
        lr: Adam's initial learning rate, in units of ``eps``.
        bounds: The input range ``(low, high)``.
        seed: Seed of the surrogate's training, the choice of rows and the random starts.
        progress: Called after each step as ``progress(done, steps * restarts)``.

    Returns:
        A :class:`Poisoned` with the labels unchanged, ``target_class=adversarial_class``,
        ``trigger="gradient-matching"`` and ``params`` holding ``x_victims``, ``y_victims``,
        ``adversarial_class``, ``eps``, ``bounds``, ``seed`` and ``alignment`` (the cosine
        similarity reached on the surrogate, in ``[-1, 1]``).

    Raises:
        InvalidParameterError: For a ``fraction`` outside ``(0, 1)``, giving no row or more rows
            than ``adversarial_class`` holds; a non-positive ``eps``, ``steps``, ``restarts`` or
            ``lr``; victims whose shape does not match ``x`` or already labelled
            ``adversarial_class``; labels or images that are not valid; or a recipe that does not
            return a module.
    """
    owner = "gradient_matching"
    frac = check_fraction(fraction, "fraction", owner)
    low, high = check_bounds(bounds, owner)
    seed = check_seed(seed, owner)
    n_steps = check_int(steps, "steps", owner)
    n_restarts = check_int(restarts, "restarts", owner)
    n_ensemble = check_int(ensemble, "ensemble", owner)
    n_retrain = check_int(retrain, "retrain", owner, low=0, high=n_steps - 1, hint=f"below steps={n_steps}")
    check_positive(eps, "eps", owner)
    check_positive(lr, "lr", owner)
    if not callable(train):
        raise invalid_parameter("train", owner, "a function train(x, y, seed) -> nn.Module", train)
    arr = np.asarray(x)
    # The model sees the user's own shape; ``_check_images`` only validates and casts.
    imgs: np.ndarray = _check_images(arr, owner, (low, high))[0].reshape(arr.shape)
    labels = _check_labels(y, imgs.shape[0], owner)
    victims = np.asarray(x_victims)
    if (
        victims.ndim != arr.ndim
        or victims.shape[1:] != arr.shape[1:]
        or victims.shape[0] < 1
        or not np.issubdtype(victims.dtype, np.number)
    ):
        expected = f"at least one numeric image of shape {arr.shape[1:]}"
        raise invalid_parameter("x_victims", owner, expected, f"shape {victims.shape}, dtype {victims.dtype}")
    if not np.isfinite(victims).all() or victims.min() < low or victims.max() > high:
        raise invalid_parameter(
            "x_victims", owner, f"finite values within bounds {(low, high)}", "values outside"
        )
    vic_imgs = _check_images(victims, owner, (low, high))[0].reshape(victims.shape)
    vic_labels = np.asarray(y_victims)
    if vic_labels.shape != (victims.shape[0],) or not np.issubdtype(vic_labels.dtype, np.integer):
        expected = f"integer labels of shape ({victims.shape[0]},)"
        raise invalid_parameter(
            "y_victims", owner, expected, f"shape {vic_labels.shape}, dtype {vic_labels.dtype}"
        )
    adv_class = check_int(adversarial_class, "adversarial_class", owner, low=0)
    if labels.size and adv_class > int(labels.max()):
        raise invalid_parameter("adversarial_class", owner, "a class present in y", adversarial_class)
    if np.any(vic_labels == adv_class):
        raise invalid_parameter(
            "y_victims", owner, f"labels other than adversarial_class={adv_class}", vic_labels.tolist()
        )
    candidates = np.flatnonzero(labels == adv_class)
    k = poisoned_count(frac, int(labels.size), owner, what="training rows")
    if k > candidates.size:
        raise invalid_parameter(
            "fraction",
            owner,
            f"such that round(fraction * {labels.size}) is at most the {candidates.size} rows "
            f"of class {adv_class}",
            fraction,
        )
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(candidates, size=k, replace=False))

    n_models = n_ensemble * (n_retrain * n_restarts + 1)
    dev_dtype: list[tuple[torch.device, torch.dtype]] = []

    def fit(x_train: np.ndarray, model_seed: int) -> nn.Module:
        model = train(x_train, labels, model_seed)
        if not isinstance(model, nn.Module) or not any(p.requires_grad for p in model.parameters()):
            raise invalid_parameter(
                "train",
                owner,
                "a function returning an nn.Module with trainable parameters",
                type(model).__name__,
            )
        if not dev_dtype:
            p0 = next(p for p in model.parameters() if p.requires_grad)
            dev_dtype.append((p0.device, p0.dtype if p0.is_floating_point() else torch.float32))
        return model

    clean_models = [fit(arr, seed + j) for j in range(n_ensemble)]
    device, dtype = dev_dtype[0]
    x_base = torch.as_tensor(imgs[rows], dtype=dtype, device=device)
    y_base = torch.as_tensor(labels[rows], dtype=torch.long, device=device)
    x_vic = torch.as_tensor(vic_imgs, dtype=dtype, device=device)
    y_adv = torch.full((x_vic.shape[0],), adv_class, dtype=torch.long, device=device)
    clean = [_Surrogate(m, x_vic, y_adv) for m in clean_models]
    trained = n_ensemble

    def rebuild(delta: torch.Tensor, stage: int) -> list[_Surrogate]:
        nonlocal trained
        x_now = np.array(imgs, copy=True)
        x_now[rows] = imgs[rows] + delta.cpu().numpy().astype(imgs.dtype)
        models = []
        for _ in range(n_ensemble):
            models.append(fit(x_now, seed + trained))
            trained += 1
        return [_Surrogate(m, x_vic, y_adv) for m in models]

    gen = torch.Generator().manual_seed(seed)
    total = n_steps * n_restarts
    done = 0

    def on_step() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    best_delta, best_loss = torch.zeros_like(x_base), np.inf
    for _ in range(n_restarts):
        delta, loss = _brew(
            clean,
            rebuild,
            x_base,
            y_base,
            eps=float(eps),
            steps=n_steps,
            retrain=n_retrain,
            lr=float(lr),
            bounds=(low, high),
            generator=gen,
            on_step=on_step,
        )
        if loss < best_loss:
            best_delta, best_loss = delta, loss

    out = np.array(imgs, copy=True)
    out[rows] = np.clip(imgs[rows] + best_delta.cpu().numpy().astype(imgs.dtype), low, high)
    mask = np.zeros(labels.shape, dtype=bool)
    mask[rows] = True
    result_params: dict[str, Any] = {
        "x_victims": np.array(victims, copy=True),
        "y_victims": vic_labels,
        "adversarial_class": adv_class,
        "eps": float(eps),
        "bounds": (low, high),
        "seed": seed,
        "alignment": 1.0 - float(best_loss),
        "surrogates": n_models,
    }
    return Poisoned(
        x=out,
        y=labels,
        poisoned=mask,
        target_class=adv_class,
        trigger=_TRIGGER,
        params=result_params,
    )


def clean_label_success_rate(predict: Callable[[np.ndarray], npt.ArrayLike], poisoned: Poisoned) -> float:
    """Share of the victims of a :func:`gradient_matching` brew that the model puts in its class.

    Args:
        predict: Maps inputs to labels ``(m,)``, or to scores ``(m, C)`` whose arg-max is taken.
        poisoned: The result of :func:`gradient_matching`.

    Returns:
        The success rate, in ``[0, 1]``.

    Raises:
        InvalidParameterError: For a result of another attack, or predictions of the wrong shape.
    """
    owner = "clean_label_success_rate"
    if not isinstance(poisoned, Poisoned) or poisoned.trigger != _TRIGGER:
        raise invalid_parameter("poisoned", owner, "the result of gradient_matching", type(poisoned).__name__)
    victims = np.asarray(poisoned.params["x_victims"])
    pred = np.asarray(predict(victims))
    if pred.ndim == 2:
        pred = pred.argmax(axis=1)
    if pred.shape != (victims.shape[0],):
        raise invalid_parameter(
            "predict",
            owner,
            f"a function returning labels ({victims.shape[0]},) or scores (m, C)",
            f"shape {pred.shape}",
        )
    return float(np.mean(pred == int(poisoned.params["adversarial_class"])))


@register("clean-label")
@dataclass(frozen=True, kw_only=True, slots=True)
class CleanLabel(PoisoningAttack):
    """Clean-label targeted poisoning by gradient matching, with victims drawn from held-out data.

    The call draws ``victims`` held-out inputs not of ``target_class`` (from ``seed``) and brews
    poisons for them with :func:`gradient_matching` on surrogates trained with the PyTorch
    ``recipe`` under seeds from ``seed + SURROGATE_SEED``; ``fraction`` is the share of all
    training rows perturbed, all taken from ``target_class``. Its success rate is the share of
    those victims a model trained on the poisons puts in ``target_class``.

    Reference:
        Geiping, Fowl, Huang, Czaja, Taylor, Moeller & Goldstein, "Witches' Brew: Industrial Scale
        Data Poisoning via Gradient Matching", ICLR 2021, https://arxiv.org/abs/2009.02276.

    Threat model:
        The attacker knows the training data and recipe, not the victim's seed; it perturbs, within
        ``eps`` in L-infinity, rows of the target class without changing their labels (MITRE ATLAS
        AML.T0020, OWASP ML02).

    Attributes:
        victims: Held-out inputs to misclassify.
        eps: L-infinity budget of the perturbation, in input units.
        steps: Optimisation steps per restart.
        restarts: Independent random starts (the best-aligned one is kept).
        ensemble: Surrogates averaged over.
        retrain: Times the surrogates are retrained on the current poisons.
        lr: Adam's initial learning rate, in units of ``eps``.
    """

    needs_recipe: ClassVar[bool] = True

    victims: int = 8
    eps: float = 0.2
    steps: int = 250
    restarts: int = 1
    ensemble: int = 1
    retrain: int = 0
    lr: float = 0.1

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
        recipe: Recipe | None = None,
        x_test: npt.ArrayLike | None = None,
        y_test: npt.ArrayLike | None = None,
    ) -> Poisoned:
        """Brew poisons against ``victims`` inputs drawn from ``(x_test, y_test)``; needs a PyTorch recipe."""
        from mlarmor.targets.recipe import TorchRecipe

        owner = type(self).__name__
        if not isinstance(recipe, TorchRecipe):
            raise InvalidParameterError(
                "The clean-label attack brews its poisons on a surrogate trained with the recipe and needs "
                "its gradients: it needs a PyTorch recipe (file.py:train), not "
                f"{getattr(recipe, 'name', recipe)!r}."
            )
        if x_test is None or y_test is None:
            raise invalid_parameter("x_test", owner, "held-out inputs and labels to draw victims from", None)
        xt, yt = np.asarray(x_test), np.asarray(y_test)
        candidates = np.flatnonzero(yt != target_class)
        n_victims = self.victims
        if not isinstance(n_victims, int) or not 1 <= n_victims <= len(candidates):
            raise invalid_parameter("victims", owner, f"an int in [1, {len(candidates)}]", n_victims)
        rows = np.sort(np.random.default_rng(seed).choice(candidates, n_victims, replace=False))
        return gradient_matching(
            x,
            y,
            train=recipe.train,
            x_victims=xt[rows],
            y_victims=yt[rows],
            adversarial_class=target_class,
            fraction=fraction,
            bounds=bounds,
            seed=seed + SURROGATE_SEED,
            eps=self.eps,
            steps=self.steps,
            restarts=self.restarts,
            ensemble=self.ensemble,
            retrain=self.retrain,
            lr=self.lr,
        )

    def success_rate(
        self, predict: Predict, poisoned: Poisoned, x_test: npt.ArrayLike, y_test: npt.ArrayLike
    ) -> float:
        """Share of the brew's victims (kept in ``poisoned.params``) put in the target class."""
        return clean_label_success_rate(predict, poisoned)
