"""The scan engine: sniff content, dispatch to a format handler, recurse, and never crash."""

from __future__ import annotations

import hashlib
import mmap
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mlarmor.errors import InputError, ResourceLimitError
from mlarmor.findings import Family, Finding, Location, Severity
from mlarmor.scan import rules
from mlarmor.scan._archives import (
    looks_like_joblib_zfile,
    scan_7z,
    scan_compressed,
    scan_joblib_zfile,
    scan_zip,
)
from mlarmor.scan._base import Buffer, Limits, Scope
from mlarmor.scan._compression import sniff_compression
from mlarmor.scan._pickle import looks_like_pickle, scan_pickle
from mlarmor.scan._tar import looks_like_tar, scan_tar
from mlarmor.scan.policy import Policy
from mlarmor.schema import FileResult

__all__ = ["Scanner", "sniff"]

_HDF5 = b"\x89HDF\r\n\x1a\n"
_KNOWN_NOT_MODELS = {
    b"\x89PNG": "png image",
    b"\xff\xd8\xff": "jpeg image",
    b"GIF8": "gif image",
    b"%PDF": "pdf document",
    b"\x7fELF": "elf executable",
    b"MZ": "windows executable",
}


def sniff(data: Buffer) -> str:
    """Detect the format of ``data`` from its content (magic bytes and structure), never its name."""
    n = len(data)
    if n == 0:
        return "empty"
    head = bytes(data[:16])
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith(_HDF5):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "npy"
    if head.startswith((b"GGUF", b"FUGG")):
        return "gguf"
    if looks_like_tar(data):
        return "tar"
    if looks_like_joblib_zfile(data):
        return "joblib-zfile"
    comp = sniff_compression(data)
    if comp is not None and comp != "zlib":
        return comp
    if n >= 10 and _looks_like_safetensors(data):
        return "safetensors"
    if looks_like_pickle(data):
        return "pickle"
    if comp == "zlib":
        return comp
    from mlarmor.scan._onnx import looks_like_onnx

    if looks_like_onnx(data):
        return "onnx"
    if b"PK\x05\x06" in bytes(data[-(1 << 16) - 22 :]) and b"PK\x01\x02" in bytes(data[-(1 << 16) - 22 :]):
        return "zip"  # an archive with data prepended
    for magic, label in _KNOWN_NOT_MODELS.items():
        if head.startswith(magic):
            return label
    return "unknown"


def _looks_like_safetensors(data: Buffer) -> bool:
    size = int.from_bytes(bytes(data[:8]), "little")
    return 2 <= size <= len(data) - 8 and bytes(data[8:9]) == b"{"


def _dispatch(data: Buffer, scope: Scope) -> str:
    fmt = sniff(data)
    scope.formats.append(fmt)
    if fmt == "empty":
        scope.add(rules.FILE_EMPTY)
        return fmt
    if fmt == "zip":
        return scan_zip(data, scope)
    if fmt == "tar":
        return scan_tar(data, scope)
    if fmt == "7z":
        return scan_7z(data, scope)
    if fmt == "joblib-zfile":
        return scan_joblib_zfile(data, scope)
    if fmt in ("gzip", "bz2", "xz", "lzma", "lz4", "zlib"):
        return scan_compressed(fmt, data, scope)
    if fmt == "pickle":
        return scan_pickle(data, scope)
    if fmt == "npy":
        from mlarmor.scan._numpy import scan_npy

        return scan_npy(data, scope)
    if fmt == "gguf":
        from mlarmor.scan._gguf import scan_gguf

        return scan_gguf(data, scope)
    if fmt == "safetensors":
        from mlarmor.scan._safetensors import scan_safetensors

        return scan_safetensors(data, scope)
    if fmt == "onnx":
        from mlarmor.scan._onnx import scan_onnx

        return scan_onnx(data, scope)
    if fmt == "hdf5":
        from mlarmor.scan._keras import scan_hdf5

        return scan_hdf5(data, scope)
    detail = "" if fmt == "unknown" else f" (content is a {fmt})"
    scope.add(
        rules.FORMAT_UNKNOWN,
        title=f"Not a recognised model format{detail}",
        evidence={"first_bytes": bytes(data[:16]).hex()},
    )
    return fmt


# What a file's extension claims it is. The extension never decides how the content is parsed (that is
# sniffed); it only says what the file must be able to be.
MODEL_EXTENSIONS: dict[str, str] = {
    ".pt": "PyTorch",
    ".pth": "PyTorch",
    ".ckpt": "PyTorch checkpoint",
    ".bin": "PyTorch (Hugging Face .bin)",
    ".pkl": "pickle",
    ".pickle": "pickle",
    ".joblib": "joblib",
    ".npy": "NumPy",
    ".npz": "NumPy",
    ".onnx": "ONNX",
    ".keras": "Keras",
    ".h5": "Keras/HDF5",
    ".hdf5": "Keras/HDF5",
    ".gguf": "GGUF",
    ".safetensors": "safetensors",
}
_TOP_LEVEL_BREAKS = frozenset({"archive.malformed", "pickle.malformed", "format.malformed"})


