"""The inert unpickler: what it records, and proof that nothing it reads can run."""

from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlarmor.findings import Severity
from mlarmor.scan import Limits, Policy, Scanner
from mlarmor.scan._pickle_vm import (
    PickleAnalysis,
    _Inert,
    _InertUnpickler,
    _StubMeta,
    _Tracer,
    analyze_pickle_stream,
)


def _touch_payload(canary: Path, name: str = "ran") -> str:
    return f"touch {canary / name}"


class _Reduce:
    """Pickling (never unpickling) an object whose __reduce__ names a callable."""

    def __init__(self, func: object, *args: object) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return self.func, self.args


def _ids(result) -> set[str]:
    return {f.id for f in result.findings}


def _globals(result) -> set[str]:
    return {f.evidence.get("global") for f in result.findings if "global" in f.evidence}


@pytest.mark.parametrize("proto", [0, 1, 2, 3, 4, 5])
def test_os_system_reduce_every_protocol(scanner: Scanner, canary: Path, proto: int) -> None:
    data = pickle.dumps(_Reduce(os.system, _touch_payload(canary)), protocol=proto)
    result = scanner.scan_bytes(data)
    assert result.severity == Severity.CRITICAL
    finding = next(f for f in result.findings if f.id == "pickle.dangerous-global")
    assert finding.evidence["global"] in {"posix.system", "nt.system"}
    assert finding.evidence["calls"] == 1
    assert str(canary) in finding.evidence["call_samples"][0]


def test_eval_and_exec_are_critical(scanner: Scanner, canary: Path) -> None:
    code = f"open({str(canary / 'x')!r}, 'w').close()"
    for func in (eval, exec):
        result = scanner.scan_bytes(pickle.dumps(_Reduce(func, code)))
        assert result.severity == Severity.CRITICAL
        assert f"builtins.{func.__name__}" in _globals(result)


def _call_result(inner: _Reduce, *args: object) -> bytes:
    """Assemble: <inner REDUCE> (args) REDUCE STOP, by hand."""
    body = pickle.dumps(inner, protocol=4)
    assert body.endswith(b".")
    tup = b"".join(b"\x8c" + len(a.encode()).to_bytes(1, "little") + a.encode() for a in args) + b"\x85"
    return body[:-1] + tup + b"R."


def test_call_of_resolved_global(scanner: Scanner, canary: Path) -> None:
    import importlib

    system = _Reduce(getattr, _Reduce(importlib.import_module, "os"), "system")
    data = _call_result(system, _touch_payload(canary))
    result = scanner.scan_bytes(data)
    names = _globals(result)
    assert {"importlib.import_module", "builtins.getattr", "os.system"} <= names
    resolved = next(f for f in result.findings if f.evidence.get("global") == "os.system")
    assert resolved.evidence["referenced"].startswith("resolved by builtins.getattr")
    assert resolved.evidence["calls"] == 1
    assert result.severity == Severity.CRITICAL


def test_concatenated_second_pickle_is_scanned(scanner: Scanner, canary: Path) -> None:
    data = pickle.dumps({"weights": [1.0, 2.0]}) + pickle.dumps(_Reduce(os.system, _touch_payload(canary)))
    result = scanner.scan_bytes(data)
    assert result.severity == Severity.CRITICAL
    finding = next(f for f in result.findings if f.id == "pickle.dangerous-global")
    assert finding.evidence["pickle_index"] == 1


def test_stream_broken_after_payload(scanner: Scanner, canary: Path) -> None:
    data = pickle.dumps([_Reduce(os.system, _touch_payload(canary)), "x" * 50], protocol=2)
    cut = data[: data.index(b"R") + 1] + b"\xff\xff"  # REDUCE ran, then garbage
    result = scanner.scan_bytes(cut)
    assert "pickle.dangerous-global" in _ids(result)
    assert "pickle.malformed" in _ids(result)


def test_embedded_second_stage_is_scanned(scanner: Scanner, canary: Path) -> None:
    inner = pickle.dumps(_Reduce(os.system, _touch_payload(canary)))
    data = pickle.dumps(_Reduce(pickle.loads, inner))
    result = scanner.scan_bytes(data)
    assert "pickle.embedded-payload" in _ids(result)
    nested = [f for f in result.findings if f.location.member and "payload" in f.location.member]
    assert any(f.evidence.get("global") in {"posix.system", "nt.system"} for f in nested)


def test_sys_modules_write_is_reported(scanner: Scanner) -> None:
    # GLOBAL sys.modules, then SETITEM 'json' -> 'x'
    data = b"\x80\x02csys\nmodules\n\x8c\x04json\x8c\x01xs."
    result = scanner.scan_bytes(data)
    assert "pickle.global-write" in _ids(result)
    write = next(f for f in result.findings if f.id == "pickle.global-write")
    assert write.evidence["target"] == "sys.modules"


def test_build_slot_state_on_module_is_a_global_write(scanner: Scanner) -> None:
    # GLOBAL collections.OrderedDict ; state (None, {'__init__': 'x'}) ; BUILD
    data = b"\x80\x02ccollections\nOrderedDict\nN}\x8c\x08__init__\x8c\x01xs\x86b."
    result = scanner.scan_bytes(data)
    assert "pickle.global-write" in _ids(result)


