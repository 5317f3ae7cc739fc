"""The allow-list policy that classifies every Python global a model file references.

Genuine PyTorch, NumPy (1.x and 2.x), scikit-learn, pandas, SciPy, joblib and standard-library
value types pass. Code execution, process spawning, network, file writes, importers, attribute
resolvers, second-stage loaders and code-object construction are ``dangerous`` (critical). Anything
else is ``unknown`` and shown with its full name: the scanner rates it high when the pickle *calls*
it (``pickle.unknown-call``) and medium when it only reconstructs it as a class
(``pickle.unknown-global``). Every name is matched under each spelling the unpickler could reach it
by (:func:`candidates`). ``--policy FILE`` (TOML or YAML) adds in-house globals::

    [pickle]
    allow = ["mycompany.models.ResNetWithHead", "mycompany.layers.*"]
    deny = ["mycompany.unsafe.*"]

An exact name in ``allow`` wins over the built-in deny list (an explicit, reviewed decision); a
``prefix.*`` pattern in ``allow`` only admits names that would otherwise be unknown.
"""

from __future__ import annotations

import re
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, NamedTuple

import yaml

from mlarmor.errors import PolicyError

__all__ = [
    "DANGEROUS",
    "LOADERS",
    "RESOLVERS",
    "Policy",
    "Status",
    "Verdict",
    "aliases",
    "candidates",
    "evaluates_strings",
    "expression_reaches",
]

Status = Literal["allowed", "dangerous", "unknown"]


class Verdict(NamedTuple):
    """How a referenced global is classified."""

    name: str
    status: Status
    category: str | None
    reason: str


# --- what is dangerous ------------------------------------------------------------------------
# "module.*" covers the module and everything below it; other keys are exact names.
_CODE = "code-execution"
_PROC = "process"
_NET = "network"
_FS = "filesystem"
_IMP = "importer"
_ATTR = "attribute-resolver"
_LOAD = "second-stage-loader"
_CODEOBJ = "code-object"
_STATE = "process-state"

DANGEROUS: dict[str, str] = {}


def _deny(category: str, *names: str) -> None:
    for n in names:
        DANGEROUS[n] = category


