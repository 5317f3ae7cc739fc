"""Containers: zip (PyTorch, Keras, NumPy .npz, plain), tar, 7z and compressed streams."""

from __future__ import annotations

import ast
import io
import re
from typing import Any

from mlarmor.errors import ResourceLimitError
from mlarmor.scan import rules
from mlarmor.scan._base import Buffer, Scope
from mlarmor.scan._compression import BombError, Decoded, decompress
from mlarmor.scan._zip import ZipEntry, ZipFormatError, read_zip, unsafe_path

__all__ = [
    "looks_like_joblib_zfile",
    "scan_7z",
    "scan_compressed",
    "scan_decoded",
    "scan_joblib_zfile",
    "scan_zip",
]

_STORAGE = re.compile(r"(^|/)(data|\.data)/\d+$|(^|/)\.data/")
_TORCH_META = re.compile(r"(^|/)(version|byteorder|\.format_version|\.storage_alignment)$")
_TS_SAFE_CALLS = re.compile(
    r"^(ops\.(aten|prim|quantized|_caffe2|profiler)|torch|__torch__|annotate|uninitialized|"
    r"isinstance|len|int|float|bool|str|range|enumerate|zip|getattr|hasattr|print|"
    r"unchecked_cast|_\w+|[a-z_][a-z0-9_]*)$"
)
_TS_DANGEROUS_OPS = ("from_file", "_load_for_lite", "load", "save", "_jit_", "system", "popen", "_c_ops")


def _member_bytes(entry: ZipEntry, buf: Buffer, scope: Scope) -> Buffer | None:
    data = entry.data(buf)
    if entry.method == 0:
        return data
    kind = {8: "deflate", 12: "bz2", 14: "lzma"}.get(entry.method)
    if kind is None:
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"Member {entry.name!r} uses unsupported compression method {entry.method}",
            member=entry.name,
            evidence={"method": entry.method},
        )
        return None
    if kind == "lzma":  # zip's LZMA: 4-byte header, then props; decode via raw LZMA1 properties
        return _zip_lzma(data, scope, entry)
    decoded = decompress(kind, data, scope)
    if decoded.problem is not None:
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"Zip member {entry.name!r} cannot be decompressed completely: {decoded.problem}",
            member=entry.name,
            evidence={"member": entry.name, "error": decoded.problem, "decoded_bytes": len(decoded.data)},
        )
        return decoded.data or None  # what decoded is still scanned: a loader runs it before the error
    return decoded.data


def _zip_lzma(data: memoryview, scope: Scope, entry: ZipEntry) -> Buffer | None:
    import lzma

    try:
        psize = int.from_bytes(bytes(data[2:4]), "little")
        props = bytes(data[4 : 4 + psize])
        filt = lzma._decode_filter_properties(lzma.FILTER_LZMA1, props)  # type: ignore[attr-defined]
        d = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[filt])
        out = d.decompress(bytes(data[4 + psize :]), scope.limits.max_member_bytes)
        scope.charge(nbytes=len(out))
        return out
    except lzma.LZMAError as e:
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"Member {entry.name!r} cannot be decompressed",
            member=entry.name,
            evidence={"error": str(e)},
        )
        return None


def _torch_layout(names: list[str]) -> bool:
    return any(n.endswith(("data.pkl", "constants.pkl")) for n in names) and any(
        _TORCH_META.search(n) or "/data/" in n or n.endswith("data.pkl") for n in names
    )


