"""Verifying a model file or directory against its signed manifest.

The signature is checked first, over the DSSE PAE of the envelope's payload. Only a manifest
whose signature checks out with the given public key is compared with the files on disk: an
unauthenticated manifest says nothing trustworthy, so a bad signature is reported on its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mlarmor.errors import IntegrityError
from mlarmor.findings import Finding, Location, Severity
from mlarmor.integrity._files import (
    CHUNK_SIZE,
    FileEntry,
    ProgressCallback,
    TreeEntry,
    hash_entries,
    names_inside,
    resolve_target,
    walk_tree,
)
from mlarmor.integrity.keys import key_id, load_public_key
from mlarmor.integrity.manifest import Manifest
from mlarmor.integrity.signing import Envelope, default_signature_path, pae, read_signature
from mlarmor.risk.catalogue import INTEGRITY_BAD_SIGNATURE, INTEGRITY_FILE, INTEGRITY_WRONG_KEY, SUPPLY_CHAIN
from mlarmor.schema import Report

__all__ = ["FileDifference", "VerificationResult", "verify_path"]


Change = Literal["added", "removed", "changed", "renamed"]


def _bytes(n: int) -> str:
    return f"{n} byte" if n == 1 else f"{n} bytes"


@dataclass(frozen=True, slots=True)
class FileDifference:
    """One way the files on disk differ from the signed manifest.

    Attributes:
        change: ``added``, ``removed``, ``changed`` (content, size or file type) or ``renamed``
            (same content under a new name).
        name: The file's name now (for ``removed``: the signed name).
        expected: The signed entry, if any.
        actual: The entry on disk, if it is a regular file.
        actual_type: What is on disk: ``file``, ``symlink``, ``special`` or ``missing``.
        detail: A symlink's target or a special file's type.
    """

    change: Change
    name: str
    expected: FileEntry | None = None
    actual: FileEntry | None = None
    actual_type: Literal["file", "symlink", "special", "missing"] = "file"
    detail: str = ""

    def summary(self) -> str:
        """What differs, in a few words, without the file name."""
        if self.change == "renamed" and self.expected is not None:
            return f"renamed from {self.expected.name} (same content)"
        if self.actual_type in ("symlink", "special"):
            what = f"a symlink to {self.detail!r}" if self.actual_type == "symlink" else f"a {self.detail}"
            verb = "added as" if self.change == "added" else "replaced by"
            return f"{verb} {what} (not followed, not signed)"
        if self.change == "added" and self.actual is not None:
            return f"added: {_bytes(self.actual.size)}, sha256 {self.actual.sha256[:12]}"
        if self.change == "removed":
            return "removed"
        e, a = self.expected, self.actual
        if e is not None and a is not None:
            size = f", size {e.size} -> {_bytes(a.size)}" if e.size != a.size else f", size {_bytes(a.size)}"
            return f"content changed: sha256 {e.sha256[:12]} -> {a.sha256[:12]}{size}"
        return self.change

    def describe(self) -> str:
        """One line saying which file differs and how."""
        return f"{self.name}: {self.summary()}"

    def finding(self, root: Path, kind: str) -> Finding:
        """This difference as a :class:`~mlarmor.findings.Finding`."""
        evidence: dict[str, object] = {"change": self.change, "actual_type": self.actual_type}
        if self.expected is not None:
            evidence.update(
                expected_name=self.expected.name,
                expected_sha256=self.expected.sha256,
                expected_size=self.expected.size,
            )
        if self.actual is not None:
            evidence.update(actual_sha256=self.actual.sha256, actual_size=self.actual.size)
        if self.detail:
            evidence["detail"] = self.detail
        location = Location(path=str(root), member=self.name if kind == "directory" else None)
        severity = INTEGRITY_FILE.fixed_severity(self.change) or Severity.HIGH
        titles = {
            "added": "File added after signing",
            "removed": "Signed file removed",
            "changed": "Signed file changed",
            "renamed": "Signed file renamed",
        }
        title = titles[self.change]
        if self.actual_type == "symlink":
            title = (
                "Symlink added after signing"
                if self.change == "added"
                else "Signed file replaced by a symlink"
            )
        elif self.actual_type == "special":
            title = (
                "Special file added after signing"
                if self.change == "added"
                else "Signed file replaced by a special file"
            )
        return INTEGRITY_FILE.finding(
            variant=self.change,
            title=f"{title}: {self.name}",
            severity=severity,
            description=(
                f"{self.describe()}. The model on disk is not the one that was signed; a tampered file "
                "can carry code that runs at load time or altered weights."
            ),
            evidence=evidence,
            location=location,
            atlas=None if self.change in ("added", "changed") else [SUPPLY_CHAIN],
        )


@dataclass(frozen=True, slots=True)
class VerificationResult:
    """The outcome of :func:`verify_path`.

    Attributes:
        path: The resolved model file or directory.
        kind: ``file`` or ``directory``.
        signature_path: The signature file read.
        key_id: Id of the public key used to verify.
        signature_key_ids: Key ids claimed by the envelope's signatures.
        signature_valid: Whether a signature checked out with the key.
        manifest: The signed manifest (``None`` unless the signature is valid).
        differences: How the files differ from the manifest, sorted by name.
        files_checked: Entries found on disk and compared.
        signed_at: The signing time recorded in the statement, if any.
    """

    path: Path
    kind: Literal["file", "directory"]
    signature_path: Path
    key_id: str
    signature_key_ids: tuple[str, ...]
    signature_valid: bool
    manifest: Manifest | None = None
    differences: tuple[FileDifference, ...] = ()
    files_checked: int = 0
    signed_at: str | None = None

    @property
    def ok(self) -> bool:
        """True when the signature is valid and every file matches."""
        return self.signature_valid and not self.differences

    @property
    def key_matches(self) -> bool:
        """Whether the envelope names the verifying key (an unsigned hint, see ``signature_valid``)."""
        return self.key_id in self.signature_key_ids

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="verify"`` report: the findings, and what was checked under ``metadata``."""
        m = self.manifest
        meta: dict[str, Any] = {
            "path": str(self.path),
            "signature": str(self.signature_path),
            "key_id": self.key_id,
            "signature_key_ids": list(self.signature_key_ids),
            "signature_valid": self.signature_valid,
            "ok": self.ok,
            "model_name": m.model_name if m else None,
            "root_digest": m.root_digest if m else None,
            "files_signed": len(m.entries) if m else None,
            "files_checked": self.files_checked,
            "signed_at": self.signed_at,
        }
        meta.update(metadata or {})
        return Report(kind="verify", findings=list(self.findings), metadata=meta)

    @property
    def findings(self) -> tuple[Finding, ...]:
        """A bad signature or every difference, as findings of family ``integrity``."""
        if not self.signature_valid:
            return (self._signature_finding(),)
        return tuple(d.finding(self.path, self.kind) for d in self.differences)

    def _signature_finding(self) -> Finding:
        wrong_key = not self.key_matches
        evidence = {"key_id": self.key_id, "signature_key_ids": list(self.signature_key_ids)}
        if wrong_key:
            claimed = ", ".join(k[:16] + "..." for k in self.signature_key_ids) or "none"
            return INTEGRITY_WRONG_KEY.finding(
                title="Signature was made with a different key",
                severity=Severity.CRITICAL,
                description=(
                    f"{self.signature_path} is not signed by the given public key "
                    f"(key id {self.key_id[:16]}...); it claims key id(s) {claimed}. The files were not "
                    "compared, because an unauthenticated manifest proves nothing."
                ),
                evidence=evidence,
                location=Location(path=str(self.signature_path)),
            )
        return INTEGRITY_BAD_SIGNATURE.finding(
            title="Signature does not match the signed manifest",
            severity=Severity.CRITICAL,
            description=(
                f"The signature in {self.signature_path} does not verify with the given key: the manifest or "
                "the signature was altered after signing. The files were not compared."
            ),
            evidence=evidence,
            location=Location(path=str(self.signature_path)),
        )


