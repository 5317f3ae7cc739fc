"""Malicious pickles that call a function no deny list names (the fail-closed call rule).

A deny list can never be complete: the standard library and every installed package hold functions
that write files or run code under names no scanner lists. Each sample here calls one such function
with REDUCE, directly, through its defining module, through ``getattr`` or through
``functools.partial``; each is live (the real loader creates the canary file). None of these names is
on mlarmor's deny list: they are caught because the call is not on the allow-list of reconstructors.
"""

from __future__ import annotations

import py_compile

from ._payload import program
from ._pickle_asm import Call, Global
from ._registry import Canary, sample

_GETATTR = Global("builtins", "getattr")
_PARTIAL = Global("functools", "partial")


@sample(
    "call_stdlib_wave_open",
    technique="unknown-call:stdlib",
    container="pickle",
    filename="speech_model.pkl",
    description="REDUCE wave.open(canary, 'wb'): a standard-library audio helper that opens (creates) any "
    "file for writing; not on any deny list.",
)
def _wave_open(c: Canary) -> bytes:
    return program(2, Call(Global("wave", "open"), (c.file, "wb")))


@sample(
    "call_stdlib_py_compile",
    technique="unknown-call:stdlib",
    container="pickle",
    filename="tokenizer.pkl",
    description="REDUCE py_compile.compile(source, canary): byte-compiles a standard-library module into "
    "a file of the attacker's choosing (any path the process can write).",
)
def _py_compile(c: Canary) -> bytes:
    return program(4, Call(Global("py_compile", "compile"), (py_compile.__file__, c.file)))


@sample(
    "call_stdlib_partial_wave_open",
    technique="unknown-call:partial",
    container="pickle",
    filename="feature_pipeline.pkl",
    description="functools.partial(wave.open, canary, 'wb') called with no arguments: the allow-listed "
    "partial invokes a callable nobody lists.",
)
def _partial_wave(c: Canary) -> bytes:
    return program(3, Call(Call(_PARTIAL, (Global("wave", "open"), c.file, "wb")), ()))


@sample(
    "call_third_party_savemat",
    technique="unknown-call:third-party",
    container="pickle",
    filename="classifier.pkl",
    description="REDUCE scipy.io.savemat(canary, {}, False): a model library's writer, outside the "
    "classes and reconstructors genuine SciPy pickles use.",
    requires=("scipy",),
)
def _savemat(c: Canary) -> bytes:
    return program(4, Call(Global("scipy.io", "savemat"), (c.file, {}, False)))


@sample(
    "call_defining_module_savemat",
    technique="unknown-call:defining-module",
    container="pickle",
    filename="regressor.pkl",
    description="REDUCE scipy.io.matlab._mio.savemat: the same writer reached through the private module "
    "that defines it rather than its public name.",
    requires=("scipy",),
)
def _savemat_defining(c: Canary) -> bytes:
    return program(2, Call(Global("scipy.io.matlab._mio", "savemat"), (c.file, {}, False)))


@sample(
    "call_getattr_savemat",
    technique="unknown-call:getattr",
    container="pickle",
    filename="scaler.pkl",
    description="getattr(scipy.io.matlab, 'savemat') then REDUCE: the writer is never named by a "
    "GLOBAL opcode, only computed by getattr on a module.",
    requires=("scipy",),
)
def _savemat_getattr(c: Canary) -> bytes:
    func = Call(_GETATTR, (Global("scipy.io", "matlab"), "savemat"))
    return program(2, Call(func, (c.file, {}, False)))
