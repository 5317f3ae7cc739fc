"""Keras models: ``config.json`` of a ``.keras`` archive and the legacy HDF5 (``.h5``) format.

Keras rebuilds a model by walking its JSON config and, for every ``{"module", "class_name",
"config", "registered_name"}`` object, importing ``module`` and looking up ``class_name`` (or,
for ``"class_name": "function"``, the function named by ``config``). Lambda layers carry
marshalled Python bytecode. The published safe-mode bypasses abuse exactly these lookups:

- CVE-2024-3660: Lambda bytecode runs on load (Keras < 2.13, or ``safe_mode=False``).
- CVE-2025-1550: arbitrary ``module``/``class_name`` pairs imported and called (Keras < 3.9).
- CVE-2025-8747: ``keras.utils.get_file`` reached as a Lambda function downloads files.
- CVE-2025-9906: ``keras.config.enable_unsafe_deserialization`` reached the same way turns safe
  mode off, then a nested ``load_model`` runs Lambda bytecode.
- CVE-2025-9905: legacy ``.h5`` loading ignored ``safe_mode`` for Lambda layers.
- CVE-2025-12058: ``StringLookup(vocabulary="/path/or/url")`` reads a file or URL on load.

Nothing here imports Keras or unmarshals anything: Lambda code is base64-decoded and only its
string constants are listed. HDF5 files are opened with h5py over the caller's buffer (no copy)
and only the ``model_config`` and ``training_config`` root attributes are read.
"""

from __future__ import annotations

import base64
import binascii
import builtins
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from mlarmor.findings import Severity
from mlarmor.scan._base import Buffer, BufferFile, Rule, Scope
from mlarmor.scan.rules import FORMAT_MALFORMED, KERAS_DANGEROUS, KERAS_EXTERNAL, KERAS_LAMBDA, KERAS_UNKNOWN

__all__ = [
    "KERAS_EXTERNAL",
    "is_keras_archive",
    "lambda_code_strings",
    "scan_hdf5",
    "scan_keras_config",
]


MAX_CONFIG_BYTES: Final = 256 << 20
_KERAS_ROOTS: Final = (
    "tensorflow.python.keras",
    "tensorflow.keras",
    "tf_keras",
    "keras_hub",
    "keras_nlp",
    "keras_cv",
)
_DENY_NAMES: Final = {
    "get_file": "downloads a file from a URL (CVE-2025-8747)",
    "load_model": "loads another model, possibly with safe_mode=False (CVE-2025-9906)",
    "load_weights": "reads a weights file",
    "save_model": "writes a model file",
    "save_weights": "writes a weights file",
    "model_from_json": "rebuilds a model from another config",
    "model_from_config": "rebuilds a model from another config",
    "model_from_yaml": "rebuilds a model from another config",
    "deserialize_keras_object": "deserialises another object outside the loader's checks",
    "enable_unsafe_deserialization": "turns Keras safe mode off (CVE-2025-9906)",
    "set_global_attribute": "rewrites Keras global state such as safe_mode_saving (CVE-2025-9906)",
    "func_load": "rebuilds a Python function from marshalled bytecode",
    "register_keras_serializable": "registers new deserialisable objects",
    "load_img": "reads an image file",
    "save_img": "writes an image file",
    "image_dataset_from_directory": "reads files from a directory",
    "text_dataset_from_directory": "reads files from a directory",
    "audio_dataset_from_directory": "reads files from a directory",
    "load_data": "downloads a dataset",
    "clear_session": "resets Keras global state",
}
"""Keras functions that read, write, download or change how loading works (Keras' own
``NON_MODELING_APIS`` list in keras/src/saving/serialization_lib.py, plus their internal twins)."""
_DENY_MODULES: Final = {
    "config": "changes Keras configuration such as safe mode",
    "saving": "loads or saves files",
    "legacy.saving": "loads or saves files",
    "backend.config": "changes Keras configuration",
    "backend.common.global_state": "rewrites Keras global state",
    "utils.file_utils": "downloads or extracts files",
    "utils.python_utils": "rebuilds Python functions from bytecode",
    "datasets": "downloads datasets",
}
_LOOKUP_LAYERS: Final = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
_SUSPICIOUS_STRINGS: Final = frozenset(
    {
        "os",
        "sys",
        "system",
        "popen",
        "subprocess",
        "Popen",
        "exec",
        "eval",
        "compile",
        "__import__",
        "import_module",
        "importlib",
        "builtins",
        "__builtins__",
        "getattr",
        "open",
        "socket",
        "shutil",
        "requests",
        "urllib",
        "urlopen",
        "marshal",
        "pickle",
        "base64",
        "b64decode",
        "environ",
        "remove",
        "rmtree",
        "check_output",
        "spawn",
        "fork",
    }
)
_MAX_STRINGS: Final = 64
_PRINTABLE_RUN = re.compile(rb"[\x20-\x7e]{4,}")