_deny(
    _CODE,
    "builtins.eval",
    "builtins.exec",
    "builtins.execfile",
    "builtins.breakpoint",
    "builtins.input",
    "builtins.help",
    "builtins.compile",
    "code.*",
    "codeop.*",
    "runpy.*",
    "timeit.*",
    "trace.*",
    "cProfile.*",
    "profile.*",
    "pdb.*",
    "bdb.*",
    "doctest.*",
    "idlelib.*",
    "lib2to3.*",
    "pydoc.*",
    "_pyrepl.*",
    "rlcompleter.*",
    "site.*",
    "sitecustomize.*",
    "ensurepip.*",
    "venv.*",
    "pip.*",
    "setuptools.*",
    "distutils.*",
    "pkg_resources.*",
    "Cython.*",
    "IPython.*",
    "jinja2.*",
    "mako.*",
    "tkinter.*",
    "turtle.*",
    "turtledemo.*",
    "numpy.testing.*",
    "numpy.f2py.*",
    "numpy.distutils.*",
    "torch.utils.cpp_extension.*",
    "torch._inductor.*",
    "torch.fx.*",
    "torch.jit.*",
    "torch._dynamo.*",
    "torch.package.*",
    "torch.utils.bottleneck.*",
    "torch.testing.*",
    "torch.distributed.*",
    "torch.multiprocessing.*",
    "torch.utils._config_module.*",
    "torch.compile",
    "torch._C.*",
    "torch.ops.*",
    "torch.library.*",
    "torch.utils.data.*",
    "torch._export.*",
    "torch.export.*",
    "sklearn.utils._testing.*",
    "sklearn.utils.estimator_checks.*",
    "tensorflow.*",
    "keras.*",
)
_deny(
    _CODEOBJ,
    "types.FunctionType",
    "types.CodeType",
    "types.LambdaType",
    "types.MethodType",
    "types.ModuleType",
    "types.new_class",
    "marshal.*",
    "builtins.type",
    "builtins.classmethod",
    "builtins.staticmethod",
    "builtins.property",
    "builtins.super",
)
_deny(
    _PROC,
    "os.*",
    "posix.*",
    "nt.*",
    "subprocess.*",
    "_posixsubprocess.*",
    "pty.*",
    "asyncio.*",
    "multiprocessing.*",
    "_multiprocessing.*",
    "concurrent.*",
    "threading.*",
    "_thread.*",
    "signal.*",
    "platform.*",
    "uuid._get_command_stdout",
    "uuid._popen",
    "uuid._find_mac",
    "uuid._ifconfig_getnode",
    "_osx_support.*",
    "_aix_support.*",
    "ctypes.*",
    "_ctypes.*",
    "cffi.*",
    "webbrowser.*",
    "antigravity.*",
    "atexit.*",
    "builtins.exit",
    "builtins.quit",
    "resource.*",
    "fcntl.*",
    "mmap.*",
    "_winapi.*",
    "msvcrt.*",
    "winreg.*",
    "_wmi.*",
    "sched.*",
    "selectors.*",
    "select.*",
)
_deny(
    _NET,
    "socket.*",
    "_socket.*",
    "ssl.*",
    "_ssl.*",
    "http.*",
    "urllib.*",
    "urllib3.*",
    "requests.*",
    "httpx.*",
    "aiohttp.*",
    "ftplib.*",
    "smtplib.*",
    "poplib.*",
    "imaplib.*",
    "nntplib.*",
    "telnetlib.*",
    "socketserver.*",
    "xmlrpc.*",
    "wsgiref.*",
    "smtpd.*",
    "asyncore.*",
    "asynchat.*",
    "torch.hub.*",
    "huggingface_hub.*",
    "paramiko.*",
    "fsspec.*",
)
_deny(
    _FS,
    "builtins.open",
    "io.open",
    "io.open_code",
    "io.FileIO",
    "_io.open",
    "_io.open_code",
    "_io.FileIO",
    "io.TextIOWrapper",
    "_io.TextIOWrapper",
    "io.BufferedWriter",
    "_io.BufferedWriter",
    "io.BufferedRandom",
    "_io.BufferedRandom",
    "shutil.*",
    "tempfile.*",
    "glob.*",
    "fileinput.*",
    "codecs.open",
    "linecache.*",
    "dbm.*",
    "sqlite3.*",
    "zipfile.*",
    "tarfile.*",
    "gzip.*",
    "bz2.*",
    "lzma.*",
    "logging.*",
    "filecmp.*",
    "netrc.*",
    "mailbox.*",
    "numpy.save",
    "numpy.savez",
    "numpy.savez_compressed",
    "numpy.savetxt",
    "numpy.loadtxt",
    "numpy.genfromtxt",
    "numpy.fromfile",
    "numpy.memmap",
    "numpy.tofile",
    "numpy.lib.*",
    "numpy.ctypeslib.*",
    "numpy.DataSource",
    "pandas.io.*",
    "pandas.read_*",
    "pandas.to_pickle",
    "torch.save",
    "torch.from_file",
    "torch.serialization.*",
)
_deny(
    _IMP,
    "builtins.__import__",
    "importlib.*",
    "imp.*",
    "pkgutil.*",
    "zipimport.*",
    "builtins.globals",
    "builtins.locals",
    "builtins.vars",
    "builtins.dir",
    "inspect.*",
    "copyreg.*",
    "copy_reg.*",
    "sys.*",
    "gc.*",
    "builtins.__loader__",
    "builtins.__spec__",
    "_imp.*",
    "_frozen_importlib.*",
    "_frozen_importlib_external.*",
)
_deny(
    _ATTR,
    "builtins.getattr",
    "builtins.setattr",
    "builtins.delattr",
    "builtins.hasattr",
    "operator.*",
    "_operator.*",
    "functools.reduce",
    "builtins.object.__getattribute__",
    "builtins.object.__subclasses__",
)
_deny(
    _LOAD,
    "pickle.*",
    "_pickle.*",
    "cPickle.*",
    "dill.*",
    "cloudpickle.*",
    "joblib.*",
    "torch.load",
    "numpy.load",
    "pandas.read_pickle",
    "yaml.*",
    "jsonpickle.*",
    "shelve.*",
    "builtins.memoryview",
)

