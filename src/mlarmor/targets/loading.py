"""Load a model from a file, a ``file.py:factory`` or a URL as a :class:`~mlarmor.targets.base.Target`.

The rule: **every model file and every weights file is scanned by mlarmor's static scanner before
anything loads it.** A file whose verdict is ``high`` or ``critical`` is refused with
:class:`~mlarmor.errors.UnsafeModelError`, listing its top findings, unless ``trust=True``
(``--trust`` on the command line) — it is then scanned all the same and loaded with a warning in the
log. A file that passed the scan may be loaded with a full unpickler (``pickle.load``,
``joblib.load``, ``torch.load(weights_only=False)``) when its content needs one.

The Python file named by ``file.py:factory`` is *not* scanned: it is code the user asks mlarmor to
run, imported and executed as it is. Only its ``--weights`` file is scanned.
"""

from __future__ import annotations

import logging
import os
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlarmor._syspath import import_path
from mlarmor._validation import check_bounds
from mlarmor.errors import (
    InputError,
    InvalidParameterError,
    MlarmorError,
    UnsafeModelError,
    UnsupportedModelError,
    invalid_parameter,
)
from mlarmor.findings import Severity
from mlarmor.scan import FileResult, Scanner
from mlarmor.targets._common import name_classes
from mlarmor.targets._factory import load_factory, load_torch_file
from mlarmor.targets._imports import check_python_path, missing_module_error, warn_if_shadowed
from mlarmor.targets.base import Target
from mlarmor.targets.http import HttpTarget
from mlarmor.targets.onnx import OnnxTarget
from mlarmor.targets.sklearn import SklearnTarget

__all__ = ["load_target", "scan_before_load"]

logger = logging.getLogger(__name__)

_FACTORY = re.compile(r"^(?P<file>.+\.py):(?P<name>[A-Za-z_][A-Za-z0-9_]*)$", re.IGNORECASE)
_TOP_FINDINGS = 5
_SUPPORTED = (
    "TorchScript (.pt/.pth), ONNX (.onnx), scikit-learn (.joblib/.pkl/.pickle/.skops), "
    "file.py:factory with weights, or an http(s):// URL"
)

Stats = float | Sequence[float] | np.ndarray | None


def scan_before_load(
    path: str | os.PathLike[str], *, trust: bool = False, scanner: Scanner | None = None
) -> FileResult:
    """Scan ``path`` with mlarmor's static scanner and refuse it when its verdict is high or worse.

    Args:
        path: The model or weights file.
        trust: Return the result (and log a warning) instead of raising for an unsafe file.
        scanner: The scanner to use; the default policy and limits when ``None``.

    Returns:
        The scan result.

    Raises:
        InputError: The file does not exist or cannot be read.
        UnsafeModelError: The verdict is ``high`` or ``critical`` and ``trust`` is false.
    """
    result = (scanner or Scanner()).scan_file(path)
    if result.severity < Severity.HIGH:
        if result.findings:
            logger.info(
                "%s: scan verdict %s (%d findings)", path, result.severity.label, len(result.findings)
            )
        return result
    top = sorted(result.findings, key=lambda f: f.severity, reverse=True)[:_TOP_FINDINGS]
    listing = "; ".join(
        f"[{f.severity.label}] {f.id}: {f.title}"
        + (f" (member {f.location.member})" if f.location.member else "")
        for f in top
    )
    more = len(result.findings) - len(top)
    listing += f"; and {more} more" if more > 0 else ""
    if not trust:
        raise UnsafeModelError(
            f"{path} failed the scan (verdict: {result.severity.label}) and was not loaded: {listing}. "
            f"See `mlarmor scan {path}` for details. If you trust where this file comes from, pass "
            "trust=True (--trust) to load it anyway."
        )
    logger.warning(
        "%s failed the scan (verdict: %s) but is loaded because trust=True: %s",
        path,
        result.severity.label,
        listing,
    )
    return result