def is_keras_archive(names: list[str]) -> bool:
    """Whether zip member ``names`` form a ``.keras`` archive (root ``config.json`` and ``metadata.json``)."""
    return "config.json" in names and "metadata.json" in names


def lambda_code_strings(raw: bytes) -> list[str]:
    """String constants in marshalled code, found by reading marshal's string records (no unmarshalling).

    Marshal writes names and constants as a type byte (``z``/``Z`` short ASCII with a 1-byte
    length; ``a``/``A``/``u``/``t`` with a 4-byte length; the 0x80 bit flags a back-reference)
    followed by the text. Printable runs of 4+ bytes are added for anything else.
    """
    found: list[str] = []
    i, n = 0, len(raw)
    while i < n and len(found) < _MAX_STRINGS * 4:
        kind = raw[i] & 0x7F
        start = length = -1
        if kind in (0x7A, 0x5A) and i + 1 < n:  # 'z', 'Z'
            start, length = i + 2, raw[i + 1]
        elif kind in (0x61, 0x41, 0x75, 0x74) and i + 5 <= n:  # 'a', 'A', 'u', 't'
            start, length = i + 5, int.from_bytes(raw[i + 1 : i + 5], "little")
        if 0 < length <= 4096 and start + length <= n:
            chunk = raw[start : start + length]
            if all(0x20 <= b < 0x7F for b in chunk):
                found.append(chunk.decode("ascii"))
                i = start + length
                continue
        i += 1
    found.extend(m.decode("ascii") for m in _PRINTABLE_RUN.findall(raw))
    unique = list(dict.fromkeys(s[:100] for s in found))
    return unique[:_MAX_STRINGS]


def _keras_path(module: str) -> str | None:
    """``module`` relative to its Keras package with any ``src.`` removed, or None if not Keras."""
    for root in (*_KERAS_ROOTS, "keras"):
        if module == root or module.startswith(root + "."):
            rest = module[len(root) + 1 :]
            return rest[4:] if rest.startswith("src.") else ("" if rest == "src" else rest)
    return None


def _dangerous_keras(path: str, name: str) -> str | None:
    if name in _DENY_NAMES:
        return _DENY_NAMES[name]
    for prefix, reason in _DENY_MODULES.items():
        if path == prefix or path.startswith(prefix + "."):
            return reason
    return None


