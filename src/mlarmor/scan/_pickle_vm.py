"""Static pickle analysis driven by CPython's own unpickler with inert stand-ins.

The stream is parsed by ``_pickle.Unpickler`` — the exact parser ``pickle.load``, ``torch.load`` and
``joblib.load`` use, FRAME handling, memo, protocols 0-5 and all — but ``find_class`` and
``persistent_load`` never import or resolve anything: they return *stand-ins* that only record what
the stream asks for.

Why no real object can come out of it:

* The only opcodes that produce non-primitive objects are GLOBAL, STACK_GLOBAL, INST, EXT1/2/4 (all
  routed through :meth:`_InertUnpickler.find_class`) and PERSID/BINPERSID (routed through
  :meth:`_InertUnpickler.persistent_load`). Both return stand-ins.
* Every other opcode builds str, bytes, bytearray, int, float, complex-free containers (list, tuple,
  dict, set, frozenset), None/True/False or ``PickleBuffer`` — none of them callable.
* REDUCE, NEWOBJ, NEWOBJ_EX, OBJ and INST can therefore only call a stand-in, whose ``__call__`` /
  ``__new__`` records the call and returns another stand-in. BUILD, SETITEM(S), APPEND(S) and
  ADDITEMS on a stand-in call its recording ``__setstate__``, ``__setitem__``, ``append``, ``extend``
  and ``add``; on primitives they do what they do in the real loader.
* A process-wide audit hook (:func:`_audit`) raises on any import, exec/compile, file open, process,
  socket or ctypes event while the unpickler runs, as a second line of defence (tests assert it
  never fires).

Stand-ins for globals and for results of calls that are not on the allow-list are *classes* (so that
NEWOBJ, which requires a type, works as in the real loader and the analysis never stops where the
loader would go on); results of allow-listed calls are small callable instances.
"""

from __future__ import annotations

import _codecs
import _compat_pickle
import io
import itertools
import pickle
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mlarmor.scan._base import Limits
from mlarmor.scan._dtypes import dtype_holds_objects
from mlarmor.scan.policy import LOADERS, RESOLVERS, Policy, Verdict, evaluates_strings

__all__ = ["GlobalUse", "PickleAnalysis", "Write", "analyze_pickle_stream"]

_MAX_REPR = 120
_MAX_SAMPLES = 3
_LEGACY_TORCH_MAGIC = 0x1950A86A20F9469CFC6C
_PICKLE_START = frozenset(
    b"\x80(.0123FGIJKLMNPQRSTUVX]acdeghijklopqrstu}\x8c\x8d\x8e\x8f\x88\x89\x95\x93\x94\x85\x86\x87\x81\x82\x83\x84\x8a\x8b\x90\x91\x92\x96\x97\x98C"
)


# --- defence in depth: no side effect while the unpickler runs ----------------------------------
_guard = threading.local()
_BLOCKED_PREFIXES = (
    "exec",
    "compile",
    "import",
    "open",
    "os.",
    "subprocess.",
    "socket.",
    "ctypes.",
    "shutil.",
    "marshal.",
    "pickle.find_class",
    "webbrowser.",
    "urllib.",
    "http.",
    "code.__new__",
    "function.__new__",
    "builtins.input",
    "winreg.",
    "_winapi.",
    "sqlite3.",
    "glob.",
    "tempfile.",
    "ftplib.",
    "smtplib.",
    "poplib.",
    "imaplib.",
)


class SideEffectBlocked(RuntimeError):
    """Raised by the audit hook if anything tries a side effect during analysis (never expected)."""


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if getattr(_guard, "active", False) and event.startswith(_BLOCKED_PREFIXES):
        _guard.blocked.append(event)
        raise SideEffectBlocked(f"blocked {event} during pickle analysis")


sys.addaudithook(_audit)


