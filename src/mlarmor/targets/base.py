"""What every model adapter states and offers: the :class:`Target` and :class:`Differentiable` protocols.

An adapter owns the model's input bounds, its preprocessing (normalisation happens *inside* the
adapter, so attacks always work in input space), the number of classes and a query counter.
Capabilities say what an attacker can see:

- ``"gradients"``: white-box, a differentiable PyTorch forward pass in input space;
- ``"scores"``: class probabilities (or logits) for any input;
- ``"labels"``: decisions only.

numpy ↔ torch conversion happens only at the adapter boundary.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["Capability", "Differentiable", "Target"]

Capability = Literal["gradients", "scores", "labels"]


@runtime_checkable
class Target(Protocol):
    """A model under assessment, seen through what it exposes."""

    @property
    def name(self) -> str:
        """Human-readable identification (file name, URL, class)."""
        ...

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What the adapter can provide: a subset of gradients, scores, labels."""
        ...

    @property
    def bounds(self) -> tuple[float, float]:
        """Valid input range in input space (before the adapter's own preprocessing)."""
        ...

    @property
    def num_classes(self) -> int:
        """Number of output classes."""
        ...

    @property
    def input_shape(self) -> tuple[int, ...] | None:
        """Shape of one input (without the batch dimension), when known."""
        ...

    @property
    def queries(self) -> int:
        """Number of inputs sent to the model so far (each row of a batch counts once)."""
        ...

    def reset_queries(self) -> None:
        """Set the query counter back to zero."""
        ...

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels, shape ``(n,)``, dtype int64."""
        ...

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities, shape ``(n, num_classes)``; raises if ``"scores"`` is not a capability."""
        ...


@runtime_checkable
class Differentiable(Target, Protocol):
    """A white-box target: logits as a differentiable function of the (unnormalised) input."""

    @property
    def device(self) -> torch.device:
        """Where the model's tensors live."""
        ...

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(n, num_classes)`` for input-space ``x``, with autograd; counts queries."""
        ...