def _check_claim(name: str, fmt: str, scope: Scope) -> None:
    """A file named as a model that is empty, unrecognised or broken at its top level fails closed."""
    suffix = Path(name).suffix.lower()
    claimed = MODEL_EXTENSIONS.get(suffix)
    if claimed is None:
        return
    if fmt == "empty":
        why = "it is empty"
    elif fmt == "unknown":
        why = "its content matches no model format"
    elif fmt in _KNOWN_NOT_MODELS.values():
        why = f"its content is a {fmt}"
    elif any(f.id in _TOP_LEVEL_BREAKS and f.location.member is None for f in scope.findings):
        why = f"its {fmt} structure is cut short or broken"
    else:
        return
    scope.add(
        rules.FORMAT_NOT_A_MODEL,
        title=f"{Path(name).name} is named as a {claimed} model ({suffix}), but {why}",
        evidence={"extension": suffix, "content": fmt},
    )


def _recurse(data: Buffer, scope: Scope) -> str:
    """Dispatch an embedded stream; handler defects become findings, limits stop the file."""
    try:
        return _dispatch(data, scope)
    except ResourceLimitError:
        raise
    except RecursionError:
        scope.add(rules.ARCHIVE_LIMIT, title="Structure nests too deeply to analyse")
        return "unknown"


