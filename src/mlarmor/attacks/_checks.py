"""Validation shared by every attack: the ``eps`` argument, the target's capabilities, the data (private).

Built on the generic checks of :mod:`mlarmor._validation`; every message has the one shape of
:func:`mlarmor.errors.invalid_parameter`, so the CLI can show it as is:
``The 'eps' parameter of PGD must be a float in [0, inf). Got -0.1 instead.``
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from mlarmor._validation import check_float, describe, is_real
from mlarmor.attacks.registry import REGISTRY
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets.base import Capability, Differentiable, Target

if TYPE_CHECKING:
    from mlarmor.attacks.base import Attack

__all__ = [
    "check_capability",
    "check_data",
    "check_eps_values",
]

_CAPABILITY_WORDS: dict[Capability, str] = {
    "gradients": "white-box: a differentiable PyTorch model",
    "scores": "class probabilities or logits for any input",
    "labels": "predicted labels",
}


def check_eps_values(eps: object, owner: str) -> tuple[tuple[float, ...], bool]:
    """Normalise the ``eps`` argument of a call: ``(values, single)``.

    ``single`` tells whether one float came (one result) or a sequence (one result per value).
    """
    if eps is None:
        raise invalid_parameter(
            "eps",
            owner,
            "a float in [0, inf) or a sequence of them, given to the constructor or the call",
            eps,
        )
    if isinstance(eps, np.ndarray) and eps.ndim == 0:
        eps = eps.item()
    if is_real(eps) or isinstance(eps, np.generic):
        return (check_float(eps, "eps", owner, low=0.0),), True
    if isinstance(eps, str | bytes) or not isinstance(eps, Iterable):
        raise invalid_parameter("eps", owner, "a float in [0, inf) or a non-empty sequence of them", eps)
    values = tuple(eps)
    if not values:
        raise invalid_parameter("eps", owner, "a float in [0, inf) or a non-empty sequence of them", eps)
    return tuple(check_float(v, "eps", owner, low=0.0) for v in values), False


def _offered(target: Target) -> frozenset[Capability]:
    capabilities = getattr(target, "capabilities", None)
    if not isinstance(capabilities, Iterable):
        return frozenset()
    return frozenset(c for c in capabilities if c in _CAPABILITY_WORDS)


def check_capability(attack: Attack, target: object) -> Target:
    """Return ``target`` if it offers what ``attack`` needs, else raise a message naming the gap.

    The message names the missing capability and the registered attacks that need only what the
    target offers (the black-box alternatives), so that the user knows what to run instead.
    """
    owner = type(attack).__name__
    if not isinstance(target, Target):
        raise invalid_parameter(
            "target",
            owner,
            "a model adapter implementing mlarmor.targets.Target (bounds, num_classes, predict, ...)",
            describe(type(target).__name__),
        )
    needed = attack.capability
    offered = _offered(target)
    usable = needed in offered and (needed != "gradients" or isinstance(target, Differentiable))
    if usable:
        return target
    from mlarmor.attacks.base import Attack as _Evasion  # base imports this module

    alternatives = sorted(
        name
        for name, cls in REGISTRY.items()
        if issubclass(cls, _Evasion)
        and cls.family == attack.family
        and cls.capability in offered
        and cls.capability != needed
    )
    shown = ", ".join(sorted(offered)) or "nothing"
    if needed in offered:  # declares gradients without implementing them
        message = (
            f"{owner} needs the {needed!r} capability ({_CAPABILITY_WORDS[needed]}); the target "
            f"{target.name!r} declares it but does not implement the Differentiable protocol "
            "(device, logits). "
        )
    else:
        message = (
            f"{owner} needs the {needed!r} capability ({_CAPABILITY_WORDS[needed]}), "
            f"but the target {target.name!r} offers only: {shown}. "
        )
    if alternatives:
        message += "Use a black-box attack that needs only what it offers: " + ", ".join(alternatives) + "."
    else:
        message += "No registered attack works with only these capabilities yet."
    if needed == "gradients":
        message += " To run white-box attacks, load the model through the PyTorch adapter."
    raise UnsupportedModelError(message)


def check_data(owner: str, target: Target, x: object, y: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate inputs and labels against ``target``; return them as numpy arrays.

    ``x`` must be a finite floating-point array ``(n, *input_shape)`` inside ``target.bounds``; ``y``
    an integer array ``(n,)`` of labels in ``[0, num_classes)``.
    """
    try:
        xs = np.asarray(x)
        ys = np.asarray(y)
    except (TypeError, ValueError) as e:
        raise InvalidParameterError(f"The 'x' and 'y' parameters of {owner} must be arrays: {e}") from e
    if xs.dtype.kind != "f":
        raise invalid_parameter(
            "x",
            owner,
            "a floating-point array (scale integer data to the target's bounds and cast it to float32)",
            describe(f"dtype {xs.dtype}"),
        )
    if xs.ndim < 2 or xs.shape[0] == 0:
        raise invalid_parameter(
            "x", owner, "an array (n, *input_shape) with at least one sample", describe(f"shape {xs.shape}")
        )
    input_shape = target.input_shape
    if input_shape is not None and tuple(xs.shape[1:]) != tuple(input_shape):
        raise invalid_parameter(
            "x",
            owner,
            f"an array of shape (n, {', '.join(str(d) for d in input_shape)}) for target {target.name!r}",
            describe(f"shape {xs.shape}"),
        )
    if not np.all(np.isfinite(xs)):
        raise invalid_parameter("x", owner, "finite (no NaN or inf)", describe("non-finite values"))
    low, high = target.bounds
    x_min, x_max = float(xs.min()), float(xs.max())
    if x_min < low or x_max > high:
        raise invalid_parameter(
            "x",
            owner,
            f"within the target's bounds [{low:g}, {high:g}] (pass --bounds or rescale the data)",
            describe(f"values in [{x_min:g}, {x_max:g}]"),
        )
    if ys.dtype.kind not in "iu":
        raise invalid_parameter("y", owner, "an integer array of labels", describe(f"dtype {ys.dtype}"))
    if ys.shape != (xs.shape[0],):
        raise invalid_parameter(
            "y",
            owner,
            f"an array of shape ({xs.shape[0]},), one label per sample of x",
            describe(f"shape {ys.shape}"),
        )
    k = target.num_classes
    if int(ys.min()) < 0 or int(ys.max()) >= k:
        raise invalid_parameter(
            "y",
            owner,
            f"labels in [0, {k}) for a target with {k} classes",
            describe(f"labels in [{int(ys.min())}, {int(ys.max())}]"),
        )
    return xs, ys.astype(np.int64, copy=False)
