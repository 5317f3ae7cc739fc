"""The user's own Python modules that a whole pickled model needs (private).

A whole pickled model (``torch.save(model)`` of an ``nn.Module`` subclass, a scikit-learn pipeline
with a custom transformer) stores its classes by name, ``mynet.Net``; unpickling imports ``mynet``.
mlarmor imports code only from where Python already looks (installed packages, ``PYTHONPATH``) and
from the directories the user names with ``python_path`` (``--python-path DIR``). It never adds the
model's folder or the working directory on its own: a model file downloaded next to a ``mynet.py``
must not run that file because of where it lies. When the module is missing, it *looks* there (the
file's folder and the working directory) and names what it found, so that the user can opt in.

This happens only after the file passed the scan (or the user passed ``trust``): the scanner rates a
reference to a class it does not know, such as ``mynet.Net``, ``medium`` (``pickle.unknown-global``),
which does not stop the load.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from mlarmor.errors import InputError, MlarmorWarning, invalid_parameter
from mlarmor.findings import Severity
from mlarmor.scan import FileResult

__all__ = ["check_python_path", "missing_module_error", "warn_if_shadowed"]

_NO_ATTRIBUTE = re.compile(r"Can't get attribute '(?P<name>[^']+)' on <module '(?P<module>[^']+)'")
_TORCH_FORMATS = ("pytorch-zip", "pytorch-legacy", "pytorch-tar")


def check_python_path(python_path: object, owner: str) -> tuple[Path, ...]:
    """``python_path`` as existing directories (absolute); empty for ``None``."""
    if python_path is None:
        return ()
    if isinstance(python_path, (str, os.PathLike)):
        python_path = [python_path]
    if not isinstance(python_path, Sequence):
        raise invalid_parameter("python_path", owner, "a list of directories", python_path)
    dirs = []
    for item in python_path:
        if not isinstance(item, (str, os.PathLike)) or not Path(item).is_dir():
            raise invalid_parameter(
                "python_path", owner, "existing directories", os.fspath(item)
                if isinstance(item, (str, os.PathLike)) else item,
                hint="name the directory that holds the model's Python module (mynet.py or mynet/)",
            )  # fmt: skip
        dirs.append(Path(item).resolve())
    return tuple(dirs)


def _referenced(scan: FileResult) -> list[str]:
    """The globals (``module.name``) the scanner found in the file and does not know."""
    names = []
    for finding in scan.findings:
        name = finding.evidence.get("global")
        if isinstance(name, str) and name not in names:
            names.append(name)
    return names


def _provided(module: str, folder: Path) -> Path | None:
    """``folder/module.py`` or the package directory ``folder/module/``, when there."""
    base = folder.joinpath(*module.split("."))
    file = base.with_name(base.name + ".py")
    if file.is_file():
        return file
    return base if base.is_dir() else None


def _shown(path: Path) -> str:
    """A path as the user would type it: relative to the working directory when inside it."""
    try:
        rel = path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return "." if str(rel) == "." else f".{os.sep}{rel}"


def warn_if_shadowed(scan: FileResult, dirs: Sequence[Path]) -> None:
    """Warn when a module the file needs is already imported from elsewhere than ``--python-path``.

    Python imports a module once: the model would be built from the module already in
    ``sys.modules``, not from the file in the directory the user named.
    """
    for module in dict.fromkeys(g.split(".")[0] for g in _referenced(scan)):
        loaded = sys.modules.get(module)
        origin = getattr(loaded, "__file__", None)
        given = next((p for d in dirs if (p := _provided(module, d)) is not None), None)
        if loaded is None or origin is None or given is None:
            continue
        where = given / "__init__.py" if given.is_dir() else given
        if Path(origin).resolve() != where.resolve():
            warnings.warn(
                f"the module {module!r} is already imported from {origin}; the model is loaded with "
                f"that one, not with {_shown(given)} from --python-path (python_path).",
                MlarmorWarning,
                stacklevel=3,
            )


def missing_module_error(
    error: BaseException, path: Path, fmt: str, scan: FileResult, python_path: Sequence[Path]
) -> InputError | None:
    """The error to raise when loading ``path`` failed for want of a module or class; else ``None``."""
    if isinstance(error, ModuleNotFoundError) and error.name:
        module, attribute = error.name, None
    elif isinstance(error, AttributeError) and (m := _NO_ATTRIBUTE.search(str(error))):
        module, attribute = m["module"], m["name"]
    else:
        return None
    classes = [g for g in _referenced(scan) if g.startswith(module + ".")]
    if attribute is not None:
        classes = [f"{module}.{attribute}"]
    needs = f" (for {', '.join(classes[:3])})" if classes else ""
    if attribute is None:
        problem = (
            f"{path} is a whole pickled model that needs the Python module {module!r}{needs}, "
            "which cannot be imported here."
        )
    else:
        loaded = getattr(sys.modules.get(module), "__file__", None)
        problem = (
            f"{path} is a whole pickled model that needs the class {attribute!r} from the Python "
            f"module {module!r}, but the {module!r} imported here"
            + (f" ({loaded})" if loaded else "")
            + f" has no {attribute!r}: it is not the version of the module the model was saved with."
        )
    places = {path.resolve().parent: "next to the model", Path.cwd().resolve(): "in the working directory"}
    for d in python_path:
        places.setdefault(d, "in --python-path")
    # A module in a --python-path directory would have been imported: only the others are news.
    found = [
        (d, p, where)
        for d, where in places.items()
        if where != "in --python-path" and (p := _provided(module, d)) is not None
    ]
    looked = " and ".join(f"{where} ({_shown(d)})" for d, where in places.items())
    file_name = module.replace(".", os.sep)
    lookup = f" mlarmor looked for {file_name}.py or a {file_name}{os.sep} package {looked}:"
    if found:
        root, p, where = found[0]
        lookup += (
            f" found {_shown(p)} {where}. Rerun with --python-path {_shown(root)} (python_path= in Python) "
            f"to let mlarmor import it; that runs the code in {_shown(p)}, so do it only if you trust it."
        )
    else:
        lookup += (
            " not found. Name the directory that holds it with --python-path DIR (python_path= in "
            f"Python), or install the package that provides {module!r}."
        )
    alternative = (
        " Or save the weights alone (torch.save(model.state_dict(), 'weights.pt')) and load them "
        "with --model FILE.py:factory --weights weights.pt, where factory() builds the model."
        if fmt in _TORCH_FORMATS
        else ""
    )
    if scan.severity >= Severity.HIGH:
        note = f" The file failed the scan (verdict: {scan.severity.label}); it loads only with --trust."
    else:
        rated = any(classes and f.evidence.get("global") == classes[0] for f in scan.findings)
        unknown = f": {classes[0]} is a class the scanner does not know" if rated else ""
        note = (
            f" The file passed the scan (verdict {scan.severity.label}{unknown}); mlarmor imports a "
            "model's code only from where Python already looks and from --python-path."
        )
    return InputError(problem + lookup + alternative + note)
