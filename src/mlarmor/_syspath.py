"""``sys.path`` for the user's own code, put there for a while and taken back (private, stdlib only).

Used by :func:`mlarmor.targets.load_target` (``python_path``) and by the command line
(``--python-path``), whose startup must not import the heavy packages.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = ["import_path", "imports_restored", "keep_on_path"]


@contextlib.contextmanager
def import_path(dirs: Sequence[Path]) -> Iterator[None]:
    """Put ``dirs`` in front of ``sys.path`` while the block runs, and restore ``sys.path`` after it.

    The modules imported meanwhile stay in ``sys.modules``, as after any import: the loaded model's
    classes live there, and pickling the model again (a scikit-learn recipe sent to worker processes)
    looks them up by name.
    """
    if not dirs:
        yield
        return
    saved = list(sys.path)
    sys.path[:0] = [str(d) for d in dirs]
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path[:] = saved


def keep_on_path(dirs: Sequence[str | os.PathLike[str]]) -> None:
    """Put ``dirs`` in front of ``sys.path`` until :func:`imports_restored` restores it.

    The command line keeps ``--python-path`` for the whole command, not only while the model loads:
    worker processes that train reference models (``mlarmor privacy``) import the model's classes too.
    """
    for folder in reversed([str(Path(d).resolve()) for d in dirs]):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    importlib.invalidate_caches()


@contextlib.contextmanager
def imports_restored() -> Iterator[None]:
    """Restore ``sys.path`` when the block ends, and forget the modules imported from what it added.

    A command run in-process (tests, notebooks) leaves no ``--python-path`` module behind, so that
    the next command cannot load a model with the previous command's classes.
    """
    saved_path, saved_modules = list(sys.path), set(sys.modules)
    try:
        yield
    finally:
        added = [Path(p).resolve() for p in sys.path if p and p not in saved_path]
        sys.path[:] = saved_path
        for name in set(sys.modules) - saved_modules:
            file = getattr(sys.modules.get(name), "__file__", None)
            if file and any(Path(file).resolve().is_relative_to(d) for d in added):
                del sys.modules[name]
