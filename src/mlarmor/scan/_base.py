"""What every format handler shares: limits, rules and the per-file :class:`Scope`."""

from __future__ import annotations

import io
import mmap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from mlarmor.errors import ResourceLimitError, invalid_parameter
from mlarmor.findings import Family, Finding, Location, Severity

if TYPE_CHECKING:
    from mlarmor.scan.policy import Policy

__all__ = ["Buffer", "BufferFile", "Limits", "Rule", "Scope"]

Buffer: TypeAlias = bytes | bytearray | memoryview | mmap.mmap
"""Bytes a handler reads: whole in memory, a zero-copy view, or a memory-mapped file."""

GiB = 1 << 30
MiB = 1 << 20


class BufferFile(io.RawIOBase):
    """Read-only, seekable file over a buffer for libraries that want a file (h5py, tarfile); no copy."""

    def __init__(self, data: Buffer) -> None:
        super().__init__()
        self._view = memoryview(data)
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer: Any) -> int:
        # release the caller's buffer view before returning: the caller may free it right away
        with memoryview(buffer) as raw, raw.cast("B") as out:
            n = max(0, min(len(out), len(self._view) - self._pos))
            out[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def close(self) -> None:
        self._view.release()
        super().close()


@dataclass(frozen=True, kw_only=True, slots=True)
class Limits:
    """Bounds that keep a scan finite on hostile input; exceeding one is a finding, not a crash.

    Attributes:
        max_depth: nesting of archives and embedded streams (an archive in an archive is depth 2).
        max_members: archive members and embedded streams examined in one top-level file.
        max_total_bytes: bytes decompressed or extracted while scanning one top-level file.
        max_member_bytes: decompressed size of a single member or stream.
        max_ratio: decompressed/compressed ratio above which a stream over ``ratio_floor`` bytes
            is treated as a decompression bomb.
        ratio_floor: streams smaller than this are never called bombs.
        max_pickle_calls: calls, instantiations and attribute look-ups recorded in one pickle.
        max_pickle_memory: memory the analysis of one large pickle stream may use (its objects are
            built by CPython's unpickler); streams above ``isolate_pickle_bytes`` are analysed in a
            child process capped at this much, so a hostile stream cannot exhaust the machine.
        isolate_pickle_bytes: pickle streams larger than this are analysed in that capped child.
    """

    max_depth: int = 8
    max_members: int = 100_000
    max_total_bytes: int = 16 * GiB
    max_member_bytes: int = 4 * GiB
    max_ratio: float = 250.0
    ratio_floor: int = 16 * MiB
    max_pickle_calls: int = 500_000
    max_pickle_memory: int = 8 * GiB
    isolate_pickle_bytes: int = 64 * MiB

    def __post_init__(self) -> None:
        for name in (
            "max_depth",
            "max_members",
            "max_total_bytes",
            "max_member_bytes",
            "max_pickle_calls",
            "max_pickle_memory",
            "isolate_pickle_bytes",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise invalid_parameter(name, "Limits", "an int >= 1", value)
        if not self.max_ratio > 1:
            raise invalid_parameter("max_ratio", "Limits", "a float > 1", self.max_ratio)


@dataclass(frozen=True, slots=True)
class Rule:
    """A scanner rule: the stable id, default severity and the text every finding of it carries."""

    id: str
    title: str
    severity: Severity
    description: str
    atlas: tuple[str, ...] = ("AML.T0011.000",)
    owasp: tuple[str, ...] = ("ML06",)
    mitigations: tuple[str, ...] = ()
    family: Family = Family.TROJAN


@dataclass(slots=True)
class _Budget:
    members: int = 0
    bytes: int = 0
    read: int = 0


@dataclass(slots=True)
class Scope:
    """Where a handler is (file, member chain, depth) and how it reports and recurses.

    A handler reads its buffer, calls :meth:`add` for each problem and :meth:`scan_member` for
    each embedded stream it wants scanned like a file of its own.
    """

    path: str
    limits: Limits
    policy: Policy
    recurse: Callable[[Buffer, Scope], str]
    member: str | None = None
    depth: int = 0
    findings: list[Finding] = field(default_factory=list)
    budget: _Budget = field(default_factory=_Budget)
    formats: list[str] = field(default_factory=list)

    def location(self, offset: int | None = None, member: str | None = None) -> Location:
        """Location of ``offset`` in the current member (or in ``member`` below it)."""
        chain = self.member
        if member is not None:
            chain = f"{chain}/{member}" if chain else member
        return Location(path=self.path, member=chain, offset=offset)

    def add(
        self,
        rule: Rule,
        *,
        title: str | None = None,
        severity: Severity | None = None,
        evidence: dict[str, Any] | None = None,
        offset: int | None = None,
        member: str | None = None,
        description: str | None = None,
    ) -> Finding:
        """Record a finding of ``rule`` at the current location."""
        finding = Finding(
            id=rule.id,
            family=rule.family,
            title=title or rule.title,
            severity=rule.severity if severity is None else severity,
            description=description or rule.description,
            evidence=evidence or {},
            location=self.location(offset, member),
            atlas=list(rule.atlas),
            owasp=list(rule.owasp),
            mitigations=list(rule.mitigations),
        )
        self.findings.append(finding)
        return finding

    def child(self, member: str) -> Scope:
        """Scope of an embedded member one level deeper (shares findings and budget)."""
        chain = f"{self.member}/{member}" if self.member else member
        return Scope(
            path=self.path,
            limits=self.limits,
            policy=self.policy,
            recurse=self.recurse,
            member=chain,
            depth=self.depth + 1,
            findings=self.findings,
            budget=self.budget,
            formats=self.formats,
        )

    def charge(self, *, members: int = 0, nbytes: int = 0, read: int = 0) -> None:
        """Count members and decompressed bytes against the limits; raise when one is exceeded.

        ``read`` counts bytes parsed from the file or a member (reported as ``bytes_read``; it has no limit).
        """
        self.budget.read += read
        self.budget.members += members
        self.budget.bytes += nbytes
        if self.budget.members > self.limits.max_members:
            raise ResourceLimitError(
                f"more than {self.limits.max_members} archive members or embedded streams "
                "(raise --max-members if the file is trusted)"
            )
        if self.budget.bytes > self.limits.max_total_bytes:
            raise ResourceLimitError(
                f"more than {self.limits.max_total_bytes} bytes decompressed or extracted "
                "(raise --max-total-bytes if the file is trusted)"
            )

    def scan_member(self, data: Buffer, member: str) -> str:
        """Scan ``data`` like a file of its own, one level deeper; returns the detected format."""
        scope = self.child(member)
        if scope.depth > self.limits.max_depth:
            raise ResourceLimitError(
                f"nesting deeper than {self.limits.max_depth} levels at {scope.member!r} "
                "(raise --max-depth if the file is trusted)"
            )
        scope.charge(members=1)
        return self.recurse(data, scope)