def scan_zip(buf: Buffer, scope: Scope) -> str:
    """Scan a zip archive member by member, PyTorch-reader semantics."""
    try:
        listing = read_zip(buf, max_entries=scope.limits.max_members)
    except ZipFormatError as e:
        scope.add(rules.ARCHIVE_ERROR, title=f"Zip archive cannot be read: {e}", evidence={"error": str(e)})
        return "zip"
    scope.charge(read=46 * len(listing.entries) + sum(len(e.name) for e in listing.entries))
    names = [e.name for e in listing.entries]
    torch_zip = _torch_layout(names)
    from mlarmor.scan._keras import is_keras_archive, scan_keras_config

    keras = not torch_zip and is_keras_archive(names)
    npz = (
        not torch_zip
        and not keras
        and bool(names)
        and all(n.endswith(".npy") for n in names if not n.endswith("/"))
    )
    fmt = "pytorch-zip" if torch_zip else "keras" if keras else "npz" if npz else "zip"
    if torch_zip and any("/code/" in n or n.startswith("code/") for n in names):
        fmt = "torchscript"
    for problem in listing.problems:
        scope.add(rules.ZIP_TAMPER, title=f"Zip archive tampering: {problem}", evidence={"problem": problem})
    for entry in listing.entries:
        for problem in entry.problems:
            rule = rules.ARCHIVE_ERROR if problem.startswith("member data runs past") else rules.ZIP_TAMPER
            scope.add(
                rule,
                title=f"Zip member {entry.name!r}: {problem}",
                member=entry.name,
                evidence={"member": entry.name, "problem": problem},
            )
        why = unsafe_path(entry.name)
        if why:
            scope.add(
                rules.ARCHIVE_PATH,
                title=f"Zip member path {entry.name!r}: {why}",
                member=entry.name,
                evidence={"member": entry.name},
            )
        if entry.is_dir or entry.data_offset < 0:
            continue
        if torch_zip and (_STORAGE.search(entry.name) or _TORCH_META.search(entry.name)):
            continue  # raw tensor storage and metadata: torch never unpickles these
        try:
            scope.charge(read=entry.csize if entry.method != 0 else 0)
            try:
                data = _member_bytes(entry, buf, scope)
            except ResourceLimitError:
                raise
            except Exception as e:  # zlib.error, lzma.LZMAError, OSError: a damaged member, not a crash
                scope.add(
                    rules.ARCHIVE_ERROR,
                    title=f"Zip member {entry.name!r} cannot be decompressed: {e}",
                    member=entry.name,
                    evidence={"member": entry.name, "error": f"{type(e).__name__}: {e}"},
                )
                continue
            if data is None:
                continue
            checkable = entry.method != 0 or len(data) < (64 << 20)  # big stored blobs are never read
            if checkable and not entry.check_crc(data):
                scope.add(
                    rules.ZIP_TAMPER,
                    title=f"Zip member {entry.name!r}: CRC-32 mismatch",
                    member=entry.name,
                    evidence={"member": entry.name, "problem": "CRC-32 does not match the data"},
                )
            if keras and entry.name == "config.json":
                scan_keras_config(data, scope.child(entry.name))
                continue
            if keras and entry.name == "metadata.json":
                continue  # version strings only; Keras never deserialises objects from it
            if (
                torch_zip
                and entry.name.endswith(".py")
                and ("/code/" in entry.name or entry.name.startswith("code/"))
            ):
                _scan_torchscript_code(data, scope, entry.name)
                continue
            if torch_zip and entry.name.endswith(".debug_pkl"):
                scope.scan_member(data, entry.name)
                continue
            scope.scan_member(data, entry.name)
        except BombError as e:
            scope.add(
                rules.ARCHIVE_BOMB,
                title=f"Zip member {entry.name!r} is a decompression bomb",
                member=entry.name,
                evidence={
                    "member": entry.name,
                    "compressed": entry.csize,
                    "declared_size": entry.usize,
                    "expanded_past": e.produced,
                },
            )
    return fmt


def _scan_torchscript_code(data: Buffer, scope: Scope, member: str) -> None:
    """TorchScript code is Python syntax: parse (never run) it and look at what it calls."""
    scope.charge(members=1)
    try:
        tree = ast.parse(bytes(data).decode("utf-8", "replace"))
    except SyntaxError as e:
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"TorchScript code {member!r} does not parse",
            member=member,
            evidence={"error": str(e)},
        )
        return
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names]
            scope.add(
                rules.TORCHSCRIPT_CODE,
                title=f"TorchScript code imports {', '.join(names)}",
                member=member,
                evidence={"imports": names, "line": node.lineno},
            )
        elif isinstance(node, ast.Call):
            dotted = _dotted(node.func)
            if (
                dotted
                and any(tok in dotted for tok in _TS_DANGEROUS_OPS)
                and dotted.startswith(("ops.", "torch."))
            ):
                scope.add(
                    rules.TORCHSCRIPT_CODE,
                    title=f"TorchScript code calls {dotted}",
                    member=member,
                    evidence={"call": dotted, "line": node.lineno},
                )
            elif (
                dotted
                and dotted.startswith("ops.")
                and not _TS_SAFE_CALLS.match(".".join(dotted.split(".")[:2]))
            ):
                scope.add(
                    rules.TORCHSCRIPT_CODE,
                    title=f"TorchScript code calls custom operator {dotted}",
                    severity=rules.ONNX_CUSTOM_DOMAIN.severity,
                    member=member,
                    evidence={"call": dotted, "line": node.lineno},
                )
            elif isinstance(node.func, ast.Name) and node.func.id in (
                "eval",
                "exec",
                "__import__",
                "open",
                "compile",
            ):
                scope.add(
                    rules.TORCHSCRIPT_CODE,
                    title=f"TorchScript code calls {node.func.id}",
                    member=member,
                    evidence={"call": node.func.id, "line": node.lineno},
                )


def _dotted(node: Any) -> str | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return ".".join(reversed(parts))
    return None


