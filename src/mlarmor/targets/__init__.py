"""Model adapters (PyTorch, scikit-learn, ONNX Runtime, HTTP endpoints) and loading, scan first.

Every adapter implements the :class:`Target` protocol; :class:`TorchTarget` also implements
:class:`Differentiable`. :func:`load_target` opens a model file, ``file.py:factory`` or URL and
picks the adapter, after scanning every model file with mlarmor's static scanner.
"""

from __future__ import annotations

from mlarmor.targets._common import looks_like_probabilities
from mlarmor.targets.base import Capability, Differentiable, Target
from mlarmor.targets.http import HttpTarget
from mlarmor.targets.loading import load_target, scan_before_load
from mlarmor.targets.obfuscation import ObfuscatedTarget, obfuscate_scores
from mlarmor.targets.onnx import OnnxTarget
from mlarmor.targets.recipe import Recipe, SklearnRecipe, TorchRecipe, load_recipe, recipe_for
from mlarmor.targets.sklearn import SklearnTarget
from mlarmor.targets.torch import InputSpace, TorchTarget

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