def test_py2_names_are_mapped(scanner: Scanner) -> None:
    data = b"c__builtin__\neval\n(S'1+1'\ntR."
    result = scanner.scan_bytes(data)
    assert "builtins.eval" in _globals(result)
    assert result.severity == Severity.CRITICAL


def test_dotted_attribute_chain(scanner: Scanner) -> None:
    # protocol 4 STACK_GLOBAL with module 'posixpath' and name 'os.system'
    data = b"\x80\x04\x8c\tposixpath\x8c\tos.system\x93\x8c\x04true\x85R."
    result = scanner.scan_bytes(data)
    assert "os.system" in _globals(result)
    assert result.severity == Severity.CRITICAL


def test_memo_and_newobj_paths(scanner: Scanner) -> None:
    # names through memo: put 'os' and 'system' in the memo, fetch them, STACK_GLOBAL, NEWOBJ
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x04true\x85\x81."
    result = scanner.scan_bytes(data)
    assert "os.system" in _globals(result)


def test_persistent_ids_are_inert(scanner: Scanner) -> None:
    data = b"\x80\x02(\x8c\x07storage\x8c\x01xtQ."
    result = scanner.scan_bytes(data)
    assert result.severity == Severity.NONE


def test_unknown_class_reconstructed_is_medium_with_full_name(scanner: Scanner) -> None:
    data = b"\x80\x02cmycompany.models\nNet\n)\x81}b."  # NEWOBJ + BUILD: the normal class path
    result = scanner.scan_bytes(data)
    assert result.severity == Severity.MEDIUM
    assert "mycompany.models.Net" in _globals(result)
    assert _ids(result) == {"pickle.unknown-global"}


def test_unknown_class_called_is_high(scanner: Scanner) -> None:
    data = b"\x80\x02cmycompany.models\nNet\n)R."  # REDUCE: Net() runs Net.__init__
    result = scanner.scan_bytes(data)
    assert result.severity == Severity.HIGH
    assert _ids(result) == {"pickle.unknown-call"}


def test_policy_allows_in_house_class() -> None:
    data = b"\x80\x02cmycompany.models\nNet\n)R."
    result = Scanner(policy=Policy(allow=frozenset({"mycompany.models.*"}))).scan_bytes(data)
    assert result.severity == Severity.NONE


def test_call_limit_is_a_finding() -> None:
    body = b"cmycompany\nf\n" + b")R" * 50 + b"."
    result = Scanner(limits=Limits(max_pickle_calls=10)).scan_bytes(body)
    assert "pickle.resource-limit" in _ids(result)
    assert result.severity >= Severity.HIGH


def test_benign_containers_are_clean(scanner: Scanner) -> None:
    import collections
    import datetime

    obj = {
        "a": [1, 2.5, "x", b"y", None, True],
        "b": collections.OrderedDict(k=(1, 2)),
        "c": datetime.datetime(2024, 1, 2),
        "d": {1, 2},
        "e": frozenset({3}),
        "f": bytearray(b"z"),
    }
    for proto in range(6):
        result = scanner.scan_bytes(pickle.dumps(obj, protocol=proto))
        assert result.severity == Severity.NONE, (proto, result.findings)


# --- proof that nothing real comes out of the unpickler ---------------------------------------
_SAFE_TYPES = (
    str,
    bytes,
    bytearray,
    int,
    float,
    bool,
    type(None),
    list,
    tuple,
    dict,
    set,
    frozenset,
    pickle.PickleBuffer,
    _Inert,
)


def _walk(obj: object, seen: set[int]) -> None:
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, _StubMeta):
        return
    assert isinstance(obj, _SAFE_TYPES), f"real object of type {type(obj)!r} escaped"
    if isinstance(obj, dict):
        for k, v in obj.items():
            _walk(k, seen)
            _walk(v, seen)
    elif isinstance(obj, list | tuple | set | frozenset):
        for x in obj:
            _walk(x, seen)


_FRAGMENTS = [
    b"\x80\x02",
    b"\x80\x04",
    b"(",
    b")",
    b"]",
    b"}",
    b"N",
    b"\x88",
    b"\x89",
    b"K\x01",
    b"J\x00\x00\x00\x01",
    b"\x8c\x02os",
    b"\x8c\x06system",
    b"\x8c\x08builtins",
    b"\x8c\x04eval",
    b"\x8c\x0bcollections",
    b"\x8c\x0bOrderedDict",
    b"\x93",
    b"cos\nsystem\n",
    b"cbuiltins\ngetattr\n",
    b"ccollections\nOrderedDict\n",
    b"R",
    b"\x81",
    b"\x92",
    b"b",
    b"o",
    b"i__main__\nX\n",
    b"s",
    b"u",
    b"a",
    b"e",
    b"t",
    b"\x85",
    b"\x86",
    b"\x87",
    b"\x94",
    b"h\x00",
    b"h\x01",
    b"q\x00",
    b"0",
    b"1",
    b"2",
    b"Q",
    b"\x82\x01",
    b"\x97",
    b"\x98",
    b"\x96",
    b"\x90",
    b"\x91",
    b"\x8f",
    b"\x95\x05\x00\x00\x00\x00\x00\x00\x00",
    b"C\x01x",
    b"X\x01\x00\x00\x00y",
]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=40))
def test_random_opcode_streams_never_yield_real_objects(frags: list[bytes]) -> None:
    data = b"".join(frags) + b"."
    modules_before = set(sys.modules)
    result = PickleAnalysis()
    stream = io.BytesIO(data)
    tracer = _Tracer(Policy(), Limits(), result, stream)
    try:
        value = _InertUnpickler(stream, tracer, 4).load()
    except Exception:
        value = None
    _walk(value, set())
    assert set(sys.modules) == modules_before
    analysis = analyze_pickle_stream(io.BytesIO(data), Policy(), Limits())
    assert analysis.blocked == []


