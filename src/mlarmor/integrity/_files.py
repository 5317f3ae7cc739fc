"""Walking model targets and streaming files through SHA-256, on a thread pool when there are many.

Directories are walked without following symbolic links. Files are hashed in fixed-size chunks
(never a whole file in memory); :mod:`hashlib` releases the GIL while it hashes large buffers, so
the worker threads use every core.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlarmor.errors import InputError, invalid_parameter

__all__ = [
    "CHUNK_SIZE",
    "FileEntry",
    "ProgressCallback",
    "TargetKind",
    "TreeEntry",
    "hash_entries",
    "hash_file",
    "names_inside",
    "resolve_target",
    "walk_tree",
]

CHUNK_SIZE = 1 << 20
"""Bytes read and hashed at a time (1 MiB): large enough for hashlib to release the GIL."""

ProgressCallback = Callable[[int, int], None]
"""Called as ``progress(files_done, files_total)`` on the calling thread after each file."""

TargetKind = Literal["file", "directory"]


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One regular file of a manifest.

    Attributes:
        name: Path relative to the model directory, ``/``-separated (the file name for a file target).
        sha256: Lower-case hex SHA-256 of the content.
        size: Size in bytes.
    """

    name: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One entry found while walking a target, before hashing.

    Attributes:
        name: Relative POSIX name.
        path: Where it is on disk.
        type: ``"file"`` for a regular file, ``"symlink"`` (never followed) or ``"special"``
            (FIFO, socket, device).
        detail: The link target for a symlink, the file type otherwise.
    """

    name: str
    path: Path
    type: Literal["file", "symlink", "special"]
    detail: str = ""


def resolve_target(path: str | os.PathLike[str]) -> tuple[Path, TargetKind]:
    """Check that ``path`` is a regular file or a directory and resolve it.

    The path the user names is resolved (a symlink given on the command line is followed);
    links found *inside* a directory never are.

    Raises:
        InputError: The path does not exist or is neither a file nor a directory.
    """
    p = Path(path)
    try:
        resolved = p.resolve(strict=True)
        mode = resolved.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"{p} does not exist; pass the model file or directory to sign or verify.") from None
    except OSError as e:
        raise InputError(f"cannot access {p}: {e.strerror or e}.") from e
    if stat.S_ISDIR(mode):
        return resolved, "directory"
    if stat.S_ISREG(mode):
        return resolved, "file"
    raise InputError(f"{p} is neither a regular file nor a directory; pass a model file or directory.")


def walk_tree(root: Path, exclude: Collection[str] = ()) -> list[TreeEntry]:
    """List every entry under directory ``root``, sorted by relative POSIX name.

    Symbolic links are reported as ``"symlink"`` entries and not followed; FIFOs, sockets and
    devices as ``"special"``. Only names in ``exclude`` are left out. Empty directories have no
    entry (a manifest lists files).

    Raises:
        InputError: A directory cannot be listed.
    """
    out: list[TreeEntry] = []
    excluded = set(exclude)
    stack: list[tuple[Path, str]] = [(root, "")]
    while stack:
        directory, prefix = stack.pop()
        try:
            with os.scandir(directory) as it:
                items = list(it)
        except OSError as e:
            raise InputError(f"cannot list {directory}: {e.strerror or e}.") from e
        for item in items:
            name = prefix + item.name
            path = Path(item.path)
            try:
                if item.is_symlink():
                    out.append(TreeEntry(name, path, "symlink", os.readlink(path)))
                elif item.is_dir(follow_symlinks=False):
                    stack.append((path, name + "/"))
                elif item.is_file(follow_symlinks=False):
                    if name not in excluded:
                        out.append(TreeEntry(name, path, "file"))
                else:
                    out.append(TreeEntry(name, path, "special", _file_type(path)))
            except OSError as e:
                raise InputError(f"cannot inspect {path}: {e.strerror or e}.") from e
    out.sort(key=lambda t: t.name)
    return out


def _file_type(path: Path) -> str:
    mode = path.lstat().st_mode
    for test, label in (
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
    ):
        if test(mode):
            return label
    return "block device" if stat.S_ISBLK(mode) else "unknown"


def hash_file(path: Path, chunk_size: int = CHUNK_SIZE) -> tuple[str, int]:
    """Stream ``path`` through SHA-256 in ``chunk_size`` pieces.

    The file is opened without following a symlink (``O_NOFOLLOW``), so a file swapped for a
    link after the walk is refused rather than followed.

    Returns:
        The hex digest and the number of bytes read.

    Raises:
        InputError: The file cannot be opened or read.
    """
    if chunk_size < 1:
        raise invalid_parameter("chunk_size", "hash_file", "a positive int", chunk_size)
    h = hashlib.sha256()
    size = 0
    buf = memoryview(bytearray(chunk_size))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
        with os.fdopen(fd, "rb", buffering=0) as f:
            while n := f.readinto(buf):
                h.update(buf[:n])
                size += n
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror or e}.") from e
    return h.hexdigest(), size


def _default_workers(n_files: int) -> int:
    return max(1, min(n_files, os.cpu_count() or 1, 32))


def hash_entries(
    files: list[TreeEntry],
    *,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
) -> tuple[FileEntry, ...]:
    """Hash regular-file entries, in parallel when there are several; keeps the input order.

    Raises:
        InvalidParameterError: ``workers`` is not a positive int.
        InputError: A file cannot be read.
    """
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise invalid_parameter("workers", "build_manifest", "a positive int or None", workers)
    n = workers or _default_workers(len(files))
    total = len(files)
    results: dict[str, FileEntry] = {}

    def one(t: TreeEntry) -> FileEntry:
        digest, size = hash_file(t.path, chunk_size)
        return FileEntry(t.name, digest, size)

    if n == 1 or total <= 1:
        for i, t in enumerate(files, 1):
            results[t.name] = one(t)
            if progress:
                progress(i, total)
    else:
        with ThreadPoolExecutor(max_workers=n, thread_name_prefix="mlarmor-hash") as pool:
            futures = [pool.submit(one, t) for t in files]
            try:
                for i, fut in enumerate(as_completed(futures), 1):
                    entry = fut.result()
                    results[entry.name] = entry
                    if progress:
                        progress(i, total)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return tuple(results[t.name] for t in files)


def names_inside(root: Path, paths: Collection[str | os.PathLike[str]]) -> Iterator[str]:
    """Relative POSIX names of those ``paths`` that lie inside directory ``root`` (resolved)."""
    for p in paths:
        candidate = Path(p)
        try:
            rel = candidate.parent.resolve().joinpath(candidate.name).relative_to(root)
        except ValueError:
            continue
        if rel.parts:
            yield rel.as_posix()