@dataclass(slots=True)
class _Walk:
    scope: Scope
    source: str
    reported: dict[tuple[str, str, str], int] = field(default_factory=dict)

    def run(self, config: Any) -> None:
        for node, layer, path in _objects(config):
            self.visit(node, layer, path)

    def visit(self, node: dict[str, Any], layer: str | None, path: str) -> None:
        class_name = node.get("class_name")
        if not isinstance(class_name, str):
            return
        cfg = node.get("config")
        module = node.get("module")
        where = {"layer": layer, "path": path, "source": self.source}
        if class_name == "__lambda__":
            inner = cfg if isinstance(cfg, dict) else {}
            code = inner.get("code", inner.get("value"))
            self.lambda_code(code[0] if isinstance(code, list) and code else code, where)
            return
        if class_name == "Lambda" and isinstance(cfg, dict):
            self.legacy_lambda(cfg, where)
        if isinstance(cfg, dict):
            self.special_layer(class_name, cfg, where)
        if class_name == "function" and isinstance(cfg, str):
            if isinstance(module, str) and module:
                self.reference(module, cfg, "function", where)
        elif isinstance(module, str) and module:
            self.reference(module, class_name, "class", where)

    def legacy_lambda(self, cfg: dict[str, Any], where: dict[str, Any]) -> None:
        """Keras 1/2 Lambda: ``function`` + ``function_type`` (+ ``module``), same for output_shape."""
        for key, kind_key, module_key in (
            ("function", "function_type", "module"),
            ("output_shape", "output_shape_type", "output_shape_module"),
        ):
            value, kind = cfg.get(key), cfg.get(kind_key)
            if kind == "lambda":
                self.lambda_code(value[0] if isinstance(value, list) and value else value, where)
            elif kind == "function" and isinstance(value, str):
                module = cfg.get(module_key)
                if isinstance(module, str) and module:
                    # Keras 2 looks the name up in the module's globals: a module reference too.
                    self.reference(module, value, "function", where)

    def special_layer(self, class_name: str, cfg: dict[str, Any], where: dict[str, Any]) -> None:
        vocabulary = cfg.get("vocabulary")
        if class_name in _LOOKUP_LAYERS and isinstance(vocabulary, str) and vocabulary:
            self.scope.add(
                KERAS_EXTERNAL,
                title=f"Keras {class_name} {where['layer']!r} reads its vocabulary from {vocabulary[:200]!r}",
                evidence={**where, "class_name": class_name, "vocabulary": vocabulary[:1000]},
            )
        elif class_name == "TFSMLayer":
            self.scope.add(
                KERAS_EXTERNAL,
                title=f"Keras TFSMLayer {where['layer']!r} loads the SavedModel at {cfg.get('filepath')!r}",
                evidence={**where, "class_name": class_name, "filepath": str(cfg.get("filepath"))[:1000]},
            )
        elif class_name == "TorchModuleWrapper" and isinstance(cfg.get("module"), str):
            self.torch_module(cfg["module"], where)

    def torch_module(self, encoded: str, where: dict[str, Any]) -> None:
        """TorchModuleWrapper stores ``torch.save`` output in base64; ``from_config`` torch.loads it."""
        self.scope.add(
            KERAS_DANGEROUS,
            title=f"Keras TorchModuleWrapper {where['layer']!r} embeds a pickle that loading unpickles",
            evidence={**where, "class_name": "TorchModuleWrapper", "encoded_bytes": len(encoded)},
        )
        try:
            raw = base64.b64decode(encoded)
        except (binascii.Error, ValueError):
            return
        self.scope.charge(nbytes=len(raw))
        self.scope.scan_member(raw, f"{where['layer'] or 'layer'}/TorchModuleWrapper.module")

    def lambda_code(self, code: Any, where: dict[str, Any]) -> None:
        evidence: dict[str, Any] = dict(where)
        if isinstance(code, str):
            try:
                raw = base64.b64decode(code)
            except (binascii.Error, ValueError):
                evidence["code_error"] = "not valid base64"
            else:
                strings = lambda_code_strings(raw)
                evidence |= {
                    "code_bytes": len(raw),
                    "strings": strings,
                    "suspicious": sorted(s for s in set(strings) if s in _SUSPICIOUS_STRINGS),
                }
        else:
            evidence["code_error"] = f"code is {type(code).__name__}, not a base64 string"
        self.scope.add(
            KERAS_LAMBDA,
            title=f"Keras Lambda layer {where['layer']!r} carries marshalled Python bytecode",
            evidence=evidence,
        )

    def reference(self, module: str, name: str, kind: str, where: dict[str, Any]) -> None:
        keras_path = _keras_path(module)
        if keras_path is not None:
            reason = _dangerous_keras(keras_path, name)
            if reason is not None:
                self.report(KERAS_DANGEROUS, module, name, kind, reason, None, where)
            return
        if module == "builtins" and not hasattr(builtins, name):
            return  # Keras resolves builtins/<name> among its own activations, losses and metrics
        verdict = self.scope.policy.classify(module, name)
        if verdict.status == "dangerous":
            self.report(KERAS_DANGEROUS, module, name, kind, verdict.reason, verdict.category, where)
        elif verdict.status == "unknown":
            self.report(KERAS_UNKNOWN, module, name, kind, verdict.reason, None, where)

    def report(
        self,
        rule: Rule,
        module: str,
        name: str,
        kind: str,
        reason: str,
        category: str | None,
        where: dict[str, Any],
    ) -> None:
        key = (rule.id, module, name)
        self.reported[key] = self.reported.get(key, 0) + 1
        if self.reported[key] > 1:
            return  # one finding per reference; the first location is shown
        evidence = {**where, "module": module, "name": name, "kind": kind, "reason": reason}
        if category is not None:
            evidence["category"] = category
        self.scope.add(
            rule,
            title=f"Keras config references {kind} {module}.{name}: {reason}",
            evidence=evidence,
        )