# --- results ----------------------------------------------------------------------------------
@dataclass(slots=True)
class GlobalUse:
    """One referenced global and how the stream used it.

    ``called`` counts the times loading runs the global's own code: REDUCE, INST and OBJ, NEWOBJ on
    something that is not a class, or the global handed as the callable to a helper that invokes it
    (``functools.partial``, ``copyreg._reconstructor``'s base, ``map``...). ``constructed`` counts
    class reconstructions through the normal class path (NEWOBJ/NEWOBJ_EX on a class): the class's
    ``__new__`` and ``__setstate__`` run, not an arbitrary function. ``resolved`` lists the names a
    resolver (``getattr``) call computed from constant arguments; ``expressions`` the strings an
    evaluator (``pandas.eval``, ``DataFrame.query``...) was handed.
    """

    verdict: Verdict
    how: str
    pickle_index: int
    count: int = 0
    called: int = 0
    constructed: int = 0
    samples: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    expressions: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Write:
    """State written into a global object (module, class, function)."""

    target: str
    kind: str
    key: str
    value: str
    pickle_index: int


@dataclass(slots=True)
class PickleAnalysis:
    """What one pickle byte stream (possibly several concatenated pickles) would do when loaded."""

    pickles: int = 0
    end: int = 0
    protocol: int = 0
    error: str | None = None
    error_offset: int | None = None
    globals: dict[str, GlobalUse] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    embedded: list[tuple[str, bytes]] = field(default_factory=list)
    calls: int = 0
    limit_hit: bool = False
    blocked: list[str] = field(default_factory=list)
    legacy_torch: bool = False


# --- stand-ins --------------------------------------------------------------------------------
class _Val:
    """What a stand-in stands for."""

    __slots__ = ("args", "callee", "kind", "name", "partial", "pending")

    def __init__(
        self, kind: str, name: str | None = None, callee: str | None = None, args: tuple[Any, ...] = ()
    ):
        self.kind = kind  # "global" | "call" | "persistent" | "attr-getter" | "method-caller" | "partial"
        self.name = name  # dotted name when the stand-in *is* a global object
        self.callee = callee  # dotted name of the callable that produced it
        self.args = args
        self.pending: tuple[Any, ...] = ()
        self.partial: Any = None


class _StubMeta(type):
    """Metaclass of class stand-ins: every interaction is recorded, nothing is executed."""

    _mla_tracer: _Tracer
    _mla_val: _Val

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._mla_tracer.call(cls._mla_val, args, kwargs)  # REDUCE, INST/OBJ with arguments

    def __getattr__(cls, attr: str) -> Any:
        if attr in ("append", "extend", "add"):
            return cls._mla_tracer.mutator(cls._mla_val, attr)
        if attr == "__getinitargs__":  # only INST and OBJ look this up, right before the call
            cls._mla_tracer.instantiating = cls._mla_val
        raise AttributeError(attr)

    def __setattr__(cls, key: str, value: Any) -> None:
        cls._mla_tracer.write(cls._mla_val, "attribute", key, value)

    def __setitem__(cls, key: Any, value: Any) -> None:
        cls._mla_tracer.write(cls._mla_val, "item", key, value)

    @property
    def __setstate__(cls) -> Any:
        tracer, val = cls._mla_tracer, cls._mla_val
        return lambda state: tracer.build(val, state)

    def __repr__(cls) -> str:
        return f"<stand-in {cls._mla_tracer.describe(cls._mla_val)}>"


def _stub_new(cls: Any, *args: Any, **kwargs: Any) -> Any:
    # NEWOBJ/NEWOBJ_EX (cls.__new__(cls, *args)) and INST/OBJ without arguments
    return cls._mla_tracer.call(cls._mla_val, args, kwargs, new=True)


