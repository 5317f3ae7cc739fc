"""Pickle streams as a format: run the inert analysis and turn what it saw into findings."""

from __future__ import annotations

import io
import mmap
import pickletools

from mlarmor.findings import Severity
from mlarmor.scan import rules
from mlarmor.scan._base import Buffer, Scope
from mlarmor.scan._pickle_vm import GlobalUse, PickleAnalysis, analyze_pickle_stream
from mlarmor.scan._pickle_worker import analyze_isolated, can_isolate
from mlarmor.scan.policy import expression_reaches

__all__ = ["FOLLOWED_LOADERS", "analyze_buffer", "looks_like_pickle", "scan_pickle"]

# Allow-listed loaders whose payload is scanned; the call itself is not a finding.
FOLLOWED_LOADERS = frozenset({"torch.storage._load_from_bytes"})

# Opcodes a real pickle can start with (protocol 2+ starts with PROTO; 0/1 with a data opcode).
_FIRST = frozenset(b"\x80(]})NIJKLMFGSTUVXBCc\x8c\x8d\x8e\x88\x89\x8a\x8b\x95i")


def looks_like_pickle(data: Buffer) -> bool:
    """Cheap content check: a PROTO header, or a protocol-0/1 start whose first opcodes decode."""
    if len(data) < 2:
        return False
    first, second = data[0], data[1]
    if first == 0x80:
        return second <= 5
    if first not in _FIRST:
        return False
    head = bytes(data[:512])
    parsed = 0
    try:
        for op, _arg, _pos in pickletools.genops(io.BytesIO(head)):
            parsed += 1
            if op.name == "STOP" or parsed >= 3:
                return True
    except Exception:  # a cut at the 512-byte window or bytes that are not opcodes
        return parsed >= 2 and len(data) > len(head)
    return parsed >= 2


def _stream(data: Buffer) -> io.BytesIO | mmap.mmap:
    if isinstance(data, mmap.mmap):
        return data
    return io.BytesIO(data)


def analyze_buffer(data: Buffer, scope: Scope) -> PickleAnalysis:
    """Run the inert analysis over ``data`` (large streams in a memory-capped child process)."""
    if len(data) > scope.limits.isolate_pickle_bytes and can_isolate():
        path = scope.path if scope.member is None else None
        return analyze_isolated(data, scope.policy, scope.limits, path)
    return analyze_pickle_stream(_stream(data), scope.policy, scope.limits)


