"""Label flipping as a registered attack: ``label-flip`` (kernel: :func:`flip_labels`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from mlarmor.attacks.poisoning.base import PoisoningAttack, Predict, _labels_of
from mlarmor.attacks.poisoning.triggers import Bounds, Poisoned, flip_labels
from mlarmor.attacks.registry import register
from mlarmor.errors import invalid_parameter

__all__ = ["LabelFlip"]


@register("label-flip")
@dataclass(frozen=True, kw_only=True, slots=True)
class LabelFlip(PoisoningAttack):
    """Flip the labels of a share of the rows; the inputs stay as they are.

    With a ``source_class`` the flip is targeted: rows of that class get the call's
    ``target_class``, and the success rate is the share of source-class test inputs the trained
    model puts in the target class. Without one, random rows get random other classes (the call's
    ``target_class`` is not used) and there is no success rate: they cost accuracy.

    Reference:
        Biggio, Nelson & Laskov, "Poisoning Attacks against Support Vector Machines", ICML 2012,
        https://arxiv.org/abs/1206.6389 (label flipping as the baseline poisoning attack).

    Threat model:
        The attacker relabels a share of the training rows (noisy or malicious annotators; MITRE
        ATLAS AML.T0020, OWASP ML02).

    Attributes:
        source_class: Flip only this class's rows, to the target class; ``None`` for random flips.
    """

    source_class: int | None = None

    @property
    def backdoor(self) -> bool:
        """A targeted flip is reported with the backdoors: it sends one class to the attacker's."""
        return self.source_class is not None

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
        """Flip ``round(fraction * eligible)`` labels (:func:`flip_labels`); ``num_classes`` is required."""
        if num_classes is None:
            raise invalid_parameter("num_classes", "LabelFlip", "an int >= 2", num_classes)
        return flip_labels(
            x,
            y,
            fraction=fraction,
            num_classes=num_classes,
            target_class=target_class if self.source_class is not None else None,
            source_class=self.source_class,
            seed=seed,
        )

    def success_rate(
        self, predict: Predict, poisoned: Poisoned, x_test: npt.ArrayLike, y_test: npt.ArrayLike
    ) -> float | None:
        """Share of the source-class test inputs predicted as the target; ``None`` for random flips."""
        self._check_result(poisoned, "label-flip")
        if self.source_class is None or poisoned.target_class is None:
            return None
        rows = np.asarray(y_test) == self.source_class
        return float(np.mean(_labels_of(predict, np.asarray(x_test)[rows]) == poisoned.target_class))