# Gadgets of published scanner bypasses that live outside the module-wide entries above.
_deny(_PROC, "mailcap.*", "torch.utils.*")
_deny(
    _CODE,
    "test.*",
    "_xxsubinterpreters.*",
    "_interpreters.*",
    "_xxinterpchannels.*",
    "_interpchannels.*",
    "interpreters.*",
    "_testcapi.*",
    "_testinternalcapi.*",
)

_DUNDER_GADGETS = frozenset(
    {
        "__globals__",
        "__subclasses__",
        "__builtins__",
        "__dict__",
        "__class__",
        "__base__",
        "__bases__",
        "__mro__",
        "__code__",
        "__closure__",
        "__getattribute__",
        "__reduce__",
        "__reduce_ex__",
        "__import__",
        "__loader__",
        "__spec__",
        "__self__",
        "__func__",
        "__getitem__",
        "__call__",
        "__init_subclass__",
        "__init__",
        "__new__",
        "__setattr__",
        "__delattr__",
        "__module__",
        "__wrapped__",
    }
)
_METHOD_VERBS = re.compile(
    r"^(to_\w+|save\w*|dump\w*|write\w*|load\w*|read\w*|open|exec\w*|eval|system|popen|spawn\w*|run\w*|"
    r"call|unlink|remove|rmdir|rename|replace|chmod|chown|mkdir|touch|symlink\w*|hardlink\w*|import\w*)$"
)

# Resolvers compute a new global from string arguments; the result is classified in turn.
RESOLVERS: dict[str, str] = {
    "builtins.getattr": "getattr",
    "operator.attrgetter": "attrgetter",
    "_operator.attrgetter": "attrgetter",
    "operator.methodcaller": "methodcaller",
    "_operator.methodcaller": "methodcaller",
    "builtins.__import__": "import",
    "importlib.import_module": "import",
    "importlib.__import__": "import",
    "pkgutil.resolve_name": "resolve_name",
    "pydoc.locate": "resolve_name",
    "numpy.core._multiarray_umath._ufunc_reconstruct": "module_name",
    "numpy._core._multiarray_umath._ufunc_reconstruct": "module_name",
    "numpy.core.multiarray._ufunc_reconstruct": "module_name",
}

# Calls whose bytes arguments are unpickled (or loaded) in turn: scanned as embedded payloads.
LOADERS = frozenset(
    {
        "pickle.loads",
        "pickle.load",
        "_pickle.loads",
        "_pickle.load",
        "pickle._loads",
        "pickle._load",
        "dill.loads",
        "dill.load",
        "cloudpickle.loads",
        "cloudpickle.load",
        "joblib.load",
        "torch.load",
        "torch.serialization.load",
        "torch.serialization._load",
        "torch.storage._load_from_bytes",
        "numpy.load",
        "pandas.read_pickle",
        "marshal.loads",
        "builtins.exec",
        "builtins.eval",
        "builtins.compile",
        "yaml.load",
        "yaml.unsafe_load",
    }
)