_STRING_OPS = frozenset(
    {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
)
_LOCATE_MAX = 16 << 20  # opcode-level locations are worked out for streams up to this size


def _locate_imports(data: Buffer, scope: Scope) -> dict[str, tuple[str, int]]:
    """Map each imported global to the opcode and byte offset of its first import.

    Runs only for small streams that reference something outside the allow-list (it is a second,
    pure-Python pass); STACK_GLOBAL operands are followed through the memo.
    """
    found: dict[str, tuple[str, int]] = {}
    if len(data) > _LOCATE_MAX:
        return found
    raw = bytes(data)
    pos = 0
    while pos < len(raw):
        strings: list[str] = []
        memo: dict[int, str] = {}
        memoized = 0  # MEMOIZE numbers every memoized object, strings or not
        last_op = ""
        try:
            for op, arg, at in pickletools.genops(io.BytesIO(raw[pos:])):
                at = (at or 0) + pos
                name = op.name
                if name in _STRING_OPS and isinstance(arg, str | bytes):
                    strings.append(arg if isinstance(arg, str) else arg.decode("latin-1"))
                elif name in ("PUT", "BINPUT", "LONG_BINPUT") and isinstance(arg, int) and strings:
                    memo[arg] = strings[-1]
                elif name == "MEMOIZE":
                    if strings and last_op in _STRING_OPS:
                        memo[memoized] = strings[-1]
                    memoized += 1
                elif name in ("GET", "BINGET", "LONG_BINGET") and isinstance(arg, int) and arg in memo:
                    strings.append(memo[arg])
                elif name in ("GLOBAL", "INST") and isinstance(arg, str) and " " in arg:
                    module, attr = arg.split(" ", 1)
                    found.setdefault(scope.policy.classify(module, attr).name, (name, at))
                elif name == "STACK_GLOBAL" and len(strings) >= 2:
                    found.setdefault(scope.policy.classify(strings[-2], strings[-1]).name, (name, at))
                last_op = name
                if name == "STOP":
                    pos = at + 1
                    break
            else:
                break
        except Exception:  # the rest is malformed: what was located so far stands
            break
    return found


def _offset_of(data: Buffer, name: str) -> int | None:
    """Byte offset where the last component of ``name`` first appears (when no opcode was located)."""
    needle = name.rsplit(".", 1)[-1].encode("utf-8", "replace")
    if not needle:
        return None
    try:
        haystack = data if isinstance(data, bytes | bytearray | mmap.mmap) else bytes(data)
        pos = haystack.find(needle)
    except (TypeError, ValueError):
        return None
    return pos if pos >= 0 else None


# Resolvers that genuine pickles call with constant arguments (protocol < 4 reaches a nested class
# ``Outer.Inner`` through ``getattr(Outer, "Inner")``): when every call resolved to a name and none of
# those names is dangerous, the names themselves are what is reported.
_RESOLVED_ONLY = frozenset({"builtins.getattr"})


def _resolved_only(name: str, use: GlobalUse, result: PickleAnalysis) -> bool:
    if name not in _RESOLVED_ONLY or not use.resolved or len(use.resolved) != use.called:
        return False
    targets = [result.globals.get(t) for t in use.resolved]
    return all(t is not None and t.verdict.status != "dangerous" for t in targets)


def _module_of(name: str) -> str:
    """The module part of a dotted global: the segments before the first class-like segment."""
    segs = name.split(".")
    for i, seg in enumerate(segs[1:], 1):
        if seg[:1].isupper() or i == len(segs) - 1:
            return ".".join(segs[:i])
    return name


def _report_expressions(name: str, use: GlobalUse, scope: Scope) -> None:
    reached = [r for r in (expression_reaches(scope.policy, e) for e in use.expressions) if r is not None]
    severity = Severity.CRITICAL if reached else Severity.HIGH
    evidence: dict[str, object] = {"global": name, "expressions": use.expressions, "calls": use.called}
    if reached:
        evidence["reaches"] = reached[0].name
        evidence["reason"] = reached[0].reason
    scope.add(
        rules.PICKLE_EVALUATED,
        title=f"Pickle hands an expression to {name}"
        + (f", which reaches {reached[0].name}" if reached else ""),
        severity=severity,
        evidence=evidence,
    )


def scan_pickle(data: Buffer, scope: Scope) -> str:
    """Scan a pickle stream (one or several concatenated pickles)."""
    result = analyze_buffer(data, scope)
    scope.charge(read=result.end)
    report(result, data, scope)
    if result.legacy_torch:
        return "pytorch-legacy"
    if any(name.startswith("joblib.numpy_pickle.") for name in result.globals):
        return "joblib"
    return "pickle"


def report(result: PickleAnalysis, data: Buffer, scope: Scope) -> None:
    """Turn a :class:`PickleAnalysis` into findings on ``scope``."""
    flagged = any(use.verdict.status != "allowed" for use in result.globals.values())
    located = _locate_imports(data, scope) if flagged else {}
    for name, use in result.globals.items():
        v = use.verdict
        if use.expressions:
            _report_expressions(name, use, scope)
        if v.status == "allowed" or _resolved_only(name, use, result):
            continue
        evidence: dict[str, object] = {
            "global": name,
            "category": v.category or "unknown",
            "reason": v.reason,
            "referenced": use.how,
            "references": use.count,
            "calls": use.called,
            "pickle_index": use.pickle_index,
        }
        if use.samples:
            evidence["call_samples"] = use.samples
        opcode, offset = located.get(name, (None, None))
        if opcode is not None:
            evidence["opcode"] = opcode
        else:
            offset = _offset_of(data, name)
        if v.status == "dangerous":
            verb = "calls" if use.called else "imports"
            title = f"{verb} {name} ({v.category or 'dangerous'})"
            scope.add(
                rules.PICKLE_DANGEROUS,
                title=f"Pickle {title}",
                evidence=evidence,
                offset=offset,
            )
        elif use.called:
            scope.add(
                rules.PICKLE_UNKNOWN_CALL,
                title=f"Pickle calls {name}, a callable outside the allow-list",
                evidence=evidence,
                offset=offset,
            )
        else:
            module = _module_of(name)
            scope.add(
                rules.PICKLE_UNKNOWN,
                title=f"Pickle imports module {module} for {name} (outside the allow-list)",
                evidence={**evidence, "module": module, "constructed": use.constructed},
                offset=offset,
            )
    for w in result.writes:
        scope.add(
            rules.PICKLE_GLOBAL_WRITE,
            title=f"Pickle writes into {w.target} ({w.kind})",
            evidence={
                "target": w.target,
                "operation": w.kind,
                "key": w.key,
                "value": w.value,
                "pickle_index": w.pickle_index,
            },
        )
    for i, (loader, payload) in enumerate(result.embedded):
        before = len(scope.findings)
        try:
            fmt = scope.scan_member(payload, f"<{loader} payload #{i}>")
        except Exception as e:  # limits propagate through the engine; anything else is reported
            from mlarmor.errors import ResourceLimitError

            if isinstance(e, ResourceLimitError):
                raise
            fmt = f"unparsed ({e})"
        nested = scope.findings[before:]
        worst = max((f.severity for f in nested), default=Severity.NONE)
        if loader in FOLLOWED_LOADERS and worst < Severity.MEDIUM:
            continue  # a genuine nested tensor blob whose own content is clean
        scope.add(
            rules.PICKLE_EMBEDDED,
            title=f"Pickle passes a {len(payload)}-byte payload to {loader}",
            severity=max(Severity.HIGH, worst),
            evidence={
                "loader": loader,
                "payload_bytes": len(payload),
                "payload_format": fmt,
                "payload_findings": len(nested),
            },
        )
    if result.limit_hit:
        scope.add(
            rules.PICKLE_LIMIT,
            evidence={"calls": result.calls, "limit": scope.limits.max_pickle_calls, "detail": result.error},
            offset=result.error_offset,
        )
    if result.blocked:  # pragma: no cover - the audit hook fired: a scanner defect, fail closed
        scope.add(
            rules.PICKLE_DANGEROUS,
            title="Analysis blocked a side effect",
            evidence={"events": result.blocked},
        )
    if result.error is not None and "STACK_GLOBAL requires str" in result.error:
        scope.add(
            rules.PICKLE_MALFORMED,
            title="Pickle computes the name of an imported global at load time",
            severity=Severity.HIGH,
            description="STACK_GLOBAL receives a name produced by a call the analysis cannot evaluate; "
            "the loader imports whatever that call returns. Everything before this point was analysed; "
            "the rest was not.",
            evidence={"error": result.error, "pickles_completed": result.pickles},
            offset=result.error_offset,
        )
    elif result.error is not None and not result.limit_hit:
        scope.add(
            rules.PICKLE_MALFORMED,
            title=f"Pickle stream breaks at offset {result.error_offset}",
            evidence={"error": result.error, "pickles_completed": result.pickles},
            offset=result.error_offset,
        )