def load_target(
    model: str | os.PathLike[str],
    *,
    bounds: tuple[float, float] | Sequence[float],
    weights: str | os.PathLike[str] | None = None,
    num_classes: int | None = None,
    trust: bool = False,
    mean: Stats = None,
    std: Stats = None,
    input_shape: tuple[int, ...] | None = None,
    device: str = "cpu",
    headers: dict[str, str] | None = None,
    output: Literal["probabilities", "labels"] = "probabilities",
    request_key: str = "inputs",
    response_key: str | None = None,
    scanner: Scanner | None = None,
    python_path: Sequence[str | os.PathLike[str]] | None = None,
    class_labels: Sequence[str] | None = None,
) -> Target:
    """Open a model as a target: scan the file, then pick the adapter from its content.

    ``model`` can be:

    * ``model.pt`` / ``model.pth``: TorchScript (``torch.jit.load``), or a whole pickled module that
      passed the scan (a state dict alone is refused: use ``file.py:factory`` with ``weights``);
    * ``model.onnx``: ONNX Runtime (:class:`OnnxTarget`);
    * ``model.joblib`` / ``.pkl`` / ``.pickle``: a scikit-learn classifier (``joblib.load`` /
      ``pickle.load``) or a pickled torch module; ``model.skops`` needs the ``skops`` package;
    * ``file.py:factory``: the Python file is imported (not scanned: it is code you ask to run),
      ``factory()`` must return a ``torch.nn.Module``, and ``weights`` (a state dict saved with
      ``torch.save`` or a ``.safetensors`` file) is scanned, then loaded into it;
    * ``http://...`` / ``https://...``: a JSON endpoint (:class:`HttpTarget`; ``num_classes`` required).

    The format is sniffed from the content; the extension is only a hint.

    A whole pickled model (an ``nn.Module`` subclass saved with ``torch.save(model)``, a pipeline with
    a custom transformer) needs the module that defines its classes, e.g. ``mynet`` for ``mynet.Net``.
    It is imported from where Python already looks (installed packages, ``PYTHONPATH``) and from the
    ``python_path`` directories (``--python-path DIR``), which are on ``sys.path`` only while the file
    loads. mlarmor never imports from the model's folder or the working directory on its own: when
    the module is missing it looks for ``mynet.py`` (or a ``mynet/`` package) there, after the scan,
    and names what it found in the error.

    Args:
        model: Path, ``file.py:factory`` or URL.
        bounds: Valid input range ``(low, high)`` in input space.
        weights: State dict for ``file.py:factory``.
        num_classes: Number of classes, where it cannot be inferred (``--classes``).
        trust: Load a file even when the scan finds it unsafe (``--trust``).
        mean: Normalisation mean inside the adapter (PyTorch and ONNX models).
        std: Normalisation standard deviation inside the adapter (PyTorch and ONNX models).
        input_shape: Shape of one input without the batch axis, e.g. ``(1, 8, 8)``.
        device: Torch device for PyTorch models (``"cpu"`` by default).
        headers: HTTP headers for a URL, e.g. ``{"Authorization": "Bearer ..."}``.
        output: What a URL returns: ``"probabilities"`` or ``"labels"``.
        request_key: The JSON key a URL expects the inputs under.
        response_key: The JSON key of a URL's answer (``output``'s name when ``None``).
        scanner: Scanner used before loading; default policy and limits when ``None``.
        python_path: Directories to import the model's own Python modules from while it loads
            (``--python-path``). The modules imported stay in ``sys.modules``.
        class_labels: Names of the model's classes in the order of its outputs (``--classes
            NAME,NAME``), for models that do not name them (PyTorch, HTTP, ONNX without labels):
            the verbs match the data's labels through them. Must have one name per output; a model
            that names its own classes (scikit-learn ``classes_``, an ONNX classifier) must agree.

    Returns:
        A :class:`TorchTarget`, :class:`SklearnTarget`, :class:`OnnxTarget` or :class:`HttpTarget`.

    Raises:
        InputError: A file does not exist, cannot be read, the factory file fails to import, or a
            whole pickled model needs a Python module or class that cannot be imported.
        UnsafeModelError: A file failed the scan and ``trust`` is false.
        UnsupportedModelError: The content is not a supported model.
        InvalidParameterError: An option does not apply to this kind of model, or is out of its domain.

    Example:
        >>> from mlarmor.targets import load_target
        >>> target = load_target("model.onnx", bounds=(0.0, 1.0))  # doctest: +SKIP
    """
    if class_labels is not None:
        if isinstance(class_labels, str):
            class_labels = class_labels.split(",")
        if num_classes is not None and num_classes != len(class_labels):
            raise InvalidParameterError(
                f"The 'num_classes' parameter of load_target is {num_classes}, but {len(class_labels)} "
                "class_labels were given; give one or the other."
            )
        names = list(class_labels)

        def load(count: int | None) -> Target:
            return load_target(
                model, bounds=bounds, weights=weights, num_classes=count, trust=trust, mean=mean, std=std,
                input_shape=input_shape, device=device, headers=headers, output=output,
                request_key=request_key, response_key=response_key, scanner=scanner,
            )  # fmt: skip

        try:
            target = load(len(names) if _needs_count(model) else num_classes)
        except InvalidParameterError as e:
            # A model whose width cannot be probed takes it from the names, one per output.
            if num_classes is not None or "cannot infer the number of classes" not in str(e):
                raise
            target = load(len(names))
        return name_classes(target, names)
    check_bounds(bounds, "load_target")
    if not isinstance(trust, bool):
        raise InvalidParameterError(
            f"The 'trust' parameter of load_target must be a bool. Got {trust!r} instead."
        )
    text = os.fspath(model)
    if not isinstance(text, str):
        raise InvalidParameterError(
            "The 'model' parameter of load_target must be a path, file.py:factory or URL. "
            f"Got {model!r} instead."
        )
    if not text.lower().startswith(("http://", "https://")):
        _refuse_http_options(headers, output, request_key, response_key)
    dirs = check_python_path(python_path, "load_target")
    if text.lower().startswith(("http://", "https://")):
        _refuse("a URL", weights=weights, mean=mean, std=std, python_path=python_path or None)
        return HttpTarget(
            text,
            bounds=bounds,
            num_classes=num_classes,
            headers=headers,
            output=output,
            request_key=request_key,
            response_key=response_key,
            input_shape=input_shape,
        )
    factory = _FACTORY.match(text)
    if factory is not None:
        with import_path(dirs):
            module = load_factory(
                Path(factory["file"]),
                factory["name"],
                weights=None if weights is None else Path(weights),
                device=device,
                scan=lambda p: scan_before_load(p, trust=trust, scanner=scanner),
            )
        name = f"{Path(factory['file']).name}:{factory['name']}"
        return _torch_target(module, name, bounds, num_classes, input_shape, mean, std, device)
    path = Path(text)
    if path.suffix.lower() == ".py":
        raise InvalidParameterError(
            f"{path} is a Python file: name the function that builds the model, as {path}:factory "
            "(with --weights for its state dict)."
        )
    if weights is not None:
        raise InvalidParameterError(
            "The 'weights' parameter of load_target only applies to file.py:factory models. "
            f"Got weights={os.fspath(weights)!r} for {path.name}."
        )
    if not path.exists():
        raise InputError(f"{path} does not exist. Check the path.")
    result = scan_before_load(path, trust=trust, scanner=scanner)
    # Only now, after the scan, may loading import the modules the file names.
    warn_if_shadowed(result, dirs)
    try:
        with import_path(dirs):
            return _load_file(path, result.format, bounds, num_classes, input_shape, mean, std, device, trust)
    except MlarmorError:
        raise
    except Exception as e:  # a loader failing on a file that passed the scan: say which file and why
        missing = missing_module_error(e, path, result.format, result, dirs)
        if missing is not None:
            raise missing from e
        raise UnsupportedModelError(
            f"{path} ({result.format}) could not be loaded: {type(e).__name__}: {e}"
        ) from e


