"""The options that mean the same in every command that loads a model and data, and their parsers (private).

One definition and one help text each; re-exported by :mod:`mlarmor.cli._common`.
"""

from __future__ import annotations

import json
import os

import typer

from mlarmor.cli._output import fail
from mlarmor.findings import Severity

__all__ = [
    "BOUNDS",
    "CLASSES",
    "FAIL_ON",
    "FORMAT",
    "HEADER_ENV",
    "HTTP_OUTPUT",
    "INPUT_SHAPE",
    "LABEL_COLUMN",
    "MEAN",
    "OUTPUT",
    "PYTHON_PATH",
    "REQUEST_KEY",
    "RESPONSE_KEY",
    "STD",
    "TRUST",
    "WEIGHTS",
    "parse_classes",
    "parse_header_env",
    "parse_params",
    "parse_severity",
    "parse_shape",
]

# Options that mean the same in every verb that loads a model and data (one definition, one help text).
WEIGHTS = typer.Option(None, "--weights", help="State dict for a file.py:factory model.")
LABEL_COLUMN = typer.Option(None, "--label-column", help="Label column of a CSV/Parquet table.")
BOUNDS = typer.Option(
    None, "--bounds", help="Valid input range LOW HIGH. Default: the data's.", show_default=False
)
CLASSES = typer.Option(
    None,
    "--classes",
    help="Number of classes, where it cannot be inferred; or the model's class names in its output order, "
    "NAME,NAME,... (e.g. ham,spam), for models that do not name them: the data's labels are matched to them.",
)
MEAN = typer.Option(None, "--mean", help="Normalisation mean (repeat per channel).")
STD = typer.Option(None, "--std", help="Normalisation std (repeat per channel).")
INPUT_SHAPE = typer.Option(None, "--input-shape", help="Shape of one input, e.g. 1,8,8. Default: the data's.")
TRUST = typer.Option(False, "--trust", help="Load the model even if the scan finds it unsafe.")
PYTHON_PATH = typer.Option(
    None,
    "--python-path",
    help="Directory to import a whole pickled model's own code from, e.g. the folder of mynet.py for a "
    "torch.save(model) of mynet.Net (repeatable). Off by default: mlarmor imports no code from the "
    "model's folder or the working directory unless named here.",
    exists=True,
    file_okay=False,
    dir_okay=True,
)
FORMAT = typer.Option("table", "--format", "-f", help="Output: table, json or sarif.")
OUTPUT = typer.Option(None, "--output", "-o", help="Write the report to this file.")
HEADER_ENV = typer.Option(
    None,
    "--header-env",
    help="HTTP model: header NAME from environment variable VAR, as NAME=VAR (repeatable), e.g. "
    "Authorization=MODEL_API_TOKEN. Credentials in the URL (https://user:pass@host) are sent as Basic auth.",
)
HTTP_OUTPUT = typer.Option(
    "probabilities",
    "--http-output",
    help="HTTP model: what it returns: probabilities or labels (labels only).",
)
REQUEST_KEY = typer.Option("inputs", "--request-key", help="HTTP model: JSON key of the inputs it expects.")
RESPONSE_KEY = typer.Option(
    None, "--response-key", help="HTTP model: JSON key of its answer. Default: probabilities or labels."
)
FAIL_ON = typer.Option(
    "high",
    "--fail-on",
    help="Exit 1 when a finding is at or above: low, medium, high, critical; none = any finding above none.",
)


def parse_classes(value: str | int | None) -> tuple[int | None, list[str] | None]:
    """``--classes``: a number of classes, or the model's class names ``NAME,NAME,...`` in output order."""
    if value is None or isinstance(value, int):
        return value, None
    text = value.strip()
    if text.isdigit():
        return int(text), None
    names = [name.strip() for name in text.split(",")]
    if len(names) < 2 or not all(names) or len(set(names)) != len(names):
        raise fail(
            f"--classes {value!r} is neither a number of classes nor a list of two or more distinct names.",
            "e.g. --classes 3, or --classes cat,dog,fox (the model's output order)",
        )
    return None, names


def parse_severity(value: str) -> Severity:
    """A ``--fail-on`` value as a :class:`Severity` (a usage error when unknown)."""
    try:
        return Severity.parse(value)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None


def parse_shape(text: str | None) -> tuple[int, ...] | None:
    """An ``--input-shape`` such as ``1,8,8`` or ``1x8x8``; ``None`` stays ``None``."""
    if text is None:
        return None
    try:
        shape = tuple(int(p) for p in text.replace("x", ",").split(",") if p.strip())
    except ValueError:
        shape = ()
    if not shape or any(s < 1 for s in shape):
        raise fail(
            f"--input-shape {text!r} is not a shape.", "give positive integers, e.g. --input-shape 1,8,8"
        )
    return shape


def parse_params(items: list[str] | None, option: str = "--param") -> dict[str, object]:
    """Repeated ``KEY=VALUE`` options as a dict; values are JSON when they parse (lists become tuples)."""
    out: dict[str, object] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise fail(
                f"{option} {item!r} is not KEY=VALUE.", f"e.g. {option} n_queries=1000 {option} steps=20"
            )
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key.strip()] = tuple(value) if isinstance(value, list) else value
    return out


def parse_header_env(items: list[str] | None) -> dict[str, str] | None:
    """``--header-env NAME=VAR``: the header NAME with the value of the environment variable VAR.

    Secrets (an ``Authorization`` token) never appear on the command line, where the shell history
    and the process list would show them.
    """
    if not items:
        return None
    headers: dict[str, str] = {}
    for item in items:
        name, sep, var = item.partition("=")
        if not sep or not name.strip() or not var.strip():
            raise fail(
                f"--header-env {item!r} is not NAME=ENVIRONMENT_VARIABLE.",
                "e.g. --header-env Authorization=MODEL_API_TOKEN, with MODEL_API_TOKEN='Bearer ...' exported",
            )
        value = os.environ.get(var.strip())
        if value is None:
            raise fail(
                f"--header-env {item}: the environment variable {var.strip()} is not set.",
                f"export {var.strip()}=... first: the value is read from there, never from the command line",
            )
        headers[name.strip()] = value
    return headers
