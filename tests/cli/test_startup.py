"""Start-up: the command line loads no ML library until a verb needs one (issue 11, point 9).

The wall time is measured in ``benchmarks/bench_startup.py`` (against picklescan's and modelscan's
CLIs); these tests keep the import graph that makes it fast.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

HEAVY = ("torch", "sklearn", "pandas", "numpy", "scipy", "onnxruntime")


def _loaded(code: str) -> list[str]:
    probe = f"{code}; import sys; print(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return eval(out.stdout.strip().splitlines()[-1])  # the list literal the probe printed last


def test_building_the_cli_loads_no_ml_library() -> None:
    assert (
        _loaded("import mlarmor.cli; from typer.main import get_command; get_command(mlarmor.cli.app)") == []
    )


def test_scanning_a_pickle_loads_no_ml_library(tmp_path) -> None:
    model = tmp_path / "small.pkl"
    model.write_bytes(pickle.dumps({"weights": [0.5, 0.25]}, protocol=4))
    code = (
        "import sys; from mlarmor.cli import app; "
        f"sys.argv = ['mlarmor', 'scan', {str(model)!r}]; "
        "exec('try:\\n app()\\nexcept SystemExit:\\n pass')"
    )
    assert _loaded(code) == []


@pytest.mark.parametrize(
    ("listed", "registry"),
    [
        ("EVASION_ATTACKS", "evasion"),
        ("MEMBERSHIP_LABELS", "membership"),
        ("POISONING_ATTACKS", "poisoning"),
    ],
)
def test_help_names_match_the_registries(listed: str, registry: str) -> None:
    from mlarmor.attacks import available
    from mlarmor.attacks.inference import MEMBERSHIP_ATTACKS
    from mlarmor.cli import _names
    from mlarmor.findings import Family

    expected = {
        "evasion": available(Family.EVASION),
        "membership": tuple(MEMBERSHIP_ATTACKS),
        "poisoning": available(Family.POISONING),
    }[registry]
    assert getattr(_names, listed) == expected