def _load_file(
    path: Path,
    fmt: str,
    bounds: tuple[float, float] | Sequence[float],
    num_classes: int | None,
    input_shape: tuple[int, ...] | None,
    mean: Stats,
    std: Stats,
    device: str,
    trust: bool,
) -> Target:
    ext = path.suffix.lower()
    if fmt == "onnx":
        return OnnxTarget(
            path, bounds=bounds, num_classes=num_classes, input_shape=input_shape, mean=mean, std=std
        )
    if fmt in ("torchscript", "pytorch-zip", "pytorch-legacy", "pytorch-tar"):
        obj = load_torch_file(path, torchscript=fmt == "torchscript", device=device)
        return _object_target(obj, path, bounds, num_classes, input_shape, mean, std, device)
    if ext == ".skops" and fmt == "zip":
        return _object_target(
            _load_skops(path, trust), path, bounds, num_classes, input_shape, mean, std, device
        )
    if fmt == "pickle" or fmt.startswith(("joblib", "pickle+")):
        if fmt == "pickle":
            # The file passed the scan above (or the user trusts it): loading it is what was asked.
            with path.open("rb") as fh:
                obj = pickle.load(fh)  # noqa: S301
        else:
            import joblib

            obj = joblib.load(path)
        return _object_target(obj, path, bounds, num_classes, input_shape, mean, std, device)
    raise UnsupportedModelError(
        f"{path} holds {_describe(fmt)}, which is not a model format load_target can open. "
        f"Supported: {_SUPPORTED}."
    )


