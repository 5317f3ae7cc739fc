"""Model adapters (PyTorch, scikit-learn, ONNX Runtime, HTTP endpoints) and loading, scan first.

Every adapter implements the :class:`Target` protocol; :class:`TorchTarget` also implements
:class:`Differentiable`. :func:`load_target` opens a model file, ``file.py:factory`` or URL and
picks the adapter, after scanning every model file with mlarmor's static scanner.

Output obfuscation (:class:`ObfuscatedTarget`, :func:`obfuscate_scores`) is a run-time defense and
lives in :mod:`mlarmor.defenses.runtime`; it is still importable from here, loaded on first use
(PEP 562), since importing it eagerly would import :mod:`mlarmor.defenses`, which imports this package.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlarmor.targets._common import looks_like_probabilities
from mlarmor.targets.base import Capability, Differentiable, Target
from mlarmor.targets.http import HttpTarget
from mlarmor.targets.loading import load_target, scan_before_load
from mlarmor.targets.onnx import OnnxTarget
from mlarmor.targets.recipe import Recipe, SklearnRecipe, TorchRecipe, load_recipe, recipe_for
from mlarmor.targets.sklearn import SklearnTarget
from mlarmor.targets.torch import InputSpace, TorchTarget

if TYPE_CHECKING:
    from mlarmor.defenses.runtime.obfuscation import ObfuscatedTarget, obfuscate_scores

_MOVED = {"ObfuscatedTarget", "obfuscate_scores"}

__all__ = [
    "Capability",
    "Differentiable",
    "HttpTarget",
    "InputSpace",
    "ObfuscatedTarget",
    "OnnxTarget",
    "Recipe",
    "SklearnRecipe",
    "SklearnTarget",
    "Target",
    "TorchRecipe",
    "TorchTarget",
    "load_recipe",
    "load_target",
    "looks_like_probabilities",
    "obfuscate_scores",
    "recipe_for",
    "scan_before_load",
]


def __getattr__(name: str) -> Any:
    """The output-obfuscation names, moved to :mod:`mlarmor.defenses.runtime`, on first use."""
    if name in _MOVED:
        from mlarmor.defenses.runtime import obfuscation

        return getattr(obfuscation, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