def _check_signature(envelope: Envelope, public_key: Ed25519PublicKey) -> bool:
    message = pae(envelope.payload_type, envelope.payload)
    for s in envelope.signatures:
        try:
            public_key.verify(s.sig, message)
        except InvalidSignature:
            continue
        return True
    return False


def verify_path(
    path: str | os.PathLike[str],
    public_key: Ed25519PublicKey | str | os.PathLike[str],
    *,
    signature: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
) -> VerificationResult:
    """Check a model file or directory against its signature.

    Args:
        path: The model file or directory.
        public_key: An Ed25519 public key, or the path of its PEM file.
        signature: The signature file; default :func:`~mlarmor.integrity.signing.default_signature_path`.
        workers: Hashing threads; default one per core.
        chunk_size: Bytes hashed at a time.
        progress: Called after each file as ``progress(done, total)``.

    Returns:
        A :class:`VerificationResult`; ``result.ok`` is true when everything matches. For a single
        file the content is compared whatever the file is called now.

    Raises:
        InputError: The model, key or signature file is missing or unreadable.
        IntegrityError: The key is not an Ed25519 public key, the signature file is corrupt, or a
            validly signed manifest cannot be used (another format, or it signs a directory when
            ``path`` is a file and vice versa).

    Example:
        >>> result = verify_path("model_dir", "keys/release.pub")  # doctest: +SKIP
        >>> result.ok, [f.id for f in result.findings]  # doctest: +SKIP
        (False, ['integrity.file-changed'])
    """
    key = public_key if isinstance(public_key, Ed25519PublicKey) else load_public_key(public_key)
    root, kind = resolve_target(path)
    sig_path = Path(signature) if signature is not None else default_signature_path(path)
    envelope = read_signature(sig_path)
    base = VerificationResult(
        path=root,
        kind=kind,
        signature_path=sig_path,
        key_id=key_id(key),
        signature_key_ids=envelope.key_ids,
        signature_valid=False,
    )
    if not _check_signature(envelope, key):
        return base
    statement = envelope.statement()
    manifest = Manifest.from_statement(statement)
    if manifest.kind != kind:
        raise IntegrityError(
            f"{sig_path} signs a {manifest.kind} ({manifest.model_name!r}) but {path} is a {kind}; "
            "pass the path that was signed."
        )
    predicate = statement.get("predicate", {})
    signed_at = predicate.get("created_at") if isinstance(predicate.get("created_at"), str) else None
    differences, checked = _compare(root, kind, manifest, sig_path, workers, chunk_size, progress)
    return VerificationResult(
        path=root,
        kind=kind,
        signature_path=sig_path,
        key_id=base.key_id,
        signature_key_ids=envelope.key_ids,
        signature_valid=True,
        manifest=manifest,
        differences=differences,
        files_checked=checked,
        signed_at=signed_at,
    )