@dataclass
class Scanner:
    """Scans model files and folders without loading or executing anything in them.

    Example:
        >>> from mlarmor.scan import Scanner
        >>> results = Scanner().scan_paths(["model.pt"])  # doctest: +SKIP
        >>> results[0].severity                               # doctest: +SKIP
        <Severity.NONE: 0>
    """

    policy: Policy = field(default_factory=Policy)
    limits: Limits = field(default_factory=Limits)
    workers: int = field(default_factory=lambda: min(4, os.cpu_count() or 1))

    def scan_bytes(self, data: Buffer, name: str = "<bytes>") -> FileResult:
        """Scan an in-memory buffer as if it were a file called ``name``."""
        return self._finish(name, data, time.perf_counter())

    def _run(self, data: Buffer, scope: Scope) -> str:
        try:
            return _dispatch(data, scope)
        except ResourceLimitError as e:
            scope.add(rules.ARCHIVE_LIMIT, title=f"Scan stopped at a limit: {e}", evidence={"limit": str(e)})
        except RecursionError:
            scope.add(rules.ARCHIVE_LIMIT, title="Structure nests too deeply to analyse")
        except Exception as e:  # fail closed: a handler defect is a finding, never a crash
            scope.add(
                rules.ARCHIVE_ERROR,
                title=f"Scanner could not analyse the file: {type(e).__name__}: {e}",
                severity=Severity.HIGH,
                evidence={"error": f"{type(e).__name__}: {e}"},
            )
        return scope.formats[0] if scope.formats else "unknown"

    def scan_file(self, path: str | os.PathLike[str]) -> FileResult:
        """Scan one file (memory-mapped, read lazily)."""
        p = Path(path)
        start = time.perf_counter()
        try:
            st = p.stat()
            if not stat.S_ISREG(st.st_mode):
                kind = "directory" if stat.S_ISDIR(st.st_mode) else "special file (FIFO, socket or device)"
                raise InputError(f"{p} is a {kind}, not a regular file; nothing was read.")
            size = st.st_size
            with open(p, "rb") as fh:
                if size == 0:
                    return self._finish(p, b"", start)
                with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                    return self._finish(p, mm, start)
        except FileNotFoundError as e:
            raise InputError(f"{p} does not exist. Check the path.") from e
        except PermissionError as e:
            raise InputError(f"{p} cannot be read: permission denied. Run with access to the file.") from e
        except IsADirectoryError as e:
            raise InputError(f"{p} is a directory; scan_file expects a file (use scan_paths).") from e
        except OSError as e:
            raise InputError(f"{p} cannot be read: {e.strerror or e}.") from e

    def _finish(self, p: Path | str, data: Buffer, start: float) -> FileResult:
        scope = Scope(path=str(p), limits=self.limits, policy=self.policy, recurse=_recurse)
        fmt = self._run(data, scope)
        _check_claim(str(p), fmt, scope)
        if isinstance(p, Path) and ("pickle" in fmt or "joblib" in fmt):
            self._scan_sidecars(p, scope)
        return FileResult(
            path=str(p),
            format=fmt,
            size=len(data),
            findings=_dedupe(scope.findings),
            members=scope.budget.members,
            bytes_read=scope.budget.bytes + scope.budget.read,
            seconds=round(time.perf_counter() - start, 4),
        )

    def _scan_sidecars(self, p: Path, scope: Scope) -> None:
        """Scan the array files joblib < 0.10 wrote beside a pickle, as part of it.

        ``joblib.dump(obj, "model.pkl")`` before joblib 0.10 stored each array in ``model.pkl_01.npy``
        (``model.pkl_01.npy.z`` when compressed), and ``joblib.load("model.pkl")`` still reads them,
        object arrays with ``allow_pickle=True``: a payload there runs when the pickle is loaded.
        """
        for index in range(1, self.limits.max_members + 1):
            found = False
            for suffix in (".npy", ".npy.z"):
                q = p.with_name(f"{p.name}_{index:02d}{suffix}")
                if q.is_symlink() or not q.is_file():
                    continue
                found = True
                sub = Scope(
                    path=str(q),
                    limits=self.limits,
                    policy=self.policy,
                    recurse=_recurse,
                    depth=1,
                    findings=scope.findings,
                    budget=scope.budget,
                )
                try:
                    scope.charge(members=1)
                    with open(q, "rb") as fh:
                        if os.fstat(fh.fileno()).st_size == 0:
                            self._run(b"", sub)
                            continue
                        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
                            self._run(mm, sub)
                except ResourceLimitError as e:
                    scope.add(
                        rules.ARCHIVE_LIMIT, title=f"Scan stopped at a limit: {e}", evidence={"limit": str(e)}
                    )
                    return
                except OSError as e:
                    sub.add(
                        rules.ARCHIVE_ERROR,
                        title=f"joblib array file beside the pickle cannot be read: {e.strerror or e}",
                        evidence={"error": str(e)},
                    )
            if not found:
                return

    def iter_files(self, paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
        """Expand ``paths``: files as given, directories walked recursively (symlinks not followed)."""
        for raw in paths:
            p = Path(raw)
            if p.is_symlink() and not p.exists():
                raise InputError(f"{p} is a broken symbolic link.")
            if not p.exists():
                raise InputError(f"{p} does not exist. Check the path.")
            if p.is_dir():
                for root, dirs, files in os.walk(p, followlinks=False):
                    dirs.sort()
                    for name in sorted(files):
                        yield Path(root) / name
            else:
                yield p

    def scan_paths(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        on_result: Callable[[FileResult], None] | None = None,
    ) -> list[FileResult]:
        """Scan files and folders; unreadable entries become results with an error finding."""
        files = list(self.iter_files(paths))
        results: list[FileResult] = []

        def one(path: Path) -> FileResult:
            if path.is_symlink():
                return self._symlink_result(path)
            try:
                return self.scan_file(path)
            except InputError as e:
                return FileResult(
                    path=str(path), format="unreadable", findings=[_error_finding(path, str(e))]
                )

        with ThreadPoolExecutor(max_workers=max(1, self.workers)) as pool:
            for result in pool.map(one, files):
                results.append(result)
                if on_result is not None:
                    on_result(result)
        return results

    def _symlink_result(self, path: Path) -> FileResult:
        target = os.readlink(path)
        findings = []
        if os.path.isabs(target) or target.startswith(".."):
            findings.append(
                Finding(
                    id=rules.ARCHIVE_PATH.id,
                    family=Family.TROJAN,
                    title=f"Symbolic link points outside the folder: {target}",
                    severity=Severity.MEDIUM,
                    description="Loading follows the link to a file that was not scanned.",
                    location=Location(path=str(path)),
                    evidence={"target": target},
                    atlas=list(rules.ARCHIVE_PATH.atlas),
                    owasp=list(rules.ARCHIVE_PATH.owasp),
                )
            )
        return FileResult(path=str(path), format="symlink", findings=findings)


def _error_finding(path: Path, message: str) -> Finding:
    return Finding(
        id="file.unreadable",
        family=Family.TROJAN,
        title="File cannot be read",
        severity=Severity.HIGH,
        description=message,
        location=Location(path=str(path)),
        evidence={"error": message},
        atlas=["AML.T0010.003"],
        owasp=["ML06"],
        mitigations=["Fix the file's permissions and scan it again."],
    )


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str | None, int | None]] = set()
    out: list[Finding] = []
    for f in sorted(findings, key=lambda f: -f.severity):
        key = (f.id, f.title, f.location.member, f.location.offset)
        if key not in seen:
            seen.add(key)
            out.append(f)
    return out


def sha256_file(path: Path) -> str:
    """Streaming SHA-256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
