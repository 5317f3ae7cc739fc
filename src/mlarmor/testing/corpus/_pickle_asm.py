"""A tiny pickle opcode assembler used to build the malicious corpus without executing anything.

Pickles are written opcode by opcode, so a sample can use exactly the encoding a published bypass
used (protocol-0 text operands, memoised names, frames split mid-payload, extension codes...).
Nothing here imports or calls what the pickle references: a :class:`Global` is only a pair of
strings until some unpickler resolves it.

Two layers:

* :class:`Asm` emits single opcodes in a chosen protocol and assembles a program (``PROTO`` header,
  optional ``FRAME`` chunks, ``STOP``).
* :meth:`Asm.push` writes an expression tree of :class:`Global`, :class:`Call`, :class:`Build`,
  :class:`Raw` and plain Python constants with the encodings that protocol allows.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["Asm", "Build", "Call", "Global", "NewObj", "Node", "Raw", "StrKind", "inject_before"]

StrKind = Literal["auto", "short", "bin", "bin8", "text", "string", "binstring", "short_binstring"]
"""How a ``str`` operand is encoded; ``auto`` picks the shortest form the protocol allows."""


@dataclass(frozen=True, slots=True)
class Global:
    """A ``module``/``name`` reference resolved by the unpickler's ``find_class``."""

    module: str
    name: str


@dataclass(frozen=True, slots=True)
class Call:
    """``func(*args)`` through ``REDUCE``."""

    func: Node
    args: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class NewObj:
    """``cls.__new__(cls, *args, **kwargs)`` through ``NEWOBJ`` (or ``NEWOBJ_EX`` with kwargs)."""

    cls: Node
    args: tuple[Node, ...] = ()
    kwargs: Mapping[str, Node] | None = None


@dataclass(frozen=True, slots=True)
class Build:
    """``obj`` followed by ``BUILD state`` (``__setstate__`` or ``__dict__``/slot update)."""

    obj: Node
    state: Node


@dataclass(frozen=True, slots=True)
class Raw:
    """Pre-assembled opcodes that leave exactly one value on the stack."""

    data: bytes


Node: TypeAlias = (
    "Global | Call | NewObj | Build | Raw | str | bytes | int | float | bool"
    " | tuple[Node, ...] | Sequence[Node] | Mapping[str, Node] | None"
)
"""Anything :meth:`Asm.push` can write."""


def _text_escape(value: str) -> bytes:
    # The same escaping CPython's protocol-0 UNICODE writer applies before raw-unicode-escape.
    escaped = (
        value.replace("\\", "\\u005c")
        .replace("\0", "\\u0000")
        .replace("\n", "\\u000a")
        .replace("\r", "\\u000d")
        .replace("\x1a", "\\u001a")
    )
    return escaped.encode("raw-unicode-escape")


