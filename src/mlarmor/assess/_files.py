"""Files the verbs write for the user: checked before the work, written atomically after it (private)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mlarmor.errors import InputError, invalid_parameter

__all__ = ["check_writable", "save_json", "save_module", "save_rows"]


def check_writable(path: str | os.PathLike[str] | None, name: str, owner: str) -> Path | None:
    """Fail before a long run when ``path`` cannot be written (a folder, or a folder that cannot be made).

    Args:
        path: Where the run will write; ``None`` passes.
        name: The parameter that gave it (``"save"``).
        owner: The function that takes it.

    Raises:
        InvalidParameterError: If the folder cannot be created or ``path`` is a folder.
    """
    if path is None:
        return None
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        why = f"{out.parent} cannot be created ({e.strerror or e}); choose a writable path"
        raise invalid_parameter(name, owner, "a writable file path", str(out), hint=why) from e
    if out.is_dir():
        raise invalid_parameter(
            name,
            owner,
            "a writable file path",
            str(out),
            hint="it is a folder: give a file name, e.g. out.pt",
        )
    return out


def _atomic(path: Path, write: Any, what: str) -> Path:
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(tmp)
        tmp.replace(path)
    except OSError as e:
        raise InputError(f"Cannot write {what} to {path}: {e.strerror or e}. Choose a writable path.") from e
    return path


def save_module(module: Any, path: str | os.PathLike[str], what: str = "the model") -> Path:
    """Write a PyTorch module: TorchScript as TorchScript, anything else as a state dict.

    A module behind its input normalisation (:class:`~mlarmor.targets.InputSpace`) is saved as the
    user's own module, so the file loads into their factory.
    """
    import torch

    from mlarmor.targets import InputSpace

    inner = module.inner if isinstance(module, InputSpace) else module

    def write(tmp: Path) -> None:
        if isinstance(inner, torch.jit.ScriptModule):
            torch.jit.save(inner, str(tmp))
        else:
            torch.save({k: v.detach().cpu() for k, v in inner.state_dict().items()}, tmp)

    return _atomic(Path(path), write, what)


def save_json(data: Any, path: str | os.PathLike[str], what: str) -> Path:
    """Write ``data`` as indented JSON."""
    return _atomic(
        Path(path), lambda tmp: tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8"), what
    )


def save_rows(
    x: np.ndarray, y: np.ndarray, kept: np.ndarray, path: str | os.PathLike[str], what: str
) -> Path:
    """Write the rows of ``(x, y)`` where ``kept`` as ``.npz`` with ``x``, ``y`` and their ``index``."""

    def write(tmp: Path) -> None:
        with tmp.open("wb") as fh:
            np.savez(fh, x=x[kept], y=y[kept], index=np.flatnonzero(kept))

    return _atomic(Path(path), write, what)
