"""The PyTorch adapter: :class:`TorchTarget`, a white-box :class:`~mlarmor.targets.base.Differentiable`."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mlarmor._validation import check_bounds, check_int, check_num_classes
from mlarmor.errors import InvalidParameterError, UnsupportedModelError, invalid_parameter
from mlarmor.targets._common import (
    AdapterBase,
    as_batch,
    check_input_shape,
    check_stats,
    fmt_shape,
    looks_like_probabilities,
    missing_num_classes,
    stats_shape,
)
from mlarmor.targets.base import Capability

__all__ = ["InputSpace", "TorchTarget"]

_OWNER = "TorchTarget"
_PROBE_ROWS = 4


class TorchTarget(AdapterBase):
    """A PyTorch classifier seen in input space, with gradients.

    The module is put in eval mode and moved to ``device`` (both in place). Normalisation is part
    of the adapter: :meth:`logits` takes inputs in ``bounds`` (input space), subtracts ``mean`` and
    divides by ``std`` (one value, one per channel for inputs ``(n, C, ...)`` or one per feature for
    inputs ``(n, F)``), then runs the module, so gradients flow back to input space.

    When ``input_shape`` is given the module is run once on a small probe batch inside ``bounds``
    (not counted as queries) to check that it accepts such inputs, to infer ``num_classes`` from the
    output width and to detect a forward pass that already returns probabilities
    (:attr:`outputs_probabilities`). Without ``input_shape``, ``num_classes`` is required and the
    detection happens on the first batch the model sees.

    Args:
        module: The model, a ``torch.nn.Module`` (eager or TorchScript) returning ``(n, classes)``.
        bounds: Valid input range ``(low, high)`` in input space.
        num_classes: Number of classes; inferred from a probe when ``input_shape`` is given.
        input_shape: Shape of one input without the batch axis, e.g. ``(1, 8, 8)``; inputs are checked
            against it.
        mean: Normalisation mean: a float, or one per channel / feature. Defaults to 0.
        std: Normalisation standard deviation, same form as ``mean``, > 0. Defaults to 1.
        device: Where the model runs (``"cpu"`` unless you ask for ``"cuda"``).
        batch_size: Rows per forward pass in :meth:`predict` and :meth:`predict_proba`.
        name: Human-readable identification; defaults to the module's class name.

    Raises:
        InvalidParameterError: A parameter is out of its domain, or ``num_classes`` cannot be inferred.
        UnsupportedModelError: The module is not a ``torch.nn.Module`` or fails on the probe batch.

    Example:
        >>> import torch
        >>> from mlarmor.targets import TorchTarget
        >>> net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10))
        >>> target = TorchTarget(net, bounds=(0.0, 1.0), input_shape=(1, 8, 8), mean=0.5, std=0.25)
        >>> target.num_classes, sorted(target.capabilities)
        (10, ['gradients', 'labels', 'scores'])
        >>> target.logits(torch.zeros(2, 1, 8, 8)).shape
        torch.Size([2, 10])
    """

    def __init__(
        self,
        module: torch.nn.Module,
        *,
        bounds: tuple[float, float] | Sequence[float],
        num_classes: int | None = None,
        input_shape: tuple[int, ...] | None = None,
        mean: float | Sequence[float] | np.ndarray | None = None,
        std: float | Sequence[float] | np.ndarray | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 256,
        name: str | None = None,
    ) -> None:
        if not isinstance(module, torch.nn.Module):
            raise UnsupportedModelError(
                f"TorchTarget wraps a torch.nn.Module. Got {type(module).__name__} instead; use "
                "SklearnTarget, OnnxTarget or HttpTarget for other models, or load_target for a file."
            )
        self._bounds = check_bounds(bounds, _OWNER)
        self._num_classes = check_num_classes(num_classes, _OWNER)
        self._input_shape = check_input_shape(input_shape, _OWNER)
        self._batch_size = check_int(batch_size, "batch_size", _OWNER)
        try:
            self._device = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise invalid_parameter(
                "device", _OWNER, "a torch device such as 'cpu' or 'cuda:0'", device
            ) from e
        param = next(iter(module.parameters()), None)
        self._dtype = param.dtype if param is not None and param.dtype.is_floating_point else torch.float32
        try:
            self._module = module.to(self._device).eval()
        except (RuntimeError, AssertionError) as e:  # torch asserts CUDA availability
            raise invalid_parameter("device", _OWNER, "an available torch device", str(device)) from e
        self._name = name or type(module).__name__
        mean_arr = check_stats(mean, "mean", _OWNER, positive=False)
        std_arr = check_stats(std, "std", _OWNER, positive=True)
        if (
            mean_arr is not None
            and std_arr is not None
            and 1 not in (mean_arr.size, std_arr.size)
            and mean_arr.size != std_arr.size
        ):
            raise InvalidParameterError(
                f"The 'mean' and 'std' parameters of {_OWNER} must have the same length (or one of "
                f"them a single value). Got {mean_arr.size} and {std_arr.size} values instead."
            )
        self._mean = (
            None if mean_arr is None else torch.as_tensor(mean_arr, dtype=self._dtype).to(self._device)
        )
        self._std = None if std_arr is None else torch.as_tensor(std_arr, dtype=self._dtype).to(self._device)
        self._queries = 0
        self._outputs_probabilities: bool | None = None
        if self._input_shape is not None:
            self._probe(self._input_shape)
        if self._num_classes is None:
            raise missing_num_classes(
                _OWNER, "no input_shape was given to probe the model with", "pass input_shape=(...)"
            )

    def _probe(self, input_shape: tuple[int, ...]) -> None:
        low, high = self._bounds
        gen = torch.Generator().manual_seed(0)
        probe = low + (high - low) * torch.rand((_PROBE_ROWS, *input_shape), generator=gen)
        probe[0] = (low + high) / 2
        probe = probe.to(device=self._device, dtype=self._dtype)
        for stat in (self._mean, self._std):
            if stat is not None:
                stats_shape(stat.numel(), (_PROBE_ROWS, *input_shape), _OWNER)
        try:
            with torch.no_grad():
                out = self._module(self._normalize(probe))
        except Exception as e:  # the user's forward pass can raise anything
            raise UnsupportedModelError(
                f"Model {self._name!r} fails on inputs of shape {fmt_shape(input_shape, batch=False)}: "
                f"{type(e).__name__}: {e}. Check input_shape (and mean/std)."
            ) from e
        if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != _PROBE_ROWS:
            got = fmt_shape(tuple(out.shape)) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UnsupportedModelError(
                f"Model {self._name!r} must return a tensor of shape (n, classes); for a probe batch of "
                f"{_PROBE_ROWS} inputs it returned {got}."
            )
        width = int(out.shape[1])
        if self._num_classes is not None and width != self._num_classes:
            raise InvalidParameterError(
                f"The 'num_classes' parameter of {_OWNER} is {self._num_classes}, but model {self._name!r} "
                f"returns {width} outputs per input. Pass num_classes={width} or fix the model."
            )
        if width < 2:
            raise UnsupportedModelError(
                f"Model {self._name!r} returns {width} output per input; a classifier needs one logit per "
                "class (for a binary model with one logit, return torch.cat([-z, z], dim=1) / 2)."
            )
        self._num_classes = width
        self._outputs_probabilities = looks_like_probabilities(out.double().cpu().numpy())

    # -- Target protocol ----------------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Gradients, scores and labels."""
        return frozenset(("gradients", "scores", "labels"))

    @property
    def num_classes(self) -> int:
        """Number of classes (given or inferred from the output width)."""
        if self._num_classes is None:  # pragma: no cover - the constructor guarantees it
            raise missing_num_classes(_OWNER, "no probe was possible")
        return self._num_classes

    @property
    def device(self) -> torch.device:
        """Where the module's tensors live."""
        return self._device

    @property
    def module(self) -> torch.nn.Module:
        """The wrapped module (in eval mode; normalisation is *not* part of it, see :meth:`normalize`)."""
        return self._module

    @property
    def batch_size(self) -> int:
        """Rows per forward pass in :meth:`predict` and :meth:`predict_proba`."""
        return self._batch_size

    @property
    def outputs_probabilities(self) -> bool | None:
        """Whether the forward pass already returns probabilities (non-negative rows summing to 1).

        Detected on the probe batch when ``input_shape`` is known, otherwise on the first batch the
        model sees (``None`` until then). Such a model hides its logits: gradient-based attacks on
        it are weak and their results must be flagged.
        """
        return self._outputs_probabilities

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the adapter's normalisation to input-space ``x`` (differentiable, no query counted)."""
        return self._normalize(x)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Model outputs ``(n, num_classes)`` for input-space ``x``, with autograd; counts queries.

        ``x`` is cast to the model's dtype and moved to :attr:`device`. When
        :attr:`outputs_probabilities` is true these outputs are the model's probabilities.
        """
        x = self._check_tensor(x)
        out = self._forward(x)
        self._queries += int(x.shape[0])
        return out

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, num_classes)``, float64: softmax of the logits, batched, no grad.

        A model that already outputs probabilities (:attr:`outputs_probabilities`) is not softmaxed twice.
        """
        out = self._run_numpy(x)
        if self._outputs_probabilities:
            probs = out.clamp_min(0.0)
            probs = probs / probs.sum(dim=1, keepdim=True).clamp_min(1e-12)
        else:
            probs = torch.softmax(out.double(), dim=1)
        result: np.ndarray = probs.double().cpu().numpy()
        return result

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels ``(n,)``, int64 (arg-max of the outputs), batched, no grad."""
        result: np.ndarray = self._run_numpy(x).argmax(dim=1).cpu().numpy().astype(np.int64)
        return result

    def __repr__(self) -> str:
        return (
            f"TorchTarget(name={self._name!r}, bounds={self._bounds}, num_classes={self._num_classes}, "
            f"input_shape={self._input_shape}, device={str(self._device)!r})"
        )

    # -- internals ----------------------------------------------------------------------------------

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        if self._mean is not None:
            x = x - self._mean.view(stats_shape(self._mean.numel(), tuple(x.shape), _OWNER))
        if self._std is not None:
            x = x / self._std.view(stats_shape(self._std.numel(), tuple(x.shape), _OWNER))
        return x

    def _check_tensor(self, x: object) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise InvalidParameterError(
                f"The 'x' parameter of {_OWNER}.logits must be a torch.Tensor. Got {type(x).__name__} "
                "instead (use predict/predict_proba for numpy arrays)."
            )
        if x.is_complex() or x.dtype == torch.bool:
            raise InvalidParameterError(
                f"The 'x' parameter of {_OWNER}.logits must have a real floating dtype. "
                f"Got {x.dtype} instead."
            )
        expected = fmt_shape(self._input_shape, batch=False) if self._input_shape else "(n, ...)"
        if x.ndim < 2 or (self._input_shape is not None and tuple(x.shape[1:]) != self._input_shape):
            raise InvalidParameterError(
                f"The 'x' parameter of {_OWNER}.logits must have shape {expected}. "
                f"Got shape {fmt_shape(tuple(x.shape))} instead."
            )
        return x.to(device=self._device, dtype=self._dtype)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        n = int(x.shape[0])
        if n == 0:
            return torch.zeros((0, self.num_classes), dtype=self._dtype, device=self._device)
        out = self._module(self._normalize(x))
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != (n, self.num_classes):
            got = fmt_shape(tuple(out.shape)) if isinstance(out, torch.Tensor) else type(out).__name__
            raise UnsupportedModelError(
                f"Model {self._name!r} must return a tensor of shape ({n}, {self.num_classes}) for {n} "
                f"inputs; it returned {got}."
            )
        if self._outputs_probabilities is None:
            self._outputs_probabilities = looks_like_probabilities(out.detach().double().cpu().numpy())
        return out

    def _run_numpy(self, x: np.ndarray) -> torch.Tensor:
        arr = as_batch(x, self._input_shape, _OWNER)
        outs: list[torch.Tensor] = []
        with torch.no_grad():
            for start in range(0, max(arr.shape[0], 1), self._batch_size):
                part = arr[start : start + self._batch_size]
                # torch cannot share read-only memory (an EvasionResult's arrays): copy those.
                chunk = torch.as_tensor(part if part.flags.writeable else part.copy())
                chunk = chunk.to(device=self._device, dtype=self._dtype)
                outs.append(self._forward(chunk).detach())
                self._queries += int(chunk.shape[0])
        return torch.cat(outs) if len(outs) > 1 else outs[0]


class InputSpace(torch.nn.Module):
    """A :class:`TorchTarget`'s module with the target's normalisation in front of it.

    Training and inspecting code hands this to functions that take a plain ``nn.Module`` working on
    input-space data (``[low, high]`` images, not normalised ones). The wrapped module is the
    target's own (shared, not copied) and appears as the submodule ``inner``: its layer ``"3"`` is
    ``"inner.3"`` here. The normalisation statistics are non-persistent buffers, so a deep copy is
    self-contained and ``inner.state_dict()`` is the model's own.
    """

    mean: torch.Tensor | None
    std: torch.Tensor | None

    def __init__(self, target: TorchTarget) -> None:
        super().__init__()
        self.inner = target.module
        self.register_buffer("mean", target._mean, persistent=False)
        self.register_buffer("std", target._std, persistent=False)

    @staticmethod
    def layer(name: str) -> str:
        """This wrapper's name for the user's layer ``name`` (``"3"`` -> ``"inner.3"``)."""
        return f"inner.{name}"

    @staticmethod
    def user_layer(name: str) -> str:
        """The user's name for this wrapper's layer ``name`` (``"inner.3"`` -> ``"3"``)."""
        return name.removeprefix("inner.")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The target's logits for input-space ``x`` (normalised, then the wrapped module)."""
        if self.mean is not None:
            x = x - self.mean.view(stats_shape(self.mean.numel(), tuple(x.shape), _OWNER))
        if self.std is not None:
            x = x / self.std.view(stats_shape(self.std.numel(), tuple(x.shape), _OWNER))
        out: torch.Tensor = self.inner(x)
        return out