class Asm:
    """Assemble a pickle program opcode by opcode for one protocol.

    Args:
        proto: Pickle protocol (0-5). It selects the ``PROTO`` header and the encodings
            :meth:`push` uses; single-opcode methods emit what they are asked to regardless.
    """

    def __init__(self, proto: int) -> None:
        if not 0 <= proto <= 5:
            raise ValueError(f"The 'proto' parameter of Asm must be an int in [0, 5]. Got {proto!r} instead.")
        self.proto = proto
        self._chunks: list[list[bytes]] = [[]]

    # -- raw emission -------------------------------------------------------------------------
    def op(self, *parts: bytes) -> Asm:
        """Append raw opcode bytes."""
        self._chunks[-1].extend(parts)
        return self

    def frame_break(self) -> Asm:
        """Start a new ``FRAME`` here when the program is assembled with ``frames=True``."""
        self._chunks.append([])
        return self

    def program(self, *, frames: bool = False, stop: bool = True, header: bool = True) -> bytes:
        """Return the assembled bytes.

        Args:
            frames: Wrap the body in ``FRAME`` opcodes, one per :meth:`frame_break` section.
            stop: Append ``STOP``; leave it out for a truncated stream.
            header: Emit ``PROTO n`` first (only for protocol 2 and above).
        """
        chunks = [b"".join(c) for c in self._chunks]
        if stop:
            chunks[-1] += pickle.STOP
        out = pickle.PROTO + bytes([self.proto]) if header and self.proto >= 2 else b""
        if frames:
            return out + b"".join(pickle.FRAME + struct.pack("<Q", len(c)) + c for c in chunks if c)
        return out + b"".join(chunks)

    # -- single opcodes -----------------------------------------------------------------------
    def mark(self) -> Asm:
        """``MARK``."""
        return self.op(pickle.MARK)

    def pop(self) -> Asm:
        """``POP``."""
        return self.op(pickle.POP)

    def pop_mark(self) -> Asm:
        """``POP_MARK``."""
        return self.op(pickle.POP_MARK)

    def dup(self) -> Asm:
        """``DUP``."""
        return self.op(pickle.DUP)

    def reduce(self) -> Asm:
        """``REDUCE``: pop args tuple and callable, push the call's result."""
        return self.op(pickle.REDUCE)

    def build(self) -> Asm:
        """``BUILD``: pop state, apply it to the object below."""
        return self.op(pickle.BUILD)

    def obj(self) -> Asm:
        """``OBJ``: call the first item after MARK with the rest."""
        return self.op(pickle.OBJ)

    def newobj(self) -> Asm:
        """``NEWOBJ``: ``cls.__new__(cls, *args)``."""
        return self.op(pickle.NEWOBJ)

    def newobj_ex(self) -> Asm:
        """``NEWOBJ_EX``: ``cls.__new__(cls, *args, **kwargs)``."""
        return self.op(pickle.NEWOBJ_EX)

    def tuple_(self) -> Asm:
        """``TUPLE`` from MARK."""
        return self.op(pickle.TUPLE)

    def tuple_n(self, n: int) -> Asm:
        """``EMPTY_TUPLE``/``TUPLE1``/``TUPLE2``/``TUPLE3``."""
        return self.op((pickle.EMPTY_TUPLE, pickle.TUPLE1, pickle.TUPLE2, pickle.TUPLE3)[n])

    def empty_dict(self) -> Asm:
        """``EMPTY_DICT``."""
        return self.op(pickle.EMPTY_DICT)

    def empty_list(self) -> Asm:
        """``EMPTY_LIST``."""
        return self.op(pickle.EMPTY_LIST)

    def setitem(self) -> Asm:
        """``SETITEM``."""
        return self.op(pickle.SETITEM)

    def setitems(self) -> Asm:
        """``SETITEMS`` from MARK."""
        return self.op(pickle.SETITEMS)

    def appends(self) -> Asm:
        """``APPENDS`` from MARK."""
        return self.op(pickle.APPENDS)

    def memoize(self) -> Asm:
        """``MEMOIZE`` (protocol 4)."""
        return self.op(pickle.MEMOIZE)

    def put(self, index: int) -> Asm:
        """Text ``PUT``."""
        return self.op(pickle.PUT + str(index).encode() + b"\n")

    def binput(self, index: int) -> Asm:
        """``BINPUT`` or ``LONG_BINPUT`` depending on the index."""
        if index < 256:
            return self.op(pickle.BINPUT + bytes([index]))
        return self.op(pickle.LONG_BINPUT + struct.pack("<I", index))

    def get(self, index: int) -> Asm:
        """Text ``GET``."""
        return self.op(pickle.GET + str(index).encode() + b"\n")

    def binget(self, index: int) -> Asm:
        """``BINGET`` or ``LONG_BINGET`` depending on the index."""
        if index < 256:
            return self.op(pickle.BINGET + bytes([index]))
        return self.op(pickle.LONG_BINGET + struct.pack("<I", index))

    def global_(self, module: str, name: str) -> Asm:
        """Text ``GLOBAL module name`` (every protocol)."""
        return self.op(pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n")

    def inst(self, module: str, name: str) -> Asm:
        """``INST module name``: call it with the items since MARK."""
        return self.op(pickle.INST + module.encode() + b"\n" + name.encode() + b"\n")

    def stack_global(self) -> Asm:
        """``STACK_GLOBAL`` on the two strings below."""
        return self.op(pickle.STACK_GLOBAL)

    def ext(self, code: int) -> Asm:
        """``EXT1``/``EXT2``/``EXT4`` for a copyreg extension code."""
        if code < 0x100:
            return self.op(pickle.EXT1 + bytes([code]))
        if code < 0x10000:
            return self.op(pickle.EXT2 + struct.pack("<H", code))
        return self.op(pickle.EXT4 + struct.pack("<i", code))

    def persid(self, pid: str) -> Asm:
        """Text ``PERSID``."""
        return self.op(pickle.PERSID + pid.encode("ascii") + b"\n")

    def binpersid(self) -> Asm:
        """``BINPERSID`` on the object below."""
        return self.op(pickle.BINPERSID)

    def str_(self, value: str, kind: StrKind = "auto") -> Asm:
        """Push a ``str`` with a chosen encoding (``STRING`` kinds decode to ``str`` as ASCII/latin-1)."""
        if kind == "auto":
            if self.proto < 1:
                kind = "text"
            elif self.proto < 4:
                kind = "bin"
            else:
                kind = "short" if len(value.encode()) < 256 else "bin"
        data = value.encode("utf-8")
        if kind == "short":
            return self.op(pickle.SHORT_BINUNICODE + bytes([len(data)]) + data)
        if kind == "bin":
            return self.op(pickle.BINUNICODE + struct.pack("<I", len(data)) + data)
        if kind == "bin8":
            return self.op(pickle.BINUNICODE8 + struct.pack("<Q", len(data)) + data)
        if kind == "text":
            return self.op(pickle.UNICODE + _text_escape(value) + b"\n")
        raw = value.encode("latin-1")
        if kind == "string":
            return self.op(pickle.STRING + repr(raw)[1:].encode("latin-1") + b"\n")
        if kind == "binstring":
            return self.op(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
        return self.op(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)

    def bytes_(self, value: bytes, kind: Literal["auto", "short", "bin", "bin8"] = "auto") -> Asm:
        """Push ``bytes`` (protocol 3+ opcodes)."""
        if kind == "auto":
            kind = "short" if len(value) < 256 else "bin"
        if kind == "short":
            return self.op(pickle.SHORT_BINBYTES + bytes([len(value)]) + value)
        if kind == "bin":
            return self.op(pickle.BINBYTES + struct.pack("<I", len(value)) + value)
        return self.op(pickle.BINBYTES8 + struct.pack("<Q", len(value)) + value)

    def int_(self, value: int) -> Asm:
        """Push an ``int`` with the protocol's encoding."""
        if self.proto == 0 or not -(2**31) <= value < 2**31:
            return self.op(pickle.INT + str(value).encode() + b"\n")
        if 0 <= value < 256:
            return self.op(pickle.BININT1 + bytes([value]))
        if 0 <= value < 65536:
            return self.op(pickle.BININT2 + struct.pack("<H", value))
        return self.op(pickle.BININT + struct.pack("<i", value))

    # -- expression trees ---------------------------------------------------------------------
    def push_global(self, ref: Global) -> Asm:
        """Push a global with ``GLOBAL`` (protocol < 4) or ``STACK_GLOBAL`` (protocol 4+)."""
        if self.proto >= 4:
            return self.str_(ref.module).str_(ref.name).stack_global()
        return self.global_(ref.module, ref.name)

    def push_tuple(self, items: Sequence[Node]) -> Asm:
        """Push a tuple of nodes."""
        if self.proto >= 2 and len(items) <= 3:
            for item in items:
                self.push(item)
            return self.tuple_n(len(items))
        if self.proto >= 1 and not items:
            return self.tuple_n(0)
        self.mark()
        for item in items:
            self.push(item)
        return self.tuple_()

    def push(self, node: Node) -> Asm:
        """Write ``node`` so that unpickling leaves its value on the stack."""
        if isinstance(node, Raw):
            return self.op(node.data)
        if isinstance(node, Global):
            return self.push_global(node)
        if isinstance(node, Call):
            self.push(node.func)
            self.push_tuple(node.args)
            return self.reduce()
        if isinstance(node, NewObj):
            self.push(node.cls)
            self.push_tuple(node.args)
            if node.kwargs is None:
                return self.newobj()
            self.push(dict(node.kwargs))
            return self.newobj_ex()
        if isinstance(node, Build):
            return self.push(node.obj).push(node.state).build()
        if node is None:
            return self.op(pickle.NONE)
        if isinstance(node, bool):
            if self.proto >= 2:
                return self.op(pickle.NEWTRUE if node else pickle.NEWFALSE)
            return self.op(pickle.INT + (b"01" if node else b"00") + b"\n")
        if isinstance(node, int):
            return self.int_(node)
        if isinstance(node, float):
            if self.proto == 0:
                return self.op(pickle.FLOAT + repr(node).encode() + b"\n")
            return self.op(pickle.BINFLOAT + struct.pack(">d", node))
        if isinstance(node, str):
            return self.str_(node)
        if isinstance(node, bytes):
            if self.proto < 3:
                # Protocols 0-2 have no bytes opcode; CPython writes codecs.encode(latin-1 text).
                return self.push(Call(Global("_codecs", "encode"), (node.decode("latin-1"), "latin1")))
            return self.bytes_(node)
        if isinstance(node, tuple):
            return self.push_tuple(node)
        if isinstance(node, list):
            if self.proto >= 1:
                self.empty_list()
            else:
                self.mark().op(pickle.LIST)
            if node:
                self.mark()
                for item in node:
                    self.push(item)
                self.appends()
            return self
        if isinstance(node, dict):
            if self.proto >= 1:
                self.empty_dict()
            else:
                self.mark().op(pickle.DICT)
            if node:
                self.mark()
                for key, value in node.items():
                    self.push(key).push(value)
                self.setitems()
            return self
        raise TypeError(f"Asm.push cannot write a {type(node).__name__}.")


def inject_before(original: bytes, payload: bytes) -> bytes:
    """Return ``original`` with ``payload`` opcodes run (and their result popped) before its body.

    Args:
        original: A complete pickle, as a real library wrote it.
        payload: Opcodes (no ``PROTO``/``STOP``) that push exactly one value.

    Returns:
        A pickle that first evaluates ``payload``, discards the result and then unpickles
        ``original`` unchanged, so the loader still gets the object it expected.
    """
    if original[:1] == pickle.PROTO:
        return original[:2] + payload + pickle.POP + original[2:]
    return payload + pickle.POP + original
