"""The ONNX Runtime adapter: :class:`OnnxTarget`, a black-box target with scores and labels."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from mlarmor._validation import check_bounds, check_choice, check_int, check_num_classes
from mlarmor.errors import InputError, InvalidParameterError, UnsupportedModelError
from mlarmor.targets._common import (
    AdapterBase,
    as_batch,
    check_input_shape,
    check_stats,
    fmt_shape,
    looks_like_probabilities,
    missing_num_classes,
    softmax,
    stats_shape,
)
from mlarmor.targets._onnx_labels import graph_class_labels
from mlarmor.targets.base import Capability

__all__ = ["OnnxTarget"]

logger = logging.getLogger(__name__)

_OWNER = "OnnxTarget"
_PROBE_ROWS = 4
_INPUT_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(float16)": np.float16,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
}
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(double)", "tensor(float16)")
OutputsMode = Literal["auto", "logits", "probabilities"]


class OnnxTarget(AdapterBase):
    """An ONNX classifier run by ONNX Runtime on the CPU, with scores and labels.

    Works with plain logits models (for instance from ``torch.onnx.export``) and with scikit-learn
    models converted by skl2onnx, whose graphs have a label output and a probability output; the
    latter is often a ZipMap (a list of ``{class: probability}`` dicts), which is turned back into a
    ``(n, C)`` array with columns in sorted class order (scikit-learn's ``classes_`` order).
    When the graph names its classes (the ``classlabels_strings`` / ``classlabels_int64s`` of its
    classifier and ZipMap nodes, read statically), :attr:`class_labels` gives them in column order,
    and the verbs match the data's labels to them.

    The adapter reads the model; it does not scan it. Load untrusted files with
    :func:`~mlarmor.targets.load_target`, which scans first.

    Args:
        path_or_bytes: Path of the ``.onnx`` file, or its serialised bytes.
        bounds: Valid input range ``(low, high)`` in input space.
        num_classes: Number of classes; inferred from the output shape or a probe run when possible.
        input_name: The graph input to feed; required when the graph has several inputs.
        output_name: The graph output with the class scores; by default the first 2-D float output
            (preferring one whose name contains ``prob``), else a ZipMap output.
        outputs: What that output holds: ``"logits"`` (softmax is applied), ``"probabilities"`` (used as
            they are) or ``"auto"``: probabilities when every row of the first batch (a probe batch
            when the input shape is known) is non-negative and sums to 1, logits otherwise. A
            single-column output is a binary score: a logit ``z`` (classes ``-z/2, z/2``) unless
            ``outputs="probabilities"``, where it is ``p`` (classes ``1 - p, p``).
        input_shape: Shape of one input without the batch axis; read from the graph when static.
        mean: Normalisation mean applied before the graph (a float, or one per channel / feature).
        std: Normalisation standard deviation, same form as ``mean``, > 0.
        batch_size: Rows per run.
        name: Human-readable identification; defaults to the file name.

    Raises:
        InputError: The file does not exist or cannot be read.
        InvalidParameterError: A parameter is out of its domain or ``num_classes`` cannot be inferred.
        UnsupportedModelError: ONNX Runtime cannot load the model, or no usable input/output was found.
    """

    def __init__(
        self,
        path_or_bytes: str | os.PathLike[str] | bytes,
        *,
        bounds: tuple[float, float] | Sequence[float],
        num_classes: int | None = None,
        input_name: str | None = None,
        output_name: str | None = None,
        outputs: OutputsMode = "auto",
        input_shape: tuple[int, ...] | None = None,
        mean: float | Sequence[float] | np.ndarray | None = None,
        std: float | Sequence[float] | np.ndarray | None = None,
        batch_size: int = 256,
        name: str | None = None,
    ) -> None:
        self._bounds = check_bounds(bounds, _OWNER)
        given_classes = check_num_classes(num_classes, _OWNER)
        mode = check_choice(outputs, "outputs", _OWNER, ("auto", "logits", "probabilities"))
        self._batch_size = check_int(batch_size, "batch_size", _OWNER)
        self._mean = check_stats(mean, "mean", _OWNER, positive=False)
        self._std = check_stats(std, "std", _OWNER, positive=True)
        if isinstance(path_or_bytes, bytes | bytearray):
            self._name = name or "<onnx bytes>"
        else:
            self._name = name or Path(path_or_bytes).name
        self._session = _open_session(path_or_bytes, self._name)

        inputs = {i.name: i for i in self._session.get_inputs()}
        if input_name is None:
            if len(inputs) != 1:
                raise UnsupportedModelError(
                    f"{self._name} has {len(inputs)} inputs {sorted(inputs)}; pass input_name=... "
                    "to choose one."
                )
            input_name = next(iter(inputs))
        if input_name not in inputs:
            raise InvalidParameterError(
                f"The 'input_name' parameter of {_OWNER} must be one of {sorted(inputs)}. "
                f"Got {input_name!r} instead."
            )
        node = inputs[input_name]
        if node.type not in _INPUT_TYPES:
            raise UnsupportedModelError(
                f"Input {input_name!r} of {self._name} has type {node.type}; supported input types: "
                f"{', '.join(_INPUT_TYPES)}."
            )
        self._input_name = input_name
        self._input_dtype = _INPUT_TYPES[node.type]
        static = _static_dims(node.shape)
        graph_shape = static[1:] if static is not None and len(static) >= 2 else None
        shape = check_input_shape(input_shape, _OWNER)
        if shape is not None and graph_shape is not None and shape != graph_shape:
            raise InvalidParameterError(
                f"The 'input_shape' parameter of {_OWNER} must match the graph input "
                f"{fmt_shape(graph_shape, batch=False)}. Got {shape} instead."
            )
        self._input_shape = shape or graph_shape

        self._output_name, self._zipmap, width = _pick_output(self._session, output_name, self._name)
        if width is not None and given_classes is not None and width != given_classes:
            raise InvalidParameterError(
                f"The 'num_classes' parameter of {_OWNER} is {given_classes}, but output "
                f"{self._output_name!r} of {self._name} has {width} columns."
            )
        self._num_classes = given_classes if given_classes is not None else width
        self._class_labels = graph_class_labels(path_or_bytes, zipmap_output=self._zipmap)
        self._mode = cast(OutputsMode, mode)
        self._queries = 0
        if self._input_shape is not None and (self._num_classes is None or self._mode == "auto"):
            self._probe(self._input_shape, given_classes)
        if self._num_classes is None:
            raise missing_num_classes(
                _OWNER, f"output {self._output_name!r} has no static width and the input shape is unknown"
            )
        if self._class_labels is not None and len(self._class_labels) != self._num_classes:
            self._class_labels = None  # labels that do not fit the scores name nothing reliably

    def _probe(self, input_shape: tuple[int, ...], given_classes: int | None) -> None:
        low, high = self._bounds
        rng = np.random.default_rng(0)
        probe = rng.uniform(low, high, size=(_PROBE_ROWS, *input_shape))
        probe[0] = (low + high) / 2
        try:
            raw = self._run(probe)
        except (InvalidParameterError, UnsupportedModelError) as e:
            raise UnsupportedModelError(
                f"{self._name} fails on inputs of shape {fmt_shape(input_shape, batch=False)}: {e}"
            ) from e
        width = 2 if raw.shape[1] == 1 else raw.shape[1]
        if given_classes is not None and width != given_classes:
            raise InvalidParameterError(
                f"The 'num_classes' parameter of {_OWNER} is {given_classes}, but {self._name} returns "
                f"{width} class scores per input."
            )
        self._num_classes = width
        if self._mode == "auto":
            self._resolve_mode(raw)

    def _resolve_mode(self, raw: np.ndarray) -> None:
        self._mode = "probabilities" if looks_like_probabilities(raw) else "logits"
        logger.debug("%s: output %r treated as %s", self._name, self._output_name, self._mode)

    # -- Target protocol ----------------------------------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Scores and labels."""
        return frozenset(("scores", "labels"))

    @property
    def num_classes(self) -> int:
        """Number of classes (given, read from the output shape, or probed)."""
        if self._num_classes is None:  # pragma: no cover - the constructor guarantees it
            raise missing_num_classes(_OWNER, "unknown output width")
        return self._num_classes

    @property
    def input_name(self) -> str:
        """The graph input fed with ``x``."""
        return self._input_name

    @property
    def output_name(self) -> str:
        """The graph output read as class scores."""
        return self._output_name

    @property
    def outputs(self) -> OutputsMode:
        """What the output holds: ``"logits"`` or ``"probabilities"`` (``"auto"`` until resolved)."""
        return self._mode

    @property
    def outputs_probabilities(self) -> bool | None:
        """Whether the output is used as probabilities (``None`` until ``"auto"`` is resolved)."""
        return None if self._mode == "auto" else self._mode == "probabilities"

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities ``(n, num_classes)``, float64."""
        raw = self._scores(x)
        if self._mode == "probabilities":
            p = np.clip(raw, 0.0, None)
            out: np.ndarray = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
            return out
        return softmax(raw)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predicted labels ``(n,)``, int64: the arg-max of the scores."""
        result: np.ndarray = self._scores(x).argmax(axis=1).astype(np.int64)
        return result

    def __repr__(self) -> str:
        return (
            f"OnnxTarget(name={self._name!r}, bounds={self._bounds}, num_classes={self._num_classes}, "
            f"input={self._input_name!r}, output={self._output_name!r}, outputs={self._mode!r})"
        )

    # -- internals ----------------------------------------------------------------------------------

    def _scores(self, x: np.ndarray) -> np.ndarray:
        arr = as_batch(x, self._input_shape, _OWNER)
        n = arr.shape[0]
        if n == 0:
            return np.zeros((0, self.num_classes))
        chunks = []
        for start in range(0, n, self._batch_size):
            chunk = arr[start : start + self._batch_size]
            chunks.append(self._run(chunk))
            self._queries += int(chunk.shape[0])
        raw = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        if self._mode == "auto":
            self._resolve_mode(raw)
        if raw.shape[1] == 1:
            raw = _binary_columns(raw, probabilities=self._mode == "probabilities")
        if raw.shape[1] != self.num_classes:
            raise UnsupportedModelError(
                f"Output {self._output_name!r} of {self._name} has {raw.shape[1]} columns; expected "
                f"{self.num_classes} (num_classes)."
            )
        return raw

    def _run(self, batch: np.ndarray) -> np.ndarray:
        feed = batch.astype(np.float64, copy=False)
        if self._mean is not None:
            feed = feed - self._mean.reshape(stats_shape(self._mean.size, feed.shape, _OWNER))
        if self._std is not None:
            feed = feed / self._std.reshape(stats_shape(self._std.size, feed.shape, _OWNER))
        try:
            (out,) = self._session.run(
                [self._output_name], {self._input_name: feed.astype(self._input_dtype)}
            )
        except Exception as e:  # onnxruntime raises its own (non-exported) exception types
            raise InvalidParameterError(
                f"{self._name} rejected inputs of shape {fmt_shape(batch.shape)}: {type(e).__name__}: {e}"
            ) from e
        if self._zipmap:
            rows: list[dict[Any, float]] = list(out)
            keys = sorted(rows[0]) if rows else []
            arr = np.asarray([[row[k] for k in keys] for row in rows], dtype=np.float64)
        else:
            arr = np.asarray(out, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr.reshape(-1, 1)
        if arr.ndim != 2 or arr.shape[0] != batch.shape[0]:
            raise UnsupportedModelError(
                f"Output {self._output_name!r} of {self._name} has shape {fmt_shape(arr.shape)} for "
                f"{batch.shape[0]} inputs; expected ({batch.shape[0]}, classes)."
            )
        return arr


def _binary_columns(raw: np.ndarray, *, probabilities: bool) -> np.ndarray:
    if probabilities:
        return np.concatenate([1.0 - raw, raw], axis=1)
    return np.concatenate([-raw / 2, raw / 2], axis=1)


def _static_dims(shape: Sequence[object] | None) -> tuple[int, ...] | None:
    if not shape:
        return None
    dims = []
    for d in shape:
        if not isinstance(d, int) or d <= 0:
            dims.append(-1)
        else:
            dims.append(d)
    if any(d < 0 for d in dims[1:]):
        return None
    return tuple(dims)


def _open_session(path_or_bytes: str | os.PathLike[str] | bytes, name: str) -> Any:
    try:
        ort: Any = importlib.import_module("onnxruntime")
    except ImportError as e:  # pragma: no cover - onnxruntime is a dependency
        raise UnsupportedModelError("ONNX models need onnxruntime: pip install onnxruntime") from e
    source: str | bytes
    if isinstance(path_or_bytes, bytes | bytearray):
        source = bytes(path_or_bytes)
    else:
        path = Path(path_or_bytes)
        if not path.is_file():
            raise InputError(f"{path} does not exist or is not a file. Check the path.")
        source = str(path)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(source, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own (non-exported) exception types
        raise UnsupportedModelError(
            f"ONNX Runtime cannot load {name}: {type(e).__name__}: {e}. Check that it is a valid ONNX model."
        ) from e


def _pick_output(session: Any, output_name: str | None, name: str) -> tuple[str, bool, int | None]:
    """Choose the score output; return its name, whether it is a ZipMap and its static width."""
    outputs = {o.name: o for o in session.get_outputs()}
    if output_name is not None:
        if output_name not in outputs:
            raise InvalidParameterError(
                f"The 'output_name' parameter of {_OWNER} must be one of {sorted(outputs)}. "
                f"Got {output_name!r} instead."
            )
        chosen = outputs[output_name]
        usable = chosen.type in _FLOAT_OUTPUTS or chosen.type.startswith("seq(map(")
        if not usable:
            raise UnsupportedModelError(
                f"Output {output_name!r} of {name} has type {chosen.type}; class scores must be a float "
                "tensor or a ZipMap (seq(map(...)))."
            )
    else:
        tensors = [o for o in outputs.values() if o.type in _FLOAT_OUTPUTS and len(o.shape or ()) in (0, 2)]
        maps = [o for o in outputs.values() if o.type.startswith("seq(map(")]
        named = [o for o in tensors if "prob" in o.name.lower()]
        candidates = named or tensors or maps
        if not candidates:
            listing = ", ".join(f"{o.name}: {o.type}" for o in outputs.values())
            raise UnsupportedModelError(
                f"{name} has no output with class scores ({listing}); pass output_name=... to choose one."
            )
        chosen = candidates[0]
    zipmap = chosen.type.startswith("seq(map(")
    width = None
    if not zipmap and chosen.shape and len(chosen.shape) == 2 and isinstance(chosen.shape[1], int):
        width = 2 if chosen.shape[1] == 1 else int(chosen.shape[1])
    return chosen.name, zipmap, width