def scan_7z(buf: Buffer, scope: Scope) -> str:
    """Scan a 7z archive: sizes are checked from its header before anything is extracted."""
    import py7zr
    import py7zr.io

    try:
        with py7zr.SevenZipFile(io.BytesIO(bytes(buf)), mode="r") as z:
            infos = z.list()
            total = 0
            for info in infos:
                scope.charge(members=1)
                why = unsafe_path(info.filename)
                if why:
                    scope.add(
                        rules.ARCHIVE_PATH,
                        title=f"7z member path {info.filename!r}: {why}",
                        member=info.filename,
                        evidence={"member": info.filename},
                    )
                size = int(info.uncompressed or 0)
                total += size
                if size > scope.limits.max_member_bytes:
                    raise ResourceLimitError(
                        f"7z member {info.filename!r} declares {size} bytes, over the limit"
                    )
            packed = max(len(buf), 1)
            if total > scope.limits.ratio_floor and total / packed > scope.limits.max_ratio:
                raise BombError(total, packed)
            scope.charge(nbytes=total)
            factory = py7zr.io.BytesIOFactory(scope.limits.max_member_bytes)
            z.extract(factory=factory)
            for info in infos:
                if info.is_directory or info.filename not in factory.products:
                    continue
                product = factory.products[info.filename]
                product.seek(0)
                scope.scan_member(product.read(), info.filename)
    except BombError as e:
        scope.add(
            rules.ARCHIVE_BOMB,
            title="7z archive is a decompression bomb",
            evidence={"declared_size": e.produced, "compressed": e.consumed},
        )
    except (py7zr.exceptions.ArchiveError, py7zr.exceptions.Bad7zFile, OSError, ValueError, KeyError) as e:
        scope.add(rules.ARCHIVE_ERROR, title=f"7z archive cannot be read: {e}", evidence={"error": str(e)})
    return "7z"


def scan_compressed(kind: str, buf: Buffer, scope: Scope) -> str:
    """Decompress a whole-file stream (joblib's compressors, .gz, ...) and scan what is inside.

    Every stream of a multi-stream file is decoded and the streams are scanned joined, as the
    codec's file readers return them. A stream that breaks, is cut short or is followed by bytes
    that are not a stream is reported at high; what decoded before the damage is still scanned.
    """
    try:
        decoded = decompress(kind, buf, scope)
    except BombError as e:
        scope.add(
            rules.ARCHIVE_BOMB,
            title=f"{kind} stream is a decompression bomb",
            evidence={"compressed": e.consumed, "expanded_past": e.produced},
        )
        return kind
    return scan_decoded(kind, decoded, scope, f"<{kind}>")


def scan_decoded(kind: str, decoded: Decoded, scope: Scope, member: str) -> str:
    """Report a damaged stream, then scan what was decoded as ``member``; returns ``inner+kind``."""
    if decoded.problem is not None:
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"Compressed stream cannot be read completely: {decoded.problem}",
            offset=decoded.offset,
            evidence={
                "codec": kind,
                "error": decoded.problem,
                "streams": decoded.streams,
                "decoded_bytes": len(decoded.data),
            },
        )
        if len(decoded.data) == 0:
            return kind
    inner_fmt = scope.scan_member(decoded.data, member)
    return f"{inner_fmt}+{kind}"


_ZFILE_HEADER = 21  # b"ZF" + the hex length left-justified to len(hex(2**64)) == 19 characters


def looks_like_joblib_zfile(data: Buffer) -> bool:
    """Whether ``data`` is joblib < 0.10's format: ``ZF``, the hex data length, then a zlib stream."""
    head = bytes(data[:_ZFILE_HEADER])
    if len(head) < _ZFILE_HEADER or not head.startswith(b"ZF0x"):
        return False
    digits = head[4:].rstrip(b" ")
    return bool(digits) and all(c in b"0123456789abcdefABCDEF" for c in digits)


def scan_joblib_zfile(buf: Buffer, scope: Scope) -> str:
    """Scan a joblib < 0.10 ``ZF`` file (a whole pickle, or an array sidecar ``*.npy.z``).

    joblib.load still reads these files; their zlib stream holds the pickle that it unpickles.
    """
    declared = int(bytes(buf[4:_ZFILE_HEADER]).rstrip(b" "), 16)
    start = _ZFILE_HEADER + (1 if bytes(buf[_ZFILE_HEADER : _ZFILE_HEADER + 1]) == b" " else 0)
    view = memoryview(buf)[start:]
    try:
        decoded = decompress("zlib", view, scope)
    except BombError as e:
        scope.add(
            rules.ARCHIVE_BOMB,
            title="joblib ZF stream is a decompression bomb",
            evidence={"compressed": e.consumed, "expanded_past": e.produced, "declared_size": declared},
        )
        return "joblib-zfile"
    finally:
        view.release()
    if decoded.problem is None and len(decoded.data) != declared:
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"joblib ZF file declares {declared} bytes but its stream holds {len(decoded.data)}",
            evidence={"declared_size": declared, "decoded_bytes": len(decoded.data)},
        )
    return scan_decoded("joblib-zfile", decoded, scope, "<joblib zfile>")
