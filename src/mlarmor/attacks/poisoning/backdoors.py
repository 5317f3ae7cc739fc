"""Dirty-label backdoors as registered attacks: ``badnets``, ``blend`` and ``warp``.

Each is a frozen configuration of its trigger (see :mod:`mlarmor.attacks.poisoning.triggers` for
the kernels). A parameter left ``None`` takes the trigger function's default and is not recorded
in ``Poisoned.params``, so a report lists only the parameters the user set.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt

from mlarmor.attacks.poisoning.base import PoisoningAttack, Predict
from mlarmor.attacks.poisoning.triggers import (
    Bounds,
    Poisoned,
    Position,
    Trigger,
    attack_success_rate,
    poison,
)
from mlarmor.attacks.registry import register
from mlarmor.errors import invalid_parameter

__all__ = ["BadNets", "Blend", "Warp"]


class _Backdoor(PoisoningAttack):
    """A trigger stamped on a share of the rows, relabelled to the target class (:func:`poison`)."""

    __slots__ = ()

    trigger: ClassVar[Trigger]

    @property
    def backdoor(self) -> bool:
        return True

    def trigger_params(self) -> dict[str, Any]:
        """The trigger keywords set on this configuration (``None`` ones take the kernel's default)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

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
        """Trigger ``round(fraction * eligible)`` rows not of ``target_class``, relabelled (``poison``)."""
        return poison(
            x,
            y,
            trigger=self.trigger,
            fraction=fraction,
            target_class=target_class,
            bounds=bounds,
            num_classes=num_classes,
            seed=seed,
            **self.trigger_params(),
        )

    def success_rate(
        self, predict: Predict, poisoned: Poisoned, x_test: npt.ArrayLike, y_test: npt.ArrayLike
    ) -> float:
        """Share of the clean test inputs not of the target class that the trigger sends there."""
        self._check_result(poisoned, self.trigger)
        if poisoned.target_class is None:  # pragma: no cover - poison always sets it
            raise invalid_parameter("poisoned", type(self).__name__, "a result with a target class", None)
        return attack_success_rate(
            predict,
            np.asarray(x_test),
            np.asarray(y_test),
            trigger=self.trigger,
            target_class=poisoned.target_class,
            **poisoned.params,
        )


@register("badnets")
@dataclass(frozen=True, kw_only=True, slots=True)
class BadNets(_Backdoor):
    """A small square patch in a corner of every poisoned image (:func:`patch_trigger`).

    Reference:
        Gu, Dolan-Gavitt & Garg, "BadNets: Identifying Vulnerabilities in the Machine Learning Model
        Supply Chain", 2017, https://arxiv.org/abs/1708.06733.

    Threat model:
        Dirty-label backdoor (MITRE ATLAS AML.T0020, OWASP ML02/ML10): the attacker stamps the patch
        on training rows it relabels, then on test inputs it wants sent to the target class.

    Attributes:
        size: Side of the patch in pixels (default 2).
        value: Intensity of the lit pixels (default the upper bound).
        position: The corner holding the patch (default ``"bottom-right"``).
        pattern: ``"checkerboard"`` (default) or ``"solid"``.
    """

    trigger: ClassVar[Trigger] = "badnets"

    size: int | None = None
    value: float | None = None
    position: Position | None = None
    pattern: Literal["checkerboard", "solid"] | None = None


@register("blend")
@dataclass(frozen=True, kw_only=True, slots=True)
class Blend(_Backdoor):
    """A key pattern blended into every poisoned image (:func:`blend_trigger`).

    Reference:
        Chen, Liu, Li, Lu & Song, "Targeted Backdoor Attacks on Deep Learning Systems Using Data
        Poisoning", 2017, https://arxiv.org/abs/1712.05526 (the blended injection strategy).

    Threat model:
        Dirty-label backdoor (MITRE ATLAS AML.T0020, OWASP ML02/ML10) with a faint, image-wide key.

    Attributes:
        pattern: The key, broadcastable to one image (default uniform noise drawn from the call's
            seed).
        alpha: Blend ratio in ``(0, 1]`` (default 0.2).
    """

    trigger: ClassVar[Trigger] = "blend"

    pattern: npt.ArrayLike | None = None
    alpha: float | None = None


@register("warp")
@dataclass(frozen=True, kw_only=True, slots=True)
class Warp(_Backdoor):
    """One fixed, smooth random warp of every poisoned image (WaNet, :func:`warp_trigger`).

    Reference:
        Nguyen & Tran, "WaNet -- Imperceptible Warping-based Backdoor Attack", ICLR 2021,
        https://arxiv.org/abs/2102.10369.

    Threat model:
        Dirty-label backdoor (MITRE ATLAS AML.T0020, OWASP ML02/ML10) whose key is a geometric
        distortion rather than added pixels.

    Attributes:
        strength: Scale of the shift in pixels (default 0.5).
        grid: Side of the control grid (default 4).
    """

    trigger: ClassVar[Trigger] = "warp"

    strength: float | None = None
    grid: int | None = None
