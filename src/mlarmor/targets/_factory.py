"""Load PyTorch models: ``file.py:factory`` plus weights, TorchScript and pickled modules (private).

Callers scan every file before handing it here; the factory's own ``.py`` file is user code and is
imported without a scan, by design.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import logging
import sys
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from mlarmor.errors import InputError, MlarmorError, UnsupportedModelError

__all__ = ["load_factory", "load_torch_file", "load_weights"]

logger = logging.getLogger(__name__)

_STATE_KEYS = ("state_dict", "model_state_dict", "model")


def load_factory(
    file: Path,
    name: str,
    *,
    weights: Path | None,
    device: str,
    scan: Callable[[Path], object],
) -> torch.nn.Module:
    """Import ``file``, call ``name()`` and load ``weights`` (scanned with ``scan`` first) into the result."""
    if not file.is_file():
        raise InputError(f"{file} does not exist or is not a file. Check the path in {file}:{name}.")
    if weights is not None:
        if not weights.exists():
            raise InputError(f"{weights} does not exist. Check the weights path.")
        scan(weights)  # before any code runs: an unsafe weights file stops here
    factory = getattr(_import_file(file), name, None)
    if not callable(factory):
        raise InputError(f"{file} has no function {name!r}; name the function that builds the model.")
    try:
        module = factory()
    except Exception as e:  # user code can raise anything
        raise InputError(f"{file}:{name}() failed: {type(e).__name__}: {e}") from e
    if not isinstance(module, torch.nn.Module):
        raise UnsupportedModelError(
            f"{file}:{name}() returned a {type(module).__name__}; it must return a torch.nn.Module."
        )
    if weights is None:
        logger.info("%s:%s: no weights given; using the weights the factory set", file, name)
        return module
    try:
        state = load_weights(weights, device=device)
    except MlarmorError:
        raise
    except Exception as e:  # a corrupt or foreign file: say which and why
        raise UnsupportedModelError(f"{weights} cannot be read as weights: {type(e).__name__}: {e}") from e
    try:
        module.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError) as e:
        raise UnsupportedModelError(
            f"The weights in {weights} do not fit the model built by {file.name}:{name}: {e}"
        ) from e
    return module


def _import_file(file: Path) -> Any:
    digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]
    module_name = f"_mlarmor_factory_{digest}"
    spec = importlib.util.spec_from_file_location(module_name, file)
    if spec is None or spec.loader is None:
        raise InputError(f"{file} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    folder = str(file.resolve().parent)
    sys.modules[module_name] = module  # lets the file's classes be pickled and found by name
    sys.path.insert(0, folder)  # lets the file import its neighbours, as `python file.py` would
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # user code can raise anything
        sys.modules.pop(module_name, None)
        raise InputError(f"{file} failed to import: {type(e).__name__}: {e}") from e
    finally:
        with contextlib.suppress(ValueError):  # the user's code may have removed it already
            sys.path.remove(folder)
    return module


def load_weights(path: Path, *, device: str) -> Mapping[str, torch.Tensor]:
    """Read a state dict from a ``torch.save`` checkpoint or a ``.safetensors`` file (already scanned)."""
    with path.open("rb") as fh:
        head = fh.read(16)
    size = int.from_bytes(head[:8], "little") if len(head) >= 9 else 0
    if size >= 2 and head[8:9] == b"{":
        try:
            st: Any = importlib.import_module("safetensors.torch")
        except ImportError as e:
            raise UnsupportedModelError(
                f"{path} is a safetensors file; reading it needs the safetensors package: "
                "pip install safetensors"
            ) from e
        state: Mapping[str, torch.Tensor] = st.load_file(str(path), device=str(device))
        return state
    obj = _torch_load(path, device=device)
    if isinstance(obj, torch.nn.Module):
        return obj.state_dict()
    if isinstance(obj, Mapping):
        if obj and not all(isinstance(v, torch.Tensor) for v in obj.values()):
            for key in _STATE_KEYS:
                inner = obj.get(key)
                if isinstance(inner, Mapping):
                    return inner
                if isinstance(inner, torch.nn.Module):
                    return inner.state_dict()
        return obj
    raise UnsupportedModelError(
        f"{path} holds a {type(obj).__name__}, not a state dict. Save the weights with "
        "torch.save(model.state_dict(), path)."
    )


def load_torch_file(path: Path, *, torchscript: bool, device: str) -> Any:
    """Load a TorchScript archive, or a ``torch.save`` checkpoint that passed the scan."""
    if torchscript:
        with warnings.catch_warnings():  # torch deprecates TorchScript; users' files still use it
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device)  # type: ignore[no-untyped-call]
    return _torch_load(path, device=device)


def _torch_load(path: Path, *, device: str) -> Any:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # weights-only refused the content; fall back below
        logger.info("%s: not a weights-only checkpoint (%s); loading it in full", path, type(e).__name__)
    # The file passed mlarmor's scan, or the user passed trust=True: a full load is what was asked.
    return torch.load(path, map_location=device, weights_only=False)