def test_audit_hook_blocks_side_effects_while_analysing(tmp_path: Path) -> None:
    from mlarmor.scan import _pickle_vm as vm

    vm._guard.blocked = []
    vm._guard.active = True
    try:
        with pytest.raises(vm.SideEffectBlocked):
            open(tmp_path / "x", "w")  # noqa: SIM115
        with pytest.raises(vm.SideEffectBlocked):
            __import__("antigravity")
        with pytest.raises(vm.SideEffectBlocked):
            os.system("true")
    finally:
        vm._guard.active = False
    assert not (tmp_path / "x").exists()
    assert "antigravity" not in sys.modules
    open(tmp_path / "y", "w").close()


def test_names_computed_by_pure_calls_are_resolved(scanner: Scanner) -> None:
    # STACK_GLOBAL operands built at load time: str(b'os', 'ascii') and _codecs.decode(b'system', 'latin-1')
    data = (
        b"\x80\x04cbuiltins\nstr\n\x43\x02os\x8c\x05ascii\x86R"
        b"c_codecs\ndecode\n\x43\x06system\x8c\x07latin-1\x86R"
        b"\x93\x8c\x04true\x85R."
    )
    result = scanner.scan_bytes(data)
    assert "os.system" in _globals(result)
    assert result.severity == Severity.CRITICAL


def test_unevaluable_dynamic_name_fails_closed(scanner: Scanner) -> None:
    data = b"\x80\x04cmystery\nname\n)R\x8c\x06system\x93)R."
    result = scanner.scan_bytes(data)
    assert result.severity >= Severity.HIGH
    assert any("computes the name" in f.title for f in result.findings)


def test_findings_name_the_opcode_and_its_offset(scanner: Scanner) -> None:
    data = b"\x80\x04\x8c\x02os\x94\x8c\x06system\x94h\x00h\x01\x93\x8c\x04true\x85\x81."
    finding = next(f for f in scanner.scan_bytes(data).findings if f.evidence.get("global") == "os.system")
    assert finding.evidence["opcode"] == "STACK_GLOBAL"
    assert data[finding.location.offset] == 0x93  # the STACK_GLOBAL byte itself
    # a memoized non-string shifts MEMOIZE numbering: the locator must follow it like the loader
    shifted = b"\x80\x04]\x94\x8c\x02os\x94\x8c\x06system\x94h\x01h\x02\x93\x8c\x04true\x85R."
    finding = next(f for f in scanner.scan_bytes(shifted).findings if f.evidence.get("global") == "os.system")
    assert finding.evidence["opcode"] == "STACK_GLOBAL"
    assert shifted[finding.location.offset] == 0x93
    proto0 = b"cos\nsystem\n(S'true'\ntR."
    finding = scanner.scan_bytes(proto0).findings[0]
    assert finding.evidence["opcode"] == "GLOBAL"
    assert finding.location.offset == 0


def test_memory_hungry_stream_is_a_limit_finding_not_an_oom(tmp_path: Path) -> None:
    from mlarmor.scan._pickle_worker import can_isolate

    if not can_isolate():
        pytest.skip("no RLIMIT_AS on this platform")
    # 20 MB of EMPTY_LIST opcodes: about 1 GiB of list objects for the unpickler
    bomb = tmp_path / "lists.pkl"
    bomb.write_bytes(b"\x80\x04(" + b"]" * 20_000_000 + b"l.")
    limits = Limits(isolate_pickle_bytes=1 << 20, max_pickle_memory=128 << 20)
    result = Scanner(limits=limits).scan_file(bomb)
    assert "pickle.resource-limit" in {f.id for f in result.findings}
    assert result.severity >= Severity.HIGH


def test_isolated_analysis_reports_like_in_process(canary: Path) -> None:
    data = pickle.dumps([_Reduce(os.system, _touch_payload(canary)), _Reduce(pickle.loads, pickle.dumps(1))])
    inline = Scanner().scan_bytes(data)
    isolated = Scanner(limits=Limits(isolate_pickle_bytes=1)).scan_bytes(data)
    assert [(f.id, f.title, f.evidence) for f in isolated.findings] == [
        (f.id, f.title, f.evidence) for f in inline.findings
    ]
    assert inline.severity == Severity.CRITICAL
