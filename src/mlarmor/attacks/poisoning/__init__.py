"""Poisoning simulators: label flips and dirty-label backdoors (BadNets, blended, WaNet triggers)."""

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
    "flip_labels",
    "patch_trigger",
    "poison",
    "warp_field",
    "warp_trigger",
]