# --- what genuine artifacts use ---------------------------------------------------------------
_NUMPY_CORES = ("numpy.core", "numpy._core")
_ALLOWED_EXACT: frozenset[str] = frozenset(
    [
        # builtins and copyreg value construction
        *(
            f"builtins.{n}"
            for n in (
                "set",
                "frozenset",
                "dict",
                "list",
                "tuple",
                "bytearray",
                "bytes",
                "int",
                "float",
                "complex",
                "str",
                "bool",
                "slice",
                "range",
                "object",
                "Ellipsis",
                "NotImplemented",
                "print",
            )
        ),
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "_codecs.encode",
        "_codecs.decode",
        "codecs.decode",
        "codecs.encode",
        "functools.partial",
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.deque",
        "collections.Counter",
        "collections.ChainMap",
        "datetime.date",
        "datetime.time",
        "datetime.datetime",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "argparse.Namespace",
        "types.SimpleNamespace",
        "re._compile",
        "array.array",
        "array._array_reconstructor",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "io.BytesIO",
        "_io.BytesIO",
        "zoneinfo.ZoneInfo",
        "zoneinfo.ZoneInfo._unpickle",
        "ipaddress.IPv4Address",
        "ipaddress.IPv6Address",
        "ipaddress.IPv4Network",
        "ipaddress.IPv6Network",
        "enum.Enum",
        "torch.torch_version.TorchVersion",
        # NumPy 1.x and 2.x
        *(f"{c}.multiarray._reconstruct" for c in _NUMPY_CORES),
        *(f"{c}.multiarray.scalar" for c in _NUMPY_CORES),
        *(f"{c}.numeric._frombuffer" for c in _NUMPY_CORES),
        *(f"{c}._multiarray_umath._reconstruct" for c in _NUMPY_CORES),
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.matrix",
        "numpy.ma.core._mareconstruct",
        "numpy.ma.core.MaskedArray",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random.bit_generator.__pyx_unpickle_SeedSequence",
        "numpy.random.bit_generator.SeedSequence",
        "numpy.random.mtrand.RandomState",
        "numpy.random._generator.Generator",
        "numpy.random._mt19937.MT19937",
        "numpy.random._pcg64.PCG64",
        "numpy.random._pcg64.PCG64DXSM",
        "numpy.random._philox.Philox",
        "numpy.random._sfc64.SFC64",
        "numpy.random.mtrand.__RandomState_ctor",
        # PyTorch
        "torch._utils._rebuild_tensor",
        "torch._utils._rebuild_tensor_v2",
        "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter",
        "torch._utils._rebuild_parameter_with_state",
        "torch._utils._rebuild_qtensor",
        "torch._utils._rebuild_sparse_tensor",
        "torch._utils._rebuild_sparse_csr_tensor",
        "torch._utils._rebuild_nested_tensor",
        "torch._utils._rebuild_device_tensor_from_numpy",
        "torch._utils._rebuild_device_tensor_from_cpu_tensor",
        "torch._utils._rebuild_meta_tensor_no_storage",
        "torch._utils._rebuild_wrapper_subclass",
        "torch._utils._rebuild_xla_tensor",
        "torch._utils._rebuild_mps_tensor",
        "torch._utils._rebuild_buffer",
        "torch._tensor._rebuild_from_type",
        "torch._tensor._rebuild_from_type_v2",
        "torch.serialization._get_layout",
        "torch.storage._load_from_bytes",
        "torch.storage.UntypedStorage",
        "torch.storage.TypedStorage",
        "torch.Size",
        "torch.device",
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
        "torch.nn.parameter.UninitializedParameter",
        "torch.nn.parameter.UninitializedBuffer",
        "torch._tensor.Tensor",
        # TorchScript's own unpickler helpers (resolved from a fixed table, never imported)
        "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_tensorlist",
        "torch.jit._pickle.build_doublelist",
        "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensor_from_id",
        "torch.jit._pickle.restore_type_tag",
        # joblib array wrappers (the arrays themselves are read as raw data)
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle.NDArrayWrapper",
        "joblib.numpy_pickle.ZNDArrayWrapper",
    ]
)
_TORCH_CONSTANTS = re.compile(
    r"^torch\.(u?int(8|16|32|64)|float(8_\w+|16|32|64)?|bfloat16|half|double|long|short|int|bool|"
    r"complex(32|64|128)|cfloat|cdouble|chalf|q(u?int8|int32|uint4x2|uint2x4)|bits\w+|"
    r"strided|sparse_coo|sparse_csr|sparse_csc|sparse_bsr|sparse_bsc|_mkldnn|jagged|"
    r"contiguous_format|channels_last|channels_last_3d|preserve_format|"
    r"per_tensor_affine|per_channel_affine|per_tensor_symmetric|per_channel_symmetric|"
    r"per_channel_affine_float_qparams|[A-Z][A-Za-z0-9]*Storage)$"
)
_NUMPY_TYPES = re.compile(
    r"^numpy\.(u?int(8|16|32|64|c|p)?|float(16|32|64|128)|complex(64|128|256)|bool_?|str_|bytes_|"
    r"void|object_|datetime64|timedelta64|longdouble|clongdouble|half|single|double|longlong|ulonglong|"
    r"byte|ubyte|short|ushort|intc|uintc|longfloat|csingle|cdouble|generic|number|"
    r"dtypes\.[A-Za-z0-9]+DType)$"
)
_NUMPY_UFUNC = re.compile(
    r"^numpy\.(log|log1p|log2|log10|exp|exp2|expm1|sqrt|cbrt|square|abs|absolute|negative|sign|"
    r"sin|cos|tan|arcsin|arccos|arctan|sinh|cosh|tanh|arcsinh|arccosh|arctanh|floor|ceil|rint|trunc|"
    r"reciprocal|add|subtract|multiply|divide|true_divide|power|maximum|minimum|clip|isnan|isfinite|"
    r"mean|median|sum|nanmean|nanmedian|std|var|max|min|round|around)$"
)
_CLASS = re.compile(r"^_?[A-Z][A-Za-z0-9_]*$")
_PKG_CTOR = re.compile(
    r"^(__pyx_unpickle_\w+|_unpickle\w*|_new_\w+|_reconstruct\w*|_restore\w*|_from_\w+|"
    r"_rebuild\w*|_recreate\w*|_create\w*)$"
)
_SPARSE = re.compile(r"^[a-z]{3}_(matrix|array)$")
# Libraries whose classes (and pickling constructors) are safe to import, minus the denied parts.
_SAFE_PACKAGES = (
    "sklearn",
    "scipy",
    "pandas",
    "torch.nn",
    "torch.optim",
    "torch.ao",
    "torch.distributions",
    "numpy",
    "xgboost",
    "lightgbm",
    "catboost",
    "statsmodels",
    "imblearn",
    "category_encoders",
)
# TorchScript type references are resolved by TorchScript's own class table, never imported.
_TORCHSCRIPT_PREFIX = "__torch__."

