"""The top-level Python API: every verb one import away, and ``import mlarmor`` stays light."""

from __future__ import annotations

import subprocess
import sys

import pytest

import mlarmor


@pytest.mark.parametrize("name", [n for n in mlarmor.__all__ if n != "__version__"])
def test_every_exported_verb_resolves_to_a_documented_function(name: str) -> None:
    verb = getattr(mlarmor, name)
    assert callable(verb)
    assert verb.__name__ == mlarmor._VERBS[name][1]
    assert verb.__doc__


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_verb"):
        _ = mlarmor.no_such_verb  # type: ignore[attr-defined]


def test_import_does_not_load_torch_or_sklearn() -> None:
    code = "import mlarmor, sys; print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_cli_verb_has_its_function() -> None:
    from mlarmor.cli.app import app
    from mlarmor.cli.poisoning import app as poisoning

    verbs = {c.name for c in app.registered_commands} | {
        f"poisoning {c.name}" for c in poisoning.registered_commands
    }
    functions = {
        "scan": "mlarmor.scan.scan",
        "keygen": "keygen",
        "sign": "sign",
        "verify": "verify",
        "evasion": "evaluate_evasion",
        "harden": "harden",
        "privacy": "audit_privacy",
        "poisoning simulate": "simulate_poisoning",
        "poisoning inspect-model": "inspect_model",
        "poisoning inspect-data": "inspect_data",
        "poisoning sanitize": "sanitize",
        "demo": None,  # runs the verbs on built-in data
    }
    assert verbs == set(functions)
    for function in functions.values():
        if function and "." not in function:
            assert callable(getattr(mlarmor, function))
    from mlarmor.scan import scan

    assert callable(scan)
