"""Poisoning attacks: label flips, dirty-label backdoors, clean-label gradient matching.

Registered configurations (``create(name, **params)``), one call each,
``attack(x, y, fraction=..., target_class=..., bounds=..., num_classes=..., seed=...) -> Poisoned``,
and one measurement, ``attack.success_rate(predict, poisoned, x_test, y_test)``: ``badnets``
(:class:`BadNets`), ``blend`` (:class:`Blend`), ``warp`` (:class:`Warp`), ``label-flip``
(:class:`LabelFlip`), ``feature-trigger`` (:class:`FeatureTrigger`, the backdoor for tables) and
``clean-label`` (:class:`CleanLabel`, Witches' Brew, which also takes the
training ``recipe`` and held-out ``x_test``, ``y_test``). The functional kernels they call
(:func:`poison`, :func:`flip_labels`, :func:`apply_trigger`, :func:`gradient_matching`, ...) are
public too.
"""

from mlarmor.attacks.poisoning.backdoors import BadNets, Blend, Warp
from mlarmor.attacks.poisoning.base import PoisoningAttack
from mlarmor.attacks.poisoning.clean_label import CleanLabel, clean_label_success_rate, gradient_matching
from mlarmor.attacks.poisoning.label_flip import LabelFlip
from mlarmor.attacks.poisoning.tabular import FeatureTrigger, apply_feature_trigger, feature_trigger_values
from mlarmor.attacks.poisoning.triggers import (
    Poisoned,
    Position,
    Trigger,
    apply_trigger,
    attack_success_rate,
    blend_trigger,
    flip_labels,
    patch_trigger,
    poison,
    poisoned_count,
    warp_field,
    warp_trigger,
)

__all__ = [
    "BadNets",
    "Blend",
    "CleanLabel",
    "FeatureTrigger",
    "LabelFlip",
    "Poisoned",
    "PoisoningAttack",
    "Position",
    "Trigger",
    "Warp",
    "apply_feature_trigger",
    "apply_trigger",
    "attack_success_rate",
    "blend_trigger",
    "clean_label_success_rate",
    "feature_trigger_values",
    "flip_labels",
    "gradient_matching",
    "patch_trigger",
    "poison",
    "poisoned_count",
    "warp_field",
    "warp_trigger",
]