_PY2_MODULES = {
    "__builtin__": "builtins",
    "copy_reg": "copyreg",
    "cPickle": "pickle",
    "exceptions": "builtins",
}


@lru_cache(maxsize=1)
def _module_heads() -> frozenset[str]:
    """Top-level names that start a new module path inside a dotted attribute chain."""
    extra = {
        "torch",
        "numpy",
        "pip",
        "setuptools",
        "pkg_resources",
        "dill",
        "cloudpickle",
        "joblib",
        "requests",
        "urllib3",
        "httpx",
        "keras",
        "tensorflow",
        "yaml",
        "jinja2",
        "IPython",
        "huggingface_hub",
        "cffi",
    }
    return frozenset(set(sys.stdlib_module_names) | extra)


def _match_table(name: str, table: dict[str, str]) -> str | None:
    if name in table:
        return table[name]
    segs = name.split(".")
    for i in range(len(segs), 0, -1):
        key = ".".join(segs[:i]) + ".*"
        if key in table:
            return table[key]
    # "pandas.read_*"-style keys: a prefix wildcard on the last segment
    head, _, last = name.rpartition(".")
    for key, cat in table.items():
        if key.endswith("*") and not key.endswith(".*"):
            khead, _, klast = key.rpartition(".")
            if khead == head and last.startswith(klast[:-1]):
                return cat
    return None


# Modules that are the same namespace under another name: a C accelerator or platform module and
# its public face, a renamed package. A name is matched under every spelling, so a denied function
# reached through its defining module (``posix.system``, ``_operator.attrgetter``) or its public alias
# (``os.path.X`` for ``posixpath.X``) is never missed, and NumPy 1.x/2.x spellings are one name.
_ALIASES: dict[str, tuple[str, ...]] = {
    "posix": ("os",),
    "nt": ("os",),
    "posixpath": ("os.path",),
    "ntpath": ("os.path",),
    "genericpath": ("os.path",),
    "os.path": ("posixpath", "ntpath", "genericpath"),
    "_operator": ("operator",),
    "operator": ("_operator",),
    "_io": ("io",),
    "io": ("_io",),
    "_pickle": ("pickle",),
    "_codecs": ("codecs",),
    "_collections": ("collections",),
    "_functools": ("functools",),
    "_datetime": ("datetime",),
    "_pydatetime": ("datetime",),
    "_decimal": ("decimal",),
    "_pydecimal": ("decimal",),
    "_sre": ("re",),
    "_socket": ("socket",),
    "_ssl": ("ssl",),
    "_thread": ("threading",),
    "_posixsubprocess": ("subprocess",),
    "_ctypes": ("ctypes",),
    "_imp": ("importlib",),
    "_frozen_importlib": ("importlib._bootstrap",),
    "_frozen_importlib_external": ("importlib._bootstrap_external",),
    "_signal": ("signal",),
    "_multiprocessing": ("multiprocessing",),
    "_pyrepl": ("code",),
    "numpy._core": ("numpy.core",),
    "numpy.core": ("numpy._core",),
}