def _objects(config: Any) -> Iterator[tuple[dict[str, Any], str | None, str]]:
    """Every JSON object in ``config`` with the nearest enclosing layer name and a JSON path."""
    stack: list[tuple[Any, str | None, str]] = [(config, None, "$")]
    while stack:
        node, layer, path = stack.pop()
        if isinstance(node, dict):
            cfg = node.get("config")
            if (
                isinstance(node.get("class_name"), str)
                and isinstance(cfg, dict)
                and isinstance(cfg.get("name"), str)
            ):
                layer = cfg["name"]
            yield node, layer, path
            stack.extend((v, layer, f"{path}.{k}") for k, v in node.items() if isinstance(v, dict | list))
        elif isinstance(node, list):
            stack.extend((v, layer, f"{path}[{i}]") for i, v in enumerate(node) if isinstance(v, dict | list))


def _walk_json(text: Any, scope: Scope, source: str) -> bool:
    """Parse and walk one JSON config; returns False after reporting why it could not be read."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as e:
            _malformed(scope, source, f"{source} is not valid UTF-8 ({e.reason} at byte {e.start})")
            return False
    if not isinstance(text, str):
        _malformed(scope, source, f"{source} is a {type(text).__name__}, not JSON text")
        return False
    try:
        config = json.loads(text)
    except json.JSONDecodeError as e:
        _malformed(scope, source, f"{source} is not valid JSON ({e.msg} at character {e.pos})")
        return False
    except RecursionError:
        _malformed(scope, source, f"{source} is nested too deeply to parse")
        return False
    _Walk(scope, source).run(config)
    return True


def _malformed(scope: Scope, source: str, problem: str) -> None:
    scope.add(
        FORMAT_MALFORMED,
        title=f"Keras model: {problem}",
        severity=Severity.MEDIUM,
        evidence={"format": "keras", "source": source, "problem": problem},
        description="Keras cannot rebuild the model from this config; nothing in it was analysed.",
    )


def scan_keras_config(config_json: Buffer, scope: Scope) -> str:
    """Scan the ``config.json`` of a ``.keras`` archive; returns ``"keras"``.

    Reports Lambda bytecode (:data:`KERAS_LAMBDA`), dangerous module/function references and
    embedded torch pickles (:data:`KERAS_DANGEROUS`, whose payload is also scanned as a member),
    non-Keras references (:data:`KERAS_UNKNOWN`) and external vocabularies or SavedModels
    (:data:`KERAS_EXTERNAL`).
    """
    if len(config_json) > MAX_CONFIG_BYTES:
        _malformed(scope, "config.json", f"config.json is {len(config_json)} bytes, too large to analyse")
        return "keras"
    _walk_json(bytes(config_json), scope, "config.json")
    return "keras"


def _attribute_text(value: Any) -> Any:
    """An HDF5 attribute as str or bytes when it holds one string (h5py returns several shapes)."""
    if hasattr(value, "shape") and getattr(value, "size", 0) == 1 and hasattr(value, "item"):
        value = value.item()
    return value


def scan_hdf5(data: Buffer, scope: Scope) -> str:
    """Scan an HDF5 file; returns ``"keras-h5"`` for a legacy Keras model, else ``"hdf5"``.

    Only the root attributes ``model_config`` and ``training_config`` are read and walked like
    ``config.json``. A file without ``model_config`` (weights only, such as the
    ``model.weights.h5`` inside a ``.keras`` archive) has nothing to execute and yields no finding.
    """
    import h5py  # h5py is slow to import and only needed for HDF5 files

    configs: dict[str, Any] = {}
    handle = BufferFile(data)
    try:
        with h5py.File(handle, "r") as f:
            for name in ("model_config", "training_config"):
                if name in f.attrs:
                    configs[name] = _attribute_text(f.attrs[name])
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as e:
        scope.add(
            FORMAT_MALFORMED,
            title="HDF5 file cannot be parsed",
            severity=Severity.MEDIUM,
            evidence={"format": "hdf5", "problem": str(e)[:500]},
        )
        return "hdf5"
    finally:
        handle.close()
    if "model_config" not in configs:
        return "hdf5"
    for name, text in configs.items():
        _walk_json(text, scope, name)
    return "keras-h5"
