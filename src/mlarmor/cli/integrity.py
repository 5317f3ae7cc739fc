"""``mlarmor keygen``, ``sign`` and ``verify``: thin commands over :mod:`mlarmor.integrity`."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mlarmor.cli._common import EXIT_FINDINGS, console, err_console, fail, handles_errors, write_output
from mlarmor.cli._output import live
from mlarmor.integrity import (
    VerificationResult,
    generate_keypair,
    load_private_key,
    load_public_key,
    sign_path,
    verify_path,
)
from mlarmor.integrity._files import ProgressCallback

__all__ = ["keygen", "sign", "verify"]

_UNLOCK_HELP = "Name of an environment variable holding the private key's passphrase (never pass it inline)."
_WORKERS_HELP = "Hashing threads (default: one per core)."


def _passphrase(env_var: str | None) -> bytes | None:
    if env_var is None:
        return None
    value = os.environ.get(env_var)
    if value is None:
        raise fail(
            f"environment variable {env_var} is not set",
            f"export {env_var}=... before running, or drop --passphrase-env for an unencrypted key",
        )
    if not value:
        raise fail(f"environment variable {env_var} is empty", "set it to the key's passphrase")
    return value.encode("utf-8")


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{n} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover - the loop always returns


@contextmanager
def _progress(label: str) -> Iterator[ProgressCallback]:
    """A Rich progress bar on stderr (only on a terminal) fed by the hashing callback."""
    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not live(),
    )
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


@handles_errors
def keygen(
    out: Annotated[
        Path,
        typer.Option("--out", "-o", metavar="PREFIX", help="Writes PREFIX.key (private) and PREFIX.pub."),
    ],
    passphrase_env: Annotated[
        str | None,
        typer.Option(
            "--passphrase-env", metavar="VAR", help="Encrypt the private key with the passphrase in $VAR."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing key files.")] = False,
) -> None:
    """Create an Ed25519 key pair for signing models.

    Writes PREFIX.key (PKCS#8 PEM, mode 0600; encrypted with the passphrase
    in $VAR when --passphrase-env VAR is given) and PREFIX.pub (PEM public
    key: the file you hand to verifiers). Existing files are kept unless
    --force is given.

    Example:
        mlarmor keygen --out keys/release
    """
    pair = generate_keypair(_passphrase(passphrase_env))
    private_path, public_path = pair.write(out, force=force)
    console.print(f"private key: {private_path} (keep it secret)", highlight=False)
    console.print(f"public key:  {public_path}", highlight=False)
    console.print(f"key id:      {pair.key_id}", highlight=False)


@handles_errors
def sign(
    path: Annotated[Path, typer.Argument(help="Model file or directory to sign.", show_default=False)],
    key: Annotated[
        Path, typer.Option("--key", "-k", metavar="KEY", help="Ed25519 private key (PREFIX.key).")
    ],
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature",
            "-s",
            metavar="FILE",
            help="Signature to write (default: FILE.sig beside a file, DIR/model.sig in a directory).",
        ),
    ] = None,
    passphrase_env: Annotated[
        str | None, typer.Option("--passphrase-env", metavar="VAR", help=_UNLOCK_HELP)
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help=_WORKERS_HELP)] = None,
) -> None:
    """Sign a model file or directory with an Ed25519 key.

    Writes a manifest of every file's SHA-256 digest and size, signed as a
    DSSE envelope over an in-toto statement (see docs/integrity.md). The
    default signature is FILE.sig beside a file and DIR/model.sig inside a
    directory; the signature file is left out of the manifest. Directories
    are walked in sorted order; symlinks are never followed, and a directory
    holding a symlink or a special file is refused.

    Example:
        mlarmor sign model_dir --key keys/release.key
    """
    private_key = load_private_key(key, _passphrase(passphrase_env))
    with _progress("hashing") as progress:
        result = sign_path(path, private_key, signature=signature, workers=workers, progress=progress)
    console.print(
        f"signed {result.files} file(s), {_size(result.total_size)}, of {path} -> {result.signature_path}",
        highlight=False,
    )
    console.print(f"key id: {result.key_id}", highlight=False)


def _summary(result: VerificationResult) -> Group:
    if result.ok:
        headline = Text(
            f"OK: {result.files_checked} file(s) match {result.signature_path} (key id {result.key_id[:16]})",
            style="bold green",
        )
        return Group(headline)
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("severity", no_wrap=True)
    table.add_column("finding", no_wrap=True)
    table.add_column("file", overflow="fold")
    table.add_column("detail", overflow="fold")
    findings = result.findings
    details = [d.summary() for d in result.differences] if result.signature_valid else []
    for i, f in enumerate(findings):
        table.add_row(
            Text(f.severity.label, style="red" if f.severity.label == "critical" else "yellow"),
            f.id,
            f.location.member or Path(f.location.path or "").name,
            details[i] if i < len(details) else f.title,
        )
    headline = Text(
        f"FAILED: {len(result.findings)} problem(s) verifying {result.path} against {result.signature_path}",
        style="bold red",
    )
    return Group(table, headline)


@handles_errors
def verify(
    path: Annotated[Path, typer.Argument(help="Model file or directory to verify.", show_default=False)],
    key: Annotated[Path, typer.Option("--key", "-k", metavar="PUB", help="Ed25519 public key (PREFIX.pub).")],
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature",
            "-s",
            metavar="FILE",
            help="Signature file (default: FILE.sig beside a file, DIR/model.sig inside a directory).",
        ),
    ] = None,
    output_format: Annotated[
        Literal["table", "json"], typer.Option("--format", "-f", help="Output format.")
    ] = "table",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", metavar="FILE", help="Write the output to FILE.")
    ] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help=_WORKERS_HELP)] = None,
) -> None:
    """Verify a model file or directory against its signature.

    Exit codes: 0 when the signature is valid and every file matches; 1 on
    any added, removed, renamed or changed file, a bad signature or one made
    with another key (each reported as a finding); 2 on a usage error
    (missing path, unusable key, missing or corrupt signature file).

    Example:
        mlarmor verify model_dir --key keys/release.pub --format json
    """
    public_key = load_public_key(key)
    with _progress("verifying") as progress:
        result = verify_path(path, public_key, signature=signature, workers=workers, progress=progress)
    if output_format == "json":
        write_output(result.to_report().model_dump_json(indent=2), output)
    elif output is not None:
        buffer = io.StringIO()
        Console(file=buffer, width=120, no_color=True, highlight=False).print(_summary(result))
        write_output(buffer.getvalue(), output)
    else:
        console.print(_summary(result), highlight=False)
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)