def candidates(full: str) -> list[str]:
    """Every name under which the unpickler could reach the object ``full`` names.

    ``full`` itself; every suffix of it that starts at a known module name (``posixpath.os.system``
    and ``torch.serialization.os.system`` are ``os.system``: attribute chains through a module that
    imported another); and each of those under the aliases of its module (``posix.system`` is
    ``os.system``, ``numpy._core.multiarray.X`` is ``numpy.core.multiarray.X``). This is the one
    resolution function of the policy: deny entries match any candidate, allow entries the name
    itself or an alias of it.
    """
    segs = full.split(".")
    heads = _module_heads()
    out = [full]
    for i in range(1, len(segs)):
        if segs[i] in heads:
            out.append(".".join(segs[i:]))
    for name in list(out):
        out.extend(n for n in aliases(name) if n not in out)
    return out


def aliases(full: str) -> list[str]:
    """``full`` spelt with each alias of its module (longest module prefix first), itself excluded."""
    segs = full.split(".")
    for i in range(len(segs) - 1, 0, -1):
        others = _ALIASES.get(".".join(segs[:i]))
        if others:
            return [".".join([other, *segs[i:]]) for other in others]
    return []


@dataclass(frozen=True)
class Policy:
    """Classifies ``module.name`` references; extend with in-house names via ``allow``/``deny``."""

    allow: frozenset[str] = field(default_factory=frozenset)
    deny: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_file(cls, path: str | Path) -> Policy:
        """Read a TOML or YAML policy file with ``[pickle] allow = [...]`` and ``deny = [...]``."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise PolicyError(
                f"Cannot read policy file {p}: {e.strerror or e}. Check the --policy path."
            ) from e
        try:
            if p.suffix.lower() in {".yaml", ".yml"}:
                data = yaml.safe_load(text) or {}
            else:
                data = tomllib.loads(text)
        except (yaml.YAMLError, tomllib.TOMLDecodeError) as e:
            raise PolicyError(
                f"Policy file {p} is not valid {'YAML' if p.suffix in {'.yaml', '.yml'} else 'TOML'}: {e}"
            ) from e
        if not isinstance(data, dict):
            raise PolicyError(f"Policy file {p} must be a table/mapping with a 'pickle' section.")
        section = data.get("pickle", data)
        if not isinstance(section, dict):
            raise PolicyError(f"The 'pickle' section of {p} must be a table with 'allow' and 'deny' lists.")
        unknown = set(section) - {"allow", "deny"}
        if unknown:
            raise PolicyError(
                f"Unknown keys {sorted(unknown)} in policy file {p}; expected 'allow' and 'deny'."
            )
        return cls(
            allow=_names(section.get("allow", []), p, "allow"),
            deny=_names(section.get("deny", []), p, "deny"),
        )

    def classify(self, module: str, name: str) -> Verdict:
        """Classify the global ``name`` looked up in ``module`` (a dotted name is an attribute chain)."""
        module = _PY2_MODULES.get(module, module)
        full = f"{module}.{name}" if name else module
        return self.classify_name(full)

    def classify_name(self, full: str) -> Verdict:
        """Classify a fully qualified dotted name."""
        return _classify_cached(self, full)

    def _user(self, full: str, patterns: frozenset[str]) -> bool:
        if full in patterns:
            return True
        return any(p.endswith(".*") and (full == p[:-2] or full.startswith(p[:-1])) for p in patterns)


def _names(value: object, path: Path, key: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PolicyError(
            f"'{key}' in policy file {path} must be a list of dotted names such as 'pkg.module.Class'."
        )
    return frozenset(v.strip() for v in value)


@lru_cache(maxsize=65536)
def _classify_cached(policy: Policy, full: str) -> Verdict:
    if full in policy.allow:
        return Verdict(full, "allowed", None, "allowed by the policy file")
    if policy._user(full, policy.deny):
        return Verdict(full, "dangerous", "policy", "denied by the policy file")
    if full in _ALLOWED_EXACT:
        return Verdict(full, "allowed", None, "used by genuine model artifacts")
    alias = next((a for a in aliases(full) if a in _ALLOWED_EXACT or a in policy.allow), None)
    if alias is not None and not any(_match_table(c, DANGEROUS) for c in candidates(full)):
        return Verdict(full, "allowed", None, f"used by genuine model artifacts (same object as {alias})")
    segs = full.split(".")
    gadgets = [s for s in segs[1:] if s in _DUNDER_GADGETS]
    if gadgets:
        return Verdict(full, "dangerous", _ATTR, f"reaches Python internals through {gadgets[0]}")
    for cand in candidates(full):
        cat = _match_table(cand, DANGEROUS)
        if cat is not None:
            via = "" if cand == full else f" (resolves to {cand})"
            return Verdict(cand if cand != full else full, "dangerous", cat, f"{cat.replace('-', ' ')}{via}")
    if full.startswith(_TORCHSCRIPT_PREFIX):
        return Verdict(full, "allowed", None, "TorchScript class reference (not a Python import)")
    if _TORCH_CONSTANTS.match(full) or _NUMPY_TYPES.match(full) or _NUMPY_UFUNC.match(full):
        return Verdict(full, "allowed", None, "library type or constant")
    if _safe_library_name(segs):
        return Verdict(full, "allowed", None, "class of a model library")
    if policy._user(full, policy.allow):
        return Verdict(full, "allowed", None, "allowed by the policy file")
    if len(segs) > 2 and _METHOD_VERBS.match(segs[-1]) and _CLASS.match(segs[-2]):
        return Verdict(
            full, "dangerous", _FS, f"method {segs[-1]!r} of {'.'.join(segs[:-1])} reads, writes or runs"
        )
    return Verdict(full, "unknown", None, "not in the allow-list")


# Callables that evaluate an expression or a config they receive as a string: pandas.eval and
# DataFrame.eval/query, numexpr.evaluate, sympy.sympify/parse_expr, hydra.utils.instantiate/call,
# pydoc.locate... A call with a string argument runs what the string spells, so it is rated as the
# code it reaches (see :func:`expression_reaches`), never below high. The rule is the verb, whatever
# the module: a new library with an ``eval`` is covered without being listed.
_EVALUATOR_VERB = re.compile(
    r"^(eval|evaluate|re_evaluate|query|sympify|parse_expr|simple_eval|instantiate|call|"
    r"get_method|get_class|get_object|locate|_locate|resolve_name|import_string)$"
)
_EXPR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\s*\.\s*[A-Za-z_][A-Za-z0-9_]*)*")


@lru_cache(maxsize=4096)
def evaluates_strings(full: str) -> bool:
    """Whether the callable ``full`` is an evaluator: a string argument is code or a name it resolves."""
    return bool(_EVALUATOR_VERB.match(full.rsplit(".", 1)[-1]))


def expression_reaches(policy: Policy, text: str) -> Verdict | None:
    """The first dangerous name an evaluated expression string spells, or None.

    Every identifier and dotted path in ``text`` is classified as a global (``os.system``,
    ``subprocess.run``), bare names as builtins (``__import__``, ``open``, ``eval``); a dunder anywhere
    (``().__class__``) reaches Python internals.
    """
    for match in _EXPR_NAME.finditer(text[:4096]):
        path = re.sub(r"\s+", "", match.group(0))
        segs = path.split(".")
        dunder = next((s for s in segs if s in _DUNDER_GADGETS or s == "__import__"), None)
        if dunder is not None:
            return Verdict(path, "dangerous", _ATTR, f"reaches Python internals through {dunder}")
        for name in ([path] if len(segs) > 1 else []) + [f"builtins.{segs[0]}"]:
            verdict = policy.classify_name(name)
            if verdict.status == "dangerous":
                return verdict
    return None


def _safe_library_name(segs: list[str]) -> bool:
    """A class (or pickling constructor) defined inside one of the model libraries."""
    full = ".".join(segs)
    if not any(full.startswith(p + ".") for p in _SAFE_PACKAGES):
        return False
    heads = _module_heads()
    modules, last = segs[:-1], segs[-1]
    if any(s in heads and i > 0 for i, s in enumerate(modules)):
        return False  # a stdlib module reached through the library's namespace
    if any(s[:1].isupper() for s in modules[1:]) and not _CLASS.match(last):
        return False  # an attribute of a class (method), not the class itself
    return bool(_CLASS.match(last) or _PKG_CTOR.match(last) or _SPARSE.match(last))


def iter_patterns() -> Iterable[tuple[str, str]]:
    """Every built-in deny pattern with its category (for the docs)."""
    return sorted(DANGEROUS.items())
