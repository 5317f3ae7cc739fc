"""Manifests of model artifacts (every file's SHA-256 and size) and their in-toto statement form.

A :class:`Manifest` describes one model target, a single file or a directory tree, with entries
sorted by relative POSIX name (see :mod:`mlarmor.integrity._files` for the walk and the hashing).

The manifest maps onto the predicate of an in-toto Statement v1 in the layout of the OpenSSF
Model Signing (OMS) ``files`` serialization: a ``serialization`` section saying how the model was
hashed and one ``resources`` entry (``name``, ``algorithm``, ``digest``) per file, to which mlarmor
adds ``size``. The statement's single subject is the model name with a root digest, the SHA-256 of
the concatenated raw file digests in manifest order. See ``docs/integrity.md``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from mlarmor.errors import InputError, IntegrityError
from mlarmor.integrity._files import (
    CHUNK_SIZE,
    FileEntry,
    ProgressCallback,
    TargetKind,
    TreeEntry,
    hash_entries,
    names_inside,
    resolve_target,
    walk_tree,
)

__all__ = [
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Manifest",
    "build_manifest",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://mlarmor.dev/integrity/manifest/v1"
"""mlarmor's predicate: the OMS ``signature/v1.0`` layout plus a ``size`` per resource."""

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Manifest:
    """Digests and sizes of every file of a model target, sorted by name.

    Attributes:
        model_name: The target's base name (the in-toto subject name).
        kind: Whether the target is a single ``"file"`` or a ``"directory"``.
        entries: One :class:`FileEntry` per file, sorted by ``name``, names unique.
        ignore_paths: Names left out on purpose (the signature file when it lies inside the target).
    """

    model_name: str
    kind: TargetKind
    entries: tuple[FileEntry, ...]
    ignore_paths: tuple[str, ...] = ()

    @property
    def root_digest(self) -> str:
        """SHA-256 over the concatenated raw file digests in manifest order (the OMS subject digest)."""
        h = hashlib.sha256()
        for e in self.entries:
            h.update(bytes.fromhex(e.sha256))
        return h.hexdigest()

    @property
    def total_size(self) -> int:
        """Sum of the file sizes in bytes."""
        return sum(e.size for e in self.entries)

    def by_name(self) -> dict[str, FileEntry]:
        """The entries keyed by name."""
        return {e.name: e for e in self.entries}

    def to_statement(self, extra_predicate: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The in-toto Statement v1 that describes this manifest.

        Args:
            extra_predicate: Informational fields added to the predicate (e.g. ``created_at``).

        Returns:
            A JSON-serialisable dict.
        """
        predicate: dict[str, Any] = {
            "serialization": {
                "method": "files",
                "hash_type": "sha256",
                "allow_symlinks": False,
                "ignore_paths": list(self.ignore_paths),
                "target": self.kind,
            },
            "resources": [
                {"name": e.name, "algorithm": "sha256", "digest": e.sha256, "size": e.size}
                for e in self.entries
            ],
        }
        predicate.update(extra_predicate or {})
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.model_name, "digest": {"sha256": self.root_digest}}],
            "predicateType": PREDICATE_TYPE,
            "predicate": predicate,
        }

    @classmethod
    def from_statement(cls, statement: object) -> Manifest:
        """Read a manifest back from a statement made by :meth:`to_statement`.

        Raises:
            IntegrityError: The statement is not an mlarmor manifest or is inconsistent.
        """
        st = _obj(statement, "statement")
        if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != PREDICATE_TYPE:
            raise IntegrityError(
                f"The signed statement is not an mlarmor manifest: expected _type {STATEMENT_TYPE!r} and "
                f"predicateType {PREDICATE_TYPE!r}, got {st.get('_type')!r} and {st.get('predicateType')!r}. "
                "Verify it with the tool that wrote it, or sign the model again with 'mlarmor sign'."
            )
        subjects = st.get("subject")
        if not isinstance(subjects, list) or len(subjects) != 1:
            raise IntegrityError("The signed statement must have exactly one subject (the model).")
        subject = _obj(subjects[0], "subject")
        digest = _obj(subject.get("digest"), "subject digest").get("sha256")
        model_name = subject.get("name")
        if not isinstance(model_name, str) or not isinstance(digest, str):
            raise IntegrityError("The statement's subject needs a string name and a sha256 digest.")
        predicate = _obj(st.get("predicate"), "predicate")
        ser = _obj(predicate.get("serialization"), "serialization")
        if ser.get("method") != "files" or ser.get("hash_type") != "sha256":
            raise IntegrityError(
                f"Unsupported serialization {ser.get('method')!r}/{ser.get('hash_type')!r}; "
                "mlarmor verifies the 'files' method with 'sha256' only."
            )
        kind = ser.get("target")
        if kind not in ("file", "directory"):
            raise IntegrityError(f"Serialization target must be 'file' or 'directory', got {kind!r}.")
        ignore = ser.get("ignore_paths", [])
        if not isinstance(ignore, list) or not all(isinstance(p, str) for p in ignore):
            raise IntegrityError("Serialization 'ignore_paths' must be a list of strings.")
        resources = predicate.get("resources")
        if not isinstance(resources, list):
            raise IntegrityError("The predicate needs a 'resources' list.")
        entries = tuple(_entry(r) for r in resources)
        names = [e.name for e in entries]
        if names != sorted(set(names)):
            raise IntegrityError("Manifest resources must have unique names in sorted order.")
        manifest = cls(model_name=model_name, kind=kind, entries=entries, ignore_paths=tuple(ignore))
        if manifest.root_digest != digest:
            raise IntegrityError(
                f"The manifest is inconsistent: the subject digest is {digest} but its resources hash to "
                f"{manifest.root_digest}."
            )
        return manifest


def _obj(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise IntegrityError(
            f"The signed statement's {what} must be a JSON object, got {type(value).__name__}."
        )
    return value


def _entry(resource: object) -> FileEntry:
    r = _obj(resource, "resource")
    name, digest, size = r.get("name"), r.get("digest"), r.get("size")
    if r.get("algorithm") != "sha256":
        raise IntegrityError(f"Resource {name!r} uses algorithm {r.get('algorithm')!r}; expected 'sha256'.")
    if not isinstance(name, str) or not _is_relative_posix(name):
        raise IntegrityError(f"Resource name {name!r} is not a relative '/'-separated path.")
    if not isinstance(digest, str) or not _HEX64.fullmatch(digest):
        raise IntegrityError(f"Resource {name!r} has digest {digest!r}; expected 64 lower-case hex digits.")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise IntegrityError(f"Resource {name!r} has size {size!r}; expected a non-negative integer.")
    return FileEntry(name=name, sha256=digest, size=size)


def _is_relative_posix(name: str) -> bool:
    p = PurePosixPath(name)
    return (
        bool(name)
        and not p.is_absolute()
        and "\\" not in name
        and all(part not in ("", ".", "..") for part in name.split("/"))
    )


def build_manifest(
    path: str | os.PathLike[str],
    *,
    exclude: Collection[str | os.PathLike[str]] = (),
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
) -> Manifest:
    """Hash every file of a model file or directory.

    Args:
        path: The model file or directory.
        exclude: Paths to leave out (typically the signature file); those outside the target
            are ignored. They are recorded as ``ignore_paths``.
        workers: Hashing threads; default: one per core (at most 32).
        chunk_size: Bytes hashed at a time.
        progress: Called after each file as ``progress(done, total)``.

    Returns:
        The manifest, entries sorted by name.

    Raises:
        InputError: The path does not exist, cannot be read, or a directory holds a symlink or a
            special file (mlarmor does not follow or sign them: replace links with the files,
            e.g. ``cp -rL``, and remove the rest).

    Example:
        >>> m = build_manifest("model_dir")  # doctest: +SKIP
        >>> [(e.name, e.size) for e in m.entries]  # doctest: +SKIP
        [('config.json', 412), ('weights.safetensors', 1048576)]
    """
    root, kind = resolve_target(path)
    if kind == "file":
        files = [TreeEntry(root.name, root, "file")]
        ignore: tuple[str, ...] = ()
    else:
        ignore = tuple(sorted(names_inside(root, exclude)))
        tree = walk_tree(root, ignore)
        irregular = [t for t in tree if t.type != "file"]
        if irregular:
            listed = ", ".join(
                f"{t.name} ({t.type}{': ' + t.detail if t.detail else ''})" for t in irregular[:5]
            )
            more = f" and {len(irregular) - 5} more" if len(irregular) > 5 else ""
            raise InputError(
                f"{root} holds entries that are not regular files: {listed}{more}. mlarmor does not follow "
                "symlinks or sign special files; replace links with the files they point to (e.g. 'cp -rL') "
                "and remove the rest, then sign again."
            )
        files = tree
    entries = hash_entries(files, workers=workers, chunk_size=chunk_size, progress=progress)
    return Manifest(model_name=root.name, kind=kind, entries=entries, ignore_paths=ignore)
