"""``mlarmor.data`` is user data only: importing it never loads the scanner's corpus."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import mlarmor

_SRC = Path(mlarmor.__file__).parent


def _loaded_after(statement: str) -> list[str]:
    """The ``mlarmor.testing`` modules a fresh interpreter holds after running ``statement``."""
    listing = "sorted(m for m in sys.modules if m.startswith('mlarmor.testing'))"
    code = f"{statement}\nimport sys\nprint({listing})"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip())


def test_importing_data_does_not_import_the_corpus() -> None:
    assert _loaded_after("import mlarmor.data") == []


def test_the_check_sees_the_corpus_when_it_is_imported() -> None:
    assert "mlarmor.testing.corpus" in _loaded_after("import mlarmor.testing.corpus")


def _imports(path: Path) -> set[str]:
    """Module names that ``path`` imports, at any depth (lazy imports included), relative ones resolved."""
    package = ["mlarmor", *path.relative_to(_SRC).parent.parts]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            stem = ".".join([*base, *([node.module] if node.module else [])])
            names.add(stem)
            names.update(f"{stem}.{a.name}" for a in node.names)
    return names


def test_only_the_demo_imports_the_corpus() -> None:
    importers = sorted(
        p.relative_to(_SRC).as_posix()
        for p in _SRC.rglob("*.py")
        if p.relative_to(_SRC).parts[0] != "testing"
        and any(m == "mlarmor.testing" or m.startswith("mlarmor.testing.") for m in _imports(p))
    )
    assert importers == ["cli/demo.py"]
