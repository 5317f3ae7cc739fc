"""The Typer application and verb registration."""

from __future__ import annotations

import typer

from mlarmor import __version__

app = typer.Typer(
    name="mlarmor",
    help="Find and fix the ways a machine-learning model can be attacked.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"mlarmor {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", help="Show the version and exit.", callback=_version, is_eager=True
    ),
    quiet: bool = typer.Option(
        False,
        "--quiet",
        "-q",
        help="No spinners or progress bars (they are off anyway when stderr is not a terminal).",
    ),
) -> None:
    """Find and fix the ways a machine-learning model can be attacked."""
    from mlarmor.cli._output import set_quiet

    set_quiet(quiet)


def _register() -> None:
    from mlarmor.cli import demo, evasion, harden, integrity, poisoning, privacy, scan

    app.command("scan", no_args_is_help=True)(scan.scan)
    app.command("keygen", no_args_is_help=True)(integrity.keygen)
    app.command("sign", no_args_is_help=True)(integrity.sign)
    app.command("verify", no_args_is_help=True)(integrity.verify)
    app.command("evasion", no_args_is_help=True)(evasion.evasion)
    app.command("harden", no_args_is_help=True)(harden.harden)
    app.command("privacy", no_args_is_help=True)(privacy.privacy)
    app.add_typer(poisoning.app, name="poisoning")
    app.command("demo")(demo.demo)


_register()


def main() -> None:
    """Console-script entry point."""
    app()
