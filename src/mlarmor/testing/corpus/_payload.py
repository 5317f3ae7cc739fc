"""Shared payload helpers for the malicious corpus: the canonical callables and splicing."""

from __future__ import annotations

import pickle

from ._pickle_asm import Asm, Call, Global, Node, inject_before
from ._registry import Canary

__all__ = ["EXEC", "OS_SYSTEM", "os_system", "payload_ops", "program", "splice"]

OS_SYSTEM = Global("os", "system")
EXEC = Global("builtins", "exec")


def program(proto: int, node: Node, *, frames: bool = False) -> bytes:
    """Assemble ``node`` as a complete pickle in ``proto``."""
    return Asm(proto).push(node).program(frames=frames)


def os_system(c: Canary, proto: int = 4) -> bytes:
    """A plain ``os.system(touch canary)`` pickle (the second stage of several samples)."""
    return program(proto, Call(OS_SYSTEM, (c.sh,)))


def payload_ops(node: Node, proto: int) -> bytes:
    """Opcodes (no header, no STOP) that evaluate ``node``."""
    return Asm(proto).push(node).program(header=False, stop=False)


def splice(original: bytes, node: Node) -> bytes:
    """Run ``node`` first, then unpickle ``original`` (a real library's pickle) unchanged."""
    proto = original[1] if original[:1] == pickle.PROTO else 0
    return inject_before(original, payload_ops(node, proto))
