"""The options that mean the same in every command that loads a model and data (private).

One definition and one help text each; re-exported by :mod:`mlarmor.cli._common`.
"""

from __future__ import annotations

import typer

from mlarmor.cli._output import fail

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
