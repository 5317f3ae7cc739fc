"""Every rule the scanner can report, with its stable id, default severity and mitigations.

The ids are what ``--format sarif`` publishes as rule ids and what docs/scanner.md documents;
keep them stable.
"""

from __future__ import annotations

from typing import Final

from mlarmor.findings import Severity
from mlarmor.scan._base import Rule

__all__ = ["ALL_RULES", "rule_by_id"]

_NO_LOAD = (
    "Do not load this file. If it must be used, re-export it in a data-only format (safetensors, ONNX)."
)
_SAFE_FORMAT = "Prefer data-only formats (safetensors, ONNX, GGUF without templates) over pickle-based ones."
_ALLOW = "If the reference is a genuine in-house class, allow it explicitly with --policy."
_TRUST = "Obtain the file from its original publisher and check its signature with `mlarmor verify`."

_CRIT = Severity.CRITICAL
_HIGH = Severity.HIGH
_MED = Severity.MEDIUM
_LOW = Severity.LOW

# --- pickle -----------------------------------------------------------------------------------
PICKLE_DANGEROUS: Final = Rule(
    "pickle.dangerous-global",
    "Pickle imports a dangerous callable",
    _CRIT,
    "Unpickling imports this global and may call it: it can run code, spawn processes, open network "
    "connections, write files, resolve arbitrary attributes or load a second-stage payload.",
    atlas=("AML.T0011.000", "AML.T0018.002", "AML.T0010.003"),
    mitigations=(_NO_LOAD, _SAFE_FORMAT, _TRUST),
)
PICKLE_UNKNOWN: Final = Rule(
    "pickle.unknown-global",
    "Pickle imports a global outside the allow-list",
    _MED,
    "Unpickling imports the module (running its top-level code) and reconstructs this class through the "
    "normal class paths (copyreg's reconstructor, NEWOBJ + BUILD) or keeps it as data; it does not call "
    "it as a function. It is not a class that genuine PyTorch, NumPy, scikit-learn or pandas artifacts "
    "use: typically the user's own model or transformer class.",
    atlas=("AML.T0011.000", "AML.T0010.003"),
    mitigations=(_ALLOW, _SAFE_FORMAT),
)
PICKLE_UNKNOWN_CALL: Final = Rule(
    "pickle.unknown-call",
    "Pickle calls a callable outside the allow-list",
    _HIGH,
    "Loading the file calls this global (REDUCE, INST, OBJ, NEWOBJ on something that is not "
    "a class, or a helper such as functools.partial that invokes it). It is not one of the reconstructors "
    "genuine PyTorch, NumPy, SciPy, scikit-learn or pandas artifacts call, so whatever it does runs when the "
    "file is loaded. A deny list can never name every such function: calls the scanner does not know "
    "fail closed.",
    atlas=("AML.T0011.000", "AML.T0018.002", "AML.T0010.003"),
    mitigations=(_ALLOW, _NO_LOAD, _TRUST),
)
PICKLE_EVALUATED: Final = Rule(
    "pickle.evaluated-expression",
    "Pickle hands an expression to a library that evaluates it",
    _HIGH,
    "Loading the file calls an evaluator (pandas.eval, DataFrame.query, numexpr.evaluate, sympy.sympify, "
    "hydra's instantiate...) with a string: the string is code, and it runs. Critical when the expression "
    "reaches a dangerous name or Python internals.",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_NO_LOAD, _TRUST),
)
PICKLE_GLOBAL_WRITE: Final = Rule(
    "pickle.global-write",
    "Pickle writes into a module, class or global object",
    _CRIT,
    "BUILD, SETITEM or attribute state applied to an imported global changes process-wide state "
    "(sys.modules, os.environ, class attributes) when the file is loaded.",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_NO_LOAD, _TRUST),
)
PICKLE_EMBEDDED: Final = Rule(
    "pickle.embedded-payload",
    "Pickle carries a second-stage payload",
    _CRIT,
    "Bytes passed to a loader call (pickle.loads, torch.load, ...) inside the pickle are unpickled in turn "
    "when the file is loaded; findings of the embedded stream are reported with it.",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_NO_LOAD,),
)
PICKLE_MALFORMED: Final = Rule(
    "pickle.malformed",
    "Pickle stream is malformed or truncated",
    _MED,
    "The loader stops with an error at this point, after executing every opcode before it; everything "
    "before the break was analysed.",
    mitigations=(_TRUST,),
)
PICKLE_LIMIT: Final = Rule(
    "pickle.resource-limit",
    "Pickle analysis stopped at a resource limit",
    _HIGH,
    "The stream performs more calls than the analysis limit allows; the rest was not analysed, so the "
    "file cannot be vouched for.",
    mitigations=("Raise --max-pickle-calls if the file is trusted.",),
)
PICKLE_NOTES: Final = Rule(
    "pickle.needs-allow-pickle",
    "Array file holds pickled Python objects",
    _LOW,
    "numpy.load refuses this file unless allow_pickle=True, which unpickles the objects.",
    mitigations=("Store arrays with a numeric dtype, or convert the objects to a data-only format.",),
)