def _describe(fmt: str) -> str:
    return "content of unknown format" if fmt == "unknown" else f"a {fmt} file"


def _object_target(
    obj: Any,
    path: Path,
    bounds: tuple[float, float] | Sequence[float],
    num_classes: int | None,
    input_shape: tuple[int, ...] | None,
    mean: Stats,
    std: Stats,
    device: str,
) -> Target:
    import torch

    if isinstance(obj, torch.nn.Module):
        return _torch_target(obj, path.name, bounds, num_classes, input_shape, mean, std, device)
    if callable(getattr(obj, "predict", None)) and hasattr(obj, "classes_"):
        _refuse("a scikit-learn model", mean=mean, std=std)
        return SklearnTarget(
            obj, bounds=bounds, num_classes=num_classes, input_shape=input_shape, name=path.name
        )
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UnsupportedModelError(
            f"{path} is a state dict (weights without the architecture). Pass the code that builds the "
            f"model as file.py:factory with weights={path} (--model file.py:factory --weights {path})."
        )
    raise UnsupportedModelError(
        f"{path} holds a {type(obj).__module__}.{type(obj).__qualname__}, not a model. "
        "Expected a fitted scikit-learn classifier or a torch.nn.Module."
    )


def _refuse_http_options(headers: object, output: str, request_key: str, response_key: str | None) -> None:
    """The options of a URL given for a file: say so instead of ignoring them."""
    given = [
        name
        for name, used in (
            ("headers", headers is not None),
            ("output", output != "probabilities"),
            ("request_key", request_key != "inputs"),
            ("response_key", response_key is not None),
        )
        if used
    ]
    if given:
        raise invalid_parameter(
            given[0], "load_target", "given only for an http(s):// model", "a model file",
            hint="drop it, or give the endpoint's URL as the model",
        )  # fmt: skip


def _torch_target(
    module: Any,
    name: str,
    bounds: tuple[float, float] | Sequence[float],
    num_classes: int | None,
    input_shape: tuple[int, ...] | None,
    mean: Stats,
    std: Stats,
    device: str,
) -> Target:
    from mlarmor.targets.torch import TorchTarget

    return TorchTarget(
        module,
        bounds=bounds,
        num_classes=num_classes,
        input_shape=input_shape,
        mean=mean,
        std=std,
        device=device,
        name=name,
    )


def _load_skops(path: Path, trust: bool) -> Any:
    import importlib

    try:
        sio = importlib.import_module("skops.io")
    except ImportError as e:
        raise UnsupportedModelError(
            f"{path} is a skops file; loading it needs the skops package: pip install skops"
        ) from e
    untrusted = list(sio.get_untrusted_types(file=path))
    if untrusted and not trust:
        raise UnsafeModelError(
            f"{path} contains types that skops does not trust by default: {', '.join(untrusted[:10])}. "
            "If you trust where this file comes from, pass trust=True (--trust) to load it anyway."
        )
    if untrusted:
        logger.warning("%s: loading untrusted skops types because trust=True: %s", path, untrusted)
    return sio.load(path, trusted=untrusted or None)


def _refuse(kind: str, **options: object) -> None:
    for key, value in options.items():
        if value is not None:
            raise InvalidParameterError(
                f"The {key!r} parameter of load_target does not apply to {kind}"
                + (
                    "; normalisation is built into PyTorch and ONNX targets only: put it in the model "
                    "(a scikit-learn Pipeline, or the endpoint)."
                    if key in ("mean", "std")
                    else "."
                )
            )


def _needs_count(model: str | os.PathLike[str]) -> bool:
    """Whether the model's number of classes comes from the caller (a URL): then the names give it."""
    return os.fspath(model).lower().startswith(("http://", "https://"))
