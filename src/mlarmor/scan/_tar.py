"""Tar archives of every variant: V7 (no magic, a header checksum), ustar, GNU and PAX.

Members are found the way GNU tar with ``--ignore-zeros`` finds them, so that a member Python's
tarfile never reaches (after an end-of-archive block or a junk block) is still scanned, and the
gap is reported. Members are sniffed by content; their names say nothing.
"""

from __future__ import annotations

import io
import posixpath
import tarfile

from mlarmor.errors import ResourceLimitError
from mlarmor.scan import rules
from mlarmor.scan._base import Buffer, BufferFile, Scope
from mlarmor.scan._zip import unsafe_path

__all__ = ["looks_like_tar", "scan_tar"]


def looks_like_tar(data: Buffer) -> bool:
    """Whether ``data`` starts with a tar header of any variant (V7, ustar, GNU, PAX).

    V7 headers carry no magic: what makes them a header is the checksum at offset 148, the sum of the
    512 header bytes with that field read as spaces (unsigned, or signed as old tars wrote it).
    """
    if len(data) < 512:
        return False
    head = bytes(data[:512])
    if head[257:262] == b"ustar":
        return True
    field = head[148:156].replace(b"\x00", b" ").strip()
    if not field or not field.isdigit() or b"8" in field or b"9" in field or not head[0]:
        return False
    stored = int(field, 8)
    blanked = head[:148] + b" " * 8 + head[156:]
    unsigned = sum(blanked)
    signed = unsigned - 256 * sum(1 for b in blanked if b > 127)
    return stored in (unsigned, signed) and unsigned != 8 * 0x20


def scan_tar(buf: Buffer, scope: Scope) -> str:
    """Scan a tar archive of any variant (V7, ustar, GNU, PAX; PyTorch's legacy format included).

    Members are found the way GNU tar with ``--ignore-zeros`` finds them, past zero blocks and bytes
    that are not headers; a member that Python's tarfile (which stops at the first such block) would
    not reach, and bytes at the end that form no header, are reported at high.
    """
    names: list[str] = []
    try:
        with tarfile.open(fileobj=io.BufferedReader(BufferFile(buf)), mode="r:", ignore_zeros=True) as tf:
            while True:
                expected = tf.offset
                member = tf.next()
                if member is None:
                    break
                scope.charge(members=1)
                names.append(member.name)
                if member.offset > expected:
                    _report_gap(buf, scope, expected, member.offset, member.name)
                _tar_member(tf, member, scope)
            _report_tail(buf, scope, expected)  # where the last member ended
    except tarfile.TarError as e:
        scope.add(rules.ARCHIVE_ERROR, title=f"Tar archive is malformed: {e}", evidence={"error": str(e)})
    legacy = {"sys_info", "pickle", "storages", "tensors"} <= {posixpath.basename(n) for n in names}
    return "pytorch-tar" if legacy else "tar"


def _report_gap(buf: Buffer, scope: Scope, start: int, end: int, name: str) -> None:
    gap = bytes(buf[start:end])
    what = (
        "an end-of-archive block" if not gap.strip(b"\x00") else f"{end - start} bytes that are no tar header"
    )
    scope.add(
        rules.ARCHIVE_ERROR,
        title=f"Tar member {name!r} at offset {end} comes after {what}",
        member=name,
        offset=start,
        evidence={"member": name, "gap_start": start, "gap_end": end},
        description="Python's tarfile stops reading at this point and does not see the member, while "
        "GNU tar --ignore-zeros and other extractors do: a way to hide a member from scanners.",
    )


def _report_tail(buf: Buffer, scope: Scope, end: int) -> None:
    if any(bytes(buf[at : at + (1 << 20)]).strip(b"\x00") for at in range(end, len(buf), 1 << 20)):
        scope.add(
            rules.ARCHIVE_ERROR,
            title=f"Tar archive ends with {len(buf) - end} bytes at offset {end} that are no complete member",
            offset=end,
            evidence={"offset": end, "trailing_bytes": len(buf) - end},
        )


def _tar_member(tf: tarfile.TarFile, member: tarfile.TarInfo, scope: Scope) -> None:
    why = unsafe_path(member.name)
    if why:
        scope.add(
            rules.ARCHIVE_PATH,
            title=f"Tar member path {member.name!r}: {why}",
            member=member.name,
            evidence={"member": member.name},
        )
    if member.issym() or member.islnk():
        target = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), member.linkname))
        if member.linkname.startswith("/") or target.startswith(".."):
            scope.add(
                rules.ARCHIVE_PATH,
                title=f"Tar link {member.name!r} points outside the archive",
                member=member.name,
                evidence={"member": member.name, "target": member.linkname},
            )
        return
    if not member.isfile():
        return
    if member.size > scope.limits.max_member_bytes:
        raise ResourceLimitError(
            f"tar member {member.name!r} is larger than {scope.limits.max_member_bytes} bytes"
        )
    fh = tf.extractfile(member)
    if fh is None:
        return
    data = fh.read()
    scope.charge(nbytes=len(data))
    scope.scan_member(data, member.name)  # by content: the member's name says nothing