def _compare(
    root: Path,
    kind: str,
    manifest: Manifest,
    sig_path: Path,
    workers: int | None,
    chunk_size: int,
    progress: ProgressCallback | None,
) -> tuple[tuple[FileDifference, ...], int]:
    if kind == "file":
        (actual,) = hash_entries(
            [TreeEntry(root.name, root, "file")], workers=1, chunk_size=chunk_size, progress=progress
        )
        expected = manifest.entries[0] if len(manifest.entries) == 1 else None
        if expected is None:
            raise IntegrityError("A single-file manifest must list exactly one file.")
        if (expected.sha256, expected.size) == (actual.sha256, actual.size):
            return (), 1
        return (FileDifference("changed", actual.name, expected=expected, actual=actual),), 1

    tree = walk_tree(root, tuple(names_inside(root, [sig_path])))
    regular = [t for t in tree if t.type == "file"]
    hashed = {
        e.name: e for e in hash_entries(regular, workers=workers, chunk_size=chunk_size, progress=progress)
    }
    signed = manifest.by_name()
    diffs: list[FileDifference] = []
    added: list[FileDifference] = []
    present = {t.name for t in tree}
    for t in tree:
        exp = signed.get(t.name)
        act = hashed.get(t.name)
        if t.type != "file":
            change: Change = "added" if exp is None else "changed"
            diffs.append(FileDifference(change, t.name, expected=exp, actual_type=t.type, detail=t.detail))
        elif exp is None:
            added.append(FileDifference("added", t.name, actual=act))
        elif act is not None and (exp.sha256, exp.size) != (act.sha256, act.size):
            diffs.append(FileDifference("changed", t.name, expected=exp, actual=act))
    removed = [e for e in manifest.entries if e.name not in present]
    unmatched = {(e.sha256, e.size): e for e in reversed(removed)}
    for d in added:
        original = unmatched.pop((d.actual.sha256, d.actual.size), None) if d.actual else None
        if original is not None:
            diffs.append(FileDifference("renamed", d.name, expected=original, actual=d.actual))
        else:
            diffs.append(d)
    renamed_from = {d.expected.name for d in diffs if d.change == "renamed" and d.expected is not None}
    diffs.extend(
        FileDifference("removed", e.name, expected=e, actual_type="missing")
        for e in removed
        if e.name not in renamed_from
    )
    diffs.sort(key=lambda d: (d.name, d.change))
    return tuple(diffs), len(tree)
