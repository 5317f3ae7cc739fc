"""The poisoning attack base: a frozen configuration whose call returns a poisoned training set.

Every poisoning attack is registered by name and has one call and one measurement::

    attack = create("badnets", size=3)
    poisoned = attack(x, y, fraction=0.05, target_class=0, bounds=(0.0, 1.0), num_classes=10, seed=0)
    model = train(poisoned.x, poisoned.y)
    asr = attack.success_rate(predict, poisoned, x_test, y_test)

The call never changes the arrays it is given and draws every random choice from ``seed``; the
result is a :class:`~mlarmor.attacks.poisoning.triggers.Poisoned` copy whose ``poisoned`` mask marks
exactly the rows changed. An attack that brews its poison on models trained like the victim's
(clean-label) declares ``needs_recipe`` and takes the training ``recipe`` and held-out ``x_test``,
``y_test`` (its victims are drawn from them) in the same call; the others ignore those keywords.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import numpy.typing as npt

from mlarmor.attacks.base import AttackConfig
from mlarmor.attacks.poisoning.triggers import Bounds, Poisoned
from mlarmor.errors import invalid_parameter
from mlarmor.findings import Family

if TYPE_CHECKING:
    from mlarmor.targets.recipe import Recipe

__all__ = ["PoisoningAttack", "Predict"]

Predict = Callable[[np.ndarray], npt.ArrayLike]
"""A trained model's predictions: inputs to labels ``(n,)``, or to scores ``(n, C)`` (arg-max taken)."""


class PoisoningAttack(AttackConfig):
    """Base of the poisoning attacks: ``attack(x, y, ...)`` poisons, ``success_rate`` measures.

    Attributes:
        family: :attr:`Family.POISONING`.
        needs_recipe: Whether the call needs the training ``recipe`` and held-out data (it trains
            surrogate models); a simulation runs these after the cheap attacks.
    """

    __slots__ = ()

    family: ClassVar[Family] = Family.POISONING
    needs_recipe: ClassVar[bool] = False

    @abc.abstractmethod
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
        """Poison a share of the training set ``(x, y)``.

        Args:
            x: Training inputs ``(n, ...)`` within ``bounds`` (images for the trigger attacks).
            y: Integer labels ``(n,)``.
            fraction: Share of the eligible rows to poison, in ``(0, 1)`` (each attack says which
                rows are eligible).
            target_class: The class the attack leads inputs to.
            bounds: The input range ``(low, high)``; poisoned inputs stay within it.
            num_classes: Number of classes (defaults to what the attack can infer from ``y``).
            seed: Seed of every random choice.
            recipe: The victim's training recipe, for attacks that declare ``needs_recipe``.
            x_test: Held-out inputs, for attacks that draw victims from them.
            y_test: Their labels.

        Returns:
            The poisoned copy; ``poisoned.params`` holds what :meth:`success_rate` needs.

        Raises:
            InvalidParameterError: For invalid data or parameters, or a missing recipe.
        """

    @abc.abstractmethod
    def success_rate(
        self, predict: Predict, poisoned: Poisoned, x_test: npt.ArrayLike, y_test: npt.ArrayLike
    ) -> float | None:
        """The attack's success against a model trained on ``poisoned``, on clean held-out data.

        Args:
            predict: The trained model's predictions.
            poisoned: What this attack's call returned.
            x_test: Clean held-out inputs.
            y_test: Their labels.

        Returns:
            A rate in ``[0, 1]``, or ``None`` when the attack has no success of its own to measure
            (random label flips: they are measured by the accuracy they cost).
        """

    @property
    def backdoor(self) -> bool:
        """Whether its findings report a backdoor (OWASP ML10 with ML02): a trigger the attacker controls."""
        return False

    def _check_result(self, poisoned: Poisoned, trigger: str) -> None:
        if not isinstance(poisoned, Poisoned) or poisoned.trigger != trigger:
            raise invalid_parameter(
                "poisoned", type(self).__name__, f"the result of the {self.name!r} attack", poisoned
            )


def _labels_of(predict: Predict, x: np.ndarray) -> np.ndarray:
    """The predicted labels of ``x`` (arg-max of scores)."""
    pred = np.asarray(predict(x))
    return pred.argmax(axis=1) if pred.ndim == 2 else pred