class _Inert:
    """Result of an allow-listed call: accepts every unpickler operation and records nothing harmful."""

    __slots__ = ("_t", "_v")

    def __init__(self, tracer: _Tracer, val: _Val) -> None:
        self._t = tracer
        self._v = val

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._t.call(_Val("call", None, f"{self._t.describe(self._v)}()"), args, kwargs)

    def __setstate__(self, state: Any) -> None:
        self._t.build(self._v, state)

    def __setitem__(self, key: Any, value: Any) -> None:
        return None

    def append(self, item: Any) -> None:
        return None

    def extend(self, items: Any) -> None:
        return None

    def add(self, item: Any) -> None:
        return None

    def __repr__(self) -> str:
        return f"<{self._t.describe(self._v)}>"


class _LimitReached(Exception):
    pass


class _Tracer:
    """Records globals, calls and writes for one pickle stream."""

    def __init__(self, policy: Policy, limits: Limits, result: PickleAnalysis, stream: Any) -> None:
        self.policy = policy
        self.limits = limits
        self.result = result
        self.stream = stream
        self.pickle_index = 0
        self.how = "GLOBAL"
        self._stubs: dict[str, type] = {}
        self._stub_count = 0
        self.instantiating: _Val | None = None
        self._dtype_states: dict[int, tuple[_Val, Any]] = {}

    # stand-in factories
    def _stub(self, val: _Val) -> type:
        self._stub_count += 1
        if self._stub_count > self.limits.max_pickle_calls:
            raise _LimitReached
        label = (val.name or val.callee or val.kind)[-60:]
        ns = {"__slots__": (), "__new__": _stub_new, "__module__": "mlarmor.standin"}
        cls = _StubMeta.__new__(_StubMeta, label, (), ns)
        type.__setattr__(cls, "_mla_tracer", self)
        type.__setattr__(cls, "_mla_val", val)
        return cls

    def global_stub(self, full: str, verdict: Verdict, how: str) -> type:
        use = self.result.globals.get(full)
        if use is None:
            use = self.result.globals[full] = GlobalUse(verdict, how, self.pickle_index)
        use.count += 1
        cached = self._stubs.get(full)
        if cached is None:
            cached = self._stubs[full] = self._stub(_Val("global", full))
        return cached

    # recording
    def describe(self, val: _Val) -> str:
        if val.name:
            return val.name
        if val.kind == "persistent":
            return "persistent_load(...)"
        return f"{val.callee or '?'}(...)"

    def summarize(self, obj: Any, depth: int = 0) -> str:
        if isinstance(obj, _StubMeta):
            return self.describe(obj._mla_val)
        if isinstance(obj, _Inert):
            return f"<{self.describe(obj._v)}>"
        if isinstance(obj, str | bytes | bytearray):
            text = repr(obj[:_MAX_REPR])
            return text + ("…" if len(obj) > _MAX_REPR else "")
        if depth > 2:
            return "…"
        if isinstance(obj, tuple | list | set | frozenset):
            items = [self.summarize(x, depth + 1) for x in itertools.islice(obj, 6)]
            more = ", …" if len(obj) > 6 else ""
            return f"({', '.join(items)}{more})" if isinstance(obj, tuple) else f"[{', '.join(items)}{more}]"
        if isinstance(obj, dict):
            items = [
                f"{self.summarize(k, depth + 1)}: {self.summarize(v, depth + 1)}"
                for k, v in itertools.islice(obj.items(), 6)
            ]
            return "{" + ", ".join(items) + "}"
        return repr(obj)[:_MAX_REPR]

    def call(self, fn: _Val, args: tuple[Any, ...], kwargs: dict[str, Any], *, new: bool = False) -> Any:
        """``fn(*args, **kwargs)`` as the loader runs it; ``new``: through ``cls.__new__`` (NEWOBJ...)."""
        self.result.calls += 1
        if self.instantiating is fn:  # INST/OBJ are calls whatever the arguments
            new = False
        self.instantiating = None
        name = fn.name
        if fn.kind == "partial" and fn.partial is not None:
            inner = fn.partial
            return (
                inner(*fn.pending, *args, **kwargs)
                if isinstance(inner, _StubMeta | _Inert)
                else self._stub(_Val("call", None, "functools.partial(...)"))
            )
        if fn.kind == "attr-getter":
            return self._resolve_chain(args[0] if args else None, fn.pending, via="operator.attrgetter")
        if fn.kind == "method-caller":
            target = self._resolve_chain(
                args[0] if args else None, fn.pending[:1], via="operator.methodcaller"
            )
            return target(*fn.pending[1:]) if isinstance(target, _StubMeta) else target
        if name is not None:
            use = self.result.globals.get(name)
            if use is not None:
                if new and _CLASS_NAME.match(name.rsplit(".", 1)[-1]):
                    use.constructed += 1  # cls.__new__(cls, ...) on a class: the normal class path
                else:
                    use.called += 1
                if len(use.samples) < _MAX_SAMPLES:
                    sample = ", ".join(
                        [self.summarize(a) for a in args]
                        + [f"{k}={self.summarize(v)}" for k, v in kwargs.items()]
                    )
                    use.samples.append(f"{name}({sample})"[:400])
                if evaluates_strings(name):
                    self._expressions(use, args, kwargs)
            if name in _INVOKES:
                self._invoked_arguments(name, args, kwargs)
            if name in LOADERS:
                self._embedded(name, args, kwargs)
            kind = RESOLVERS.get(name)
            if name.endswith("._ufunc_reconstruct"):
                kind = "module_name"
            if kind is not None:
                out = self._resolver(kind, name, args)
                if use is not None and kind == "getattr" and _is_global(out):
                    use.resolved.append(out._mla_val.name)
                return out
            if name == "functools.partial" and args:
                val = _Val("partial", None, name)
                val.partial = args[0]
                val.pending = tuple(args[1:])
                return self._stub(val)
            if use is not None and use.verdict.status == "allowed":
                if name in _PURE and not kwargs:
                    value = _evaluate_pure(name, args)
                    if value is not _UNEVALUATED:
                        return value
                return _Inert(self, _Val("call", None, name, args[:1]))
        return self._stub(_Val("call", None, name or self.describe(fn), args[:1]))

    def _invoked_arguments(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A global handed to a helper that calls it counts as called (by that helper)."""
        positions = _INVOKES[name]
        passed = [args[i] for i in positions if i < len(args)]
        passed += [v for k, v in kwargs.items() if k in _INVOKED_KEYWORDS]
        for arg in passed:
            if not _is_global(arg):
                continue
            target = arg._mla_val.name
            use = self.result.globals.get(target)
            if use is not None:
                use.called += 1
                if len(use.samples) < _MAX_SAMPLES:
                    use.samples.append(f"{target} called by {name}({self.summarize(args)[1:-1]})"[:400])

    def _expressions(self, use: GlobalUse, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Strings handed to an evaluator (at any depth of its arguments): the code it will run."""
        stack: list[tuple[Any, int]] = [(a, 0) for a in itertools.chain(args, kwargs.values())]
        while stack and len(use.expressions) < _MAX_SAMPLES:
            obj, depth = stack.pop()
            text = self._string(obj)
            if text is not None:
                use.expressions.append(text[:_MAX_EXPRESSION])
            elif depth < 3 and isinstance(obj, tuple | list | set | frozenset):
                stack.extend((x, depth + 1) for x in itertools.islice(obj, 64))
            elif depth < 3 and isinstance(obj, dict):
                stack.extend((x, depth + 1) for x in itertools.islice(obj.values(), 64))

    def _embedded(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        for a in itertools.chain(args, kwargs.values()):
            if isinstance(a, bytes | bytearray) and len(a) > 1:
                self.result.embedded.append((name, bytes(a)))
            elif isinstance(a, _Inert) and a._v.callee in ("io.BytesIO", "_io.BytesIO") and a._v.args:
                inner = a._v.args[0]
                if isinstance(inner, bytes | bytearray):
                    self.result.embedded.append((name, bytes(inner)))

    def _string(self, obj: Any) -> str | None:
        if isinstance(obj, str):
            return obj
        if isinstance(obj, bytes | bytearray):
            return bytes(obj).decode("latin-1")
        return None

    def _resolved(self, full: str, via: str) -> type:
        verdict = self.policy.classify_name(full)
        return self.global_stub(verdict.name, verdict, f"resolved by {via}")

    def _resolve_chain(self, base: Any, attrs: tuple[Any, ...], via: str) -> Any:
        if not isinstance(base, _StubMeta) or base._mla_val.name is None:
            return self._stub(_Val("call", None, via))
        names = [self._string(a) for a in attrs]
        if any(n is None for n in names):
            return self._stub(_Val("call", None, via))
        return self._resolved(".".join([base._mla_val.name, *[n for n in names if n]]), via)

    def _resolver(self, kind: str, name: str, args: tuple[Any, ...]) -> Any:
        if kind == "getattr" and len(args) >= 2:
            return self._resolve_chain(args[0], (args[1],), via=name)
        if kind == "attrgetter":
            val = _Val("attr-getter", None, name)
            val.pending = tuple(args)
            if len(args) == 1 and isinstance(args[0], str) and "." in args[0]:
                val.pending = tuple(args[0].split("."))
            return self._stub(val)
        if kind == "methodcaller" and args:
            val = _Val("method-caller", None, name)
            val.pending = tuple(args)
            return self._stub(val)
        if kind in ("import", "resolve_name") and args:
            target = self._string(args[0])
            if target:
                return self._resolved(target.replace(":", "."), via=name)
        if kind == "module_name" and len(args) >= 2:
            mod, attr = self._string(args[0]), self._string(args[1])
            if mod and attr:
                return self._resolved(f"{mod}.{attr}", via=name)
        return self._stub(_Val("call", None, name))

    def mutator(self, target: _Val, method: str) -> Any:
        tracer = self

        def record(*args: Any) -> None:
            tracer.write(target, f"{method}()", "", args[0] if len(args) == 1 else args)

        return record

    def write(self, target: _Val, kind: str, key: Any, value: Any) -> None:
        if target.kind != "global" or target.name is None:
            return
        self.result.writes.append(
            Write(target.name, kind, self.summarize(key), self.summarize(value), self.pickle_index)
        )

    def build(self, target: _Val, state: Any) -> None:
        if target.kind == "global" and target.name is not None:
            self.write(target, "BUILD state", "", state)
            return
        if target.callee is not None and target.callee.endswith("numpy_pickle.NumpyArrayWrapper"):
            self._skip_joblib_array(state)
        elif target.callee is not None and target.callee.endswith("numpy.dtype"):
            self._dtype_states[id(target)] = (target, state)

    def _dtype_info(self, dtype: Any) -> tuple[str | None, Any]:
        if not isinstance(dtype, _Inert) or not dtype._v.args:
            return None, None
        entry = self._dtype_states.get(id(dtype._v))
        return self._string(dtype._v.args[0]), entry[1] if entry else None

    # joblib writes each array's raw bytes right after the wrapper's BUILD opcode
    def _skip_joblib_array(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise pickle.UnpicklingError("joblib NumpyArrayWrapper state is not a dict")
        shape, dtype = state.get("shape"), state.get("dtype")
        code = self._string(dtype._v.args[0]) if isinstance(dtype, _Inert) and dtype._v.args else None
        if not isinstance(shape, tuple) or not all(isinstance(d, int) and d >= 0 for d in shape) or not code:
            raise pickle.UnpicklingError("joblib NumpyArrayWrapper has no readable shape/dtype")
        kind = code.lstrip("<>|=")[:1]
        if dtype_holds_objects(dtype, self._dtype_info):  # pickled inline, unpickled by joblib in turn
            self._nested_inline_pickle()
            return
        if state.get("numpy_array_alignment_bytes") is not None:
            pad = self.stream.read(1)
            if len(pad) == 1 and pad[0]:
                self.stream.seek(pad[0], io.SEEK_CUR)
        count = 1
        for d in shape:
            count *= d
        digits = "".join(ch for ch in code if ch.isdigit())
        size = int(digits) if digits else {"b": 1, "?": 1, "M": 8, "m": 8}.get(kind, 0)
        if kind == "U":
            size *= 4
        if size <= 0:
            raise pickle.UnpicklingError(f"cannot size joblib array of dtype {code!r}")
        self.stream.seek(count * size, io.SEEK_CUR)

    def _nested_inline_pickle(self) -> None:
        index = self.pickle_index
        _load_one(self, self.stream)
        self.pickle_index = index


def _is_global(obj: Any) -> bool:
    return isinstance(obj, _StubMeta) and obj._mla_val.kind == "global" and obj._mla_val.name is not None


_CLASS_NAME = re.compile(r"^_*[A-Z][A-Za-z0-9_]*$")
_MAX_EXPRESSION = 4096
# Helpers that exist to call one of their arguments (the position of the callable): copyreg's
# reconstructor calls its base (``base.__new__`` and ``base.__init__(obj, state)``), torch's
# ``_rebuild_from_type`` its function, ``functools.partial`` and the lazy iterators wrap a call that
# whoever holds the result runs. A function merely stored as data (a ``FunctionTransformer``'s
# ``func``, a ``defaultdict`` factory) is reconstructed, not called, by the loader.
_INVOKES: dict[str, tuple[int, ...]] = {
    "functools.partial": (0,),
    "_functools.partial": (0,),
    "copyreg._reconstructor": (1,),
    "torch._tensor._rebuild_from_type": (0,),
    "torch._tensor._rebuild_from_type_v2": (0,),
    "builtins.map": (0,),
    "builtins.filter": (0,),
    "builtins.sorted": (),
    "builtins.min": (),
    "builtins.max": (),
    "itertools.starmap": (0,),
    "itertools.filterfalse": (0,),
    "itertools.takewhile": (0,),
    "itertools.dropwhile": (0,),
    "itertools.groupby": (),
    "functools.reduce": (0,),
}
_INVOKED_KEYWORDS = frozenset({"key", "func", "function"})


# Allow-listed pure functions evaluated for real when every argument is a plain value, so that
# names computed at load time (str(b"os", "ascii"), codecs.decode(...)) are known to the analysis
# exactly as they are to the loader.
_PURE = frozenset(
    {
        "builtins.str",
        "builtins.bytes",
        "builtins.bytearray",
        "builtins.int",
        "builtins.float",
        "builtins.bool",
        "_codecs.encode",
        "_codecs.decode",
        "codecs.encode",
        "codecs.decode",
    }
)
_SAFE_CODECS = frozenset({"utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "ascii", "us-ascii"})
_PURE_FUNCS: dict[str, Callable[..., Any]] = {
    "builtins.str": str,
    "builtins.bytes": bytes,
    "builtins.bytearray": bytearray,
    "builtins.int": int,
    "builtins.float": float,
    "builtins.bool": bool,
    "_codecs.encode": _codecs.encode,
    "_codecs.decode": _codecs.decode,
    "codecs.encode": _codecs.encode,
    "codecs.decode": _codecs.decode,
}
_MAX_PURE = 1 << 20
_UNEVALUATED = object()
for _codec in _SAFE_CODECS:  # look codecs up now: a first lookup imports its module, blocked later
    _codecs.lookup(_codec)


def _evaluate_pure(name: str, args: tuple[Any, ...]) -> Any:
    if not all(isinstance(a, str | bytes | bytearray | int | float | bool) for a in args) or len(args) > 3:
        return _UNEVALUATED
    if any(isinstance(a, str | bytes | bytearray) and len(a) > _MAX_PURE for a in args):
        return _UNEVALUATED
    codec = next((a for a in args[1:2] if isinstance(a, str)), None)
    if codec is not None and codec.lower() not in _SAFE_CODECS and not name.endswith(("int", "float")):
        return _UNEVALUATED  # other codecs may import modules
    if (
        name in ("builtins.bytes", "builtins.bytearray")
        and args
        and isinstance(args[0], int)
        and (args[0] > _MAX_PURE or args[0] < 0)
    ):
        return _UNEVALUATED
    func = _PURE_FUNCS[name]
    try:
        return func(*args)
    except (TypeError, ValueError, LookupError, OverflowError, UnicodeError):
        return _UNEVALUATED


class _InertUnpickler(pickle.Unpickler):
    """CPython's C unpickler whose class and persistent-id resolution only hand out stand-ins."""

    def __init__(self, stream: Any, tracer: _Tracer, proto: int) -> None:
        super().__init__(
            stream,
            fix_imports=False,
            encoding="latin-1",
            errors="strict",
            buffers=itertools.repeat(pickle.PickleBuffer(b"")),
        )
        self._tracer = tracer
        self._proto = proto

    def find_class(self, module: str, name: str) -> Any:
        module, name = str(module), str(name)
        if self._proto < 3:
            module, name = _py2_names(module, name)
        verdict = self._tracer.policy.classify(module, name)
        return self._tracer.global_stub(verdict.name, verdict, "import")

    def persistent_load(self, pid: Any) -> Any:
        return _Inert(self._tracer, _Val("persistent", None, "persistent_load", (pid,)))


def _py2_names(module: str, name: str) -> tuple[str, str]:
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def _load_one(tracer: _Tracer, stream: Any) -> Any:
    start = stream.tell()
    head = stream.read(2)
    stream.seek(start)
    proto = head[1] if len(head) == 2 and head[0] == 0x80 else 0
    tracer.result.protocol = max(tracer.result.protocol, proto)
    return _InertUnpickler(stream, tracer, proto).load()


def analyze_pickle_stream(
    stream: Any, policy: Policy, limits: Limits, *, max_pickles: int = 1024
) -> PickleAnalysis:
    """Analyse every pickle in ``stream`` (a seekable binary file object without ``peek``).

    Pickles concatenated in one stream are analysed one after the other, as loaders that call
    ``pickle.load`` repeatedly would run them; a break after the first pickle with no global
    referenced is treated as trailing data (raw tensor storage, for instance).
    """
    result = PickleAnalysis()
    tracer = _Tracer(policy, limits, result, stream)
    stream.seek(0, io.SEEK_END)
    size = stream.tell()
    stream.seek(0)
    blocked: list[str] = []
    _guard.blocked = blocked
    _guard.active = True
    try:
        for index in range(max_pickles):
            tracer.pickle_index = index
            start = stream.tell()
            before = len(result.globals)
            try:
                value = _load_one(tracer, stream)
            except _LimitReached:
                result.limit_hit = True
                result.error_offset = stream.tell()
                break
            except SideEffectBlocked as e:  # pragma: no cover - would be a scanner defect
                result.error = str(e)
                result.error_offset = stream.tell()
                break
            except RecursionError:
                result.error = "nesting too deep for the unpickler (the real loader fails here too)"
                result.error_offset = stream.tell()
                break
            except Exception as e:  # the loader stops here too: everything before it has run
                if index == 0 or len(result.globals) > before:
                    result.error = f"{type(e).__name__}: {e}"
                    result.error_offset = stream.tell()
                else:
                    stream.seek(start)
                break
            result.pickles += 1
            if index == 0 and value == _LEGACY_TORCH_MAGIC:
                result.legacy_torch = True
            if result.legacy_torch and result.pickles >= 5:
                break  # torch's legacy format: raw storages follow the fifth pickle
            pos = stream.tell()
            if pos >= size:
                break
            nxt = stream.read(1)
            stream.seek(pos)
            if not nxt or nxt[0] not in _PICKLE_START:
                break
    finally:
        _guard.active = False
        result.blocked = blocked
    result.end = stream.tell()
    return result


def iter_opcode_names() -> Iterator[str]:
    """Names of every pickle opcode (documentation helper for tests)."""
    import pickletools

    for op in pickletools.opcodes:
        yield op.name
