"""Poisoning simulators: label flips, dirty-label backdoors, clean-label gradient matching.

Backdoor triggers: BadNets patch, blended key, WaNet-style warp; clean-label: Witches' Brew.
"""

from mlarmor.attacks.poisoning.clean_label import clean_label_success_rate, gradient_matching
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
    warp_field,
    warp_trigger,
)

__all__ = [
    "Poisoned",
    "Position",
    "Trigger",
    "apply_trigger",
    "attack_success_rate",
    "blend_trigger",
    "clean_label_success_rate",
    "flip_labels",
    "gradient_matching",
    "patch_trigger",
    "poison",
    "warp_field",
    "warp_trigger",
]