# --- archives ---------------------------------------------------------------------------------
ZIP_TAMPER: Final = Rule(
    "archive.zip-tampering",
    "Zip archive was altered in a way that hides members from scanners",
    _HIGH,
    "PyTorch's zip reader ignores encryption flags, CRC errors and local-header names, while Python's "
    "zipfile refuses them: a known way to make scanners skip a payload that torch.load still runs.",
    atlas=("AML.T0011.000", "AML.T0010.003"),
    mitigations=(_TRUST, "Re-save the model with the library that wrote it."),
)
ARCHIVE_BOMB: Final = Rule(
    "archive.bomb",
    "Decompression bomb",
    _HIGH,
    "A member expands far beyond its compressed size; extracting or loading it exhausts memory or disk.",
    atlas=("AML.T0010.003",),
    mitigations=(_TRUST,),
)
ARCHIVE_LIMIT: Final = Rule(
    "archive.resource-limit",
    "Scan stopped at a resource limit",
    _HIGH,
    "A size, depth or member-count limit was exceeded; the rest of the file was not analysed, so it "
    "cannot be vouched for.",
    atlas=("AML.T0010.003",),
    mitigations=("Raise the limit (--max-depth, --max-members, --max-total-bytes) if the file is trusted.",),
)
ARCHIVE_PATH: Final = Rule(
    "archive.unsafe-path",
    "Archive member path escapes the extraction folder",
    _HIGH,
    "An absolute path, '..' component or link target outside the archive lets extraction overwrite files.",
    atlas=("AML.T0010.003",),
    mitigations=("Never extract this archive with a tool that follows member paths.", _TRUST),
)
ARCHIVE_ERROR: Final = Rule(
    "archive.malformed",
    "Archive is malformed",
    _HIGH,
    "The container or compressed stream cannot be parsed completely (truncated, corrupt, or followed by "
    "bytes that are not part of it); what lies after the damage was not analysed, while a loader may "
    "still reach it or run what came before the error, so the file cannot be vouched for.",
    mitigations=(_TRUST,),
)

# --- other formats ----------------------------------------------------------------------------
KERAS_LAMBDA: Final = Rule(
    "keras.lambda-code",
    "Keras model carries executable Python code",
    _CRIT,
    "A Lambda layer (or serialised function) holds marshalled bytecode or source that Keras runs when the "
    "model is loaded with safe_mode disabled or an older Keras.",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_NO_LOAD, "Replace Lambda layers with registered custom layers."),
)
KERAS_DANGEROUS: Final = Rule(
    "keras.dangerous-reference",
    "Keras config references a dangerous module or function",
    _CRIT,
    "Keras imports 'module' and looks up 'class_name' while deserialising the config; this reference can "
    "run code, touch files or the network, or disable safe mode.",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_NO_LOAD, _TRUST),
)
KERAS_UNKNOWN: Final = Rule(
    "keras.unknown-reference",
    "Keras config references a module outside Keras",
    _MED,
    "Keras imports this module while deserialising; it is not part of Keras.",
    mitigations=(_ALLOW,),
)
KERAS_EXTERNAL: Final = Rule(
    "keras.external-resource",
    "Keras layer reads a file or URL when the model is loaded",
    _HIGH,
    "A preprocessing layer's vocabulary (or a TFSMLayer's SavedModel) is a path or URL that Keras opens "
    "while loading, even in safe mode: the model can read local files into its state or make requests "
    "on the loader's behalf (CVE-2025-12058).",
    mitigations=(
        "Load only models whose vocabularies are stored inside the archive.",
        "Upgrade Keras to a release with the fix for CVE-2025-12058.",
    ),
)
ONNX_EXTERNAL: Final = Rule(
    "onnx.external-data-escape",
    "ONNX external data points outside the model's folder",
    _HIGH,
    "ONNX Runtime reads tensor data from this location; a path outside the model folder reads (and may "
    "expose) arbitrary files of the host.",
    atlas=("AML.T0010.003",),
    mitigations=("Keep external data next to the model with relative paths.", _TRUST),
)
ONNX_CUSTOM_DOMAIN: Final = Rule(
    "onnx.custom-domain",
    "ONNX model uses a custom operator domain",
    _LOW,
    "Running it requires a custom-operator library; such native code runs with the process' rights.",
    mitigations=("Review the custom-op library the model needs before registering it.",),
)
GGUF_TEMPLATE: Final = Rule(
    "gguf.template-injection",
    "GGUF chat template reaches Python internals",
    _CRIT,
    "The Jinja chat template walks to __class__/__globals__/__subclasses__/__builtins__ or similar: rendered "
    "by a non-sandboxed Jinja environment it runs arbitrary code (server-side template injection).",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_NO_LOAD, "Render chat templates only in jinja2.sandbox.ImmutableSandboxedEnvironment."),
)
FORMAT_MALFORMED: Final = Rule(
    "format.malformed",
    "Model file header is malformed",
    _HIGH,
    "Lengths, counts or offsets in the header are inconsistent with the file; crafted headers are a known "
    "way to trigger out-of-bounds reads in native model parsers.",
    atlas=("AML.T0010.003",),
    mitigations=(_TRUST,),
)
FORMAT_UNKNOWN: Final = Rule(
    "format.unknown",
    "Not a recognised model format",
    _LOW,
    "The content matches no supported model format (the extension is ignored); nothing in it was analysed.",
    mitigations=("Check that this is the file you meant to scan.",),
)
FORMAT_NOT_A_MODEL: Final = Rule(
    "format.not-a-model",
    "File named as a model cannot be one",
    _HIGH,
    "The file's name says it is a model (its extension), but it is empty, matches no model format, or its "
    "top-level structure is cut short or broken: it cannot be the model it claims to be. A truncated "
    "download, a failed export or a swapped file must not pass a gate as safe; neither can a file whose "
    "content the scanner could not analyse.",
    atlas=("AML.T0010.003",),
    mitigations=(
        "Re-download or re-export the model and scan it again; verify it against its signature "
        "(mlarmor verify).",
    ),
)
FILE_EMPTY: Final = Rule(
    "file.empty",
    "File is empty",
    _LOW,
    "An empty file cannot be a valid model; loaders fail on it.",
    mitigations=("Re-download or re-export the model.",),
)
TORCHSCRIPT_CODE: Final = Rule(
    "torchscript.suspicious-code",
    "TorchScript code calls outside the tensor operator set",
    _HIGH,
    "The serialised TorchScript program calls operators that read or write files or reach custom native "
    "libraries when the model runs.",
    atlas=("AML.T0011.000", "AML.T0018.002"),
    mitigations=(_TRUST,),
)

ALL_RULES: Final[tuple[Rule, ...]] = (
    PICKLE_DANGEROUS,
    PICKLE_UNKNOWN,
    PICKLE_UNKNOWN_CALL,
    PICKLE_EVALUATED,
    PICKLE_GLOBAL_WRITE,
    PICKLE_EMBEDDED,
    PICKLE_MALFORMED,
    PICKLE_LIMIT,
    PICKLE_NOTES,
    ZIP_TAMPER,
    ARCHIVE_BOMB,
    ARCHIVE_LIMIT,
    ARCHIVE_PATH,
    ARCHIVE_ERROR,
    KERAS_LAMBDA,
    KERAS_DANGEROUS,
    KERAS_UNKNOWN,
    KERAS_EXTERNAL,
    ONNX_EXTERNAL,
    ONNX_CUSTOM_DOMAIN,
    GGUF_TEMPLATE,
    FORMAT_MALFORMED,
    FORMAT_UNKNOWN,
    FORMAT_NOT_A_MODEL,
    FILE_EMPTY,
    TORCHSCRIPT_CODE,
)

_BY_ID = {r.id: r for r in ALL_RULES}


def rule_by_id(rule_id: str) -> Rule | None:
    """The rule with ``rule_id``, or None."""
    return _BY_ID.get(rule_id)
