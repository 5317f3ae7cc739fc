"""GGUF handler: header walk, layout checks, and the chat-template audit."""

from __future__ import annotations

import struct
import time
from pathlib import Path

import gguf
import numpy as np
import pytest
from _format_helpers import (
    GgufTensor,
    build_gguf,
    by_rule,
    describe,
    gguf_kv_string,
    gguf_kv_u32,
    gguf_string,
    make_scope,
    run_on_mmap,
    worst,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlarmor.findings import Severity
from mlarmor.scan._gguf import GGML_TYPES, audit_template, scan_gguf

MALFORMED = "format.malformed"
TEMPLATE = "gguf.template-injection"

# --- realistic benign chat templates (shapes of the published Llama-3, Llama-3.1, ChatML, Mistral,
# Gemma, DeepSeek-R1, Phi-3 and Qwen templates) ---------------------------------------------------
LLAMA3 = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = "
    "'<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + "
    "'<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{% endif %}"
)
CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt"
    " %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
MISTRAL = (
    "{{ bos_token }}{% for message in messages %}{% if"
    " (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' +"
    " message['content'] + ' [/INST]' }}{% elif message['role'] "
    "== 'assistant' %}{{ message['content'] + eos_token}}{%"
    " else %}{{ raise_exception('Only user and assistant "
    "roles are supported!') }}{% endif %}{% endfor %}"
)
GEMMA = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system'"
    " %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role"
    " = 'model' %}{% else %}{% set role = message['role'] %}"
    "{% endif %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
LLAMA31_TOOLS = """{{- bos_token }}
{%- if custom_tools is defined %}{%- set tools = custom_tools %}{%- endif %}
{%- if not tools_in_user_message is defined %}{%- set tools_in_user_message = true %}{%- endif %}
{%- if not date_string is defined %}{%- set date_string = "26 Jul 2024" %}{%- endif %}
{%- if not tools is defined %}{%- set tools = none %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}{%- set system_message = "" %}{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\\n\\n" }}{%- endfor %}
{%- endif %}
{{- system_message }}{{- "<|eot_id|>" }}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}{%- if not loop.last %}{{- ", " }}{%- endif %}
            {%- endfor %}
            {{- ")" }}
        {%- else %}
            {{- '{"name": "' + tool_call.name + '", "parameters": ' }}
            {{- tool_call.arguments | tojson }}{{- "}" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {%- if message.content is mapping or message.content is iterable %}{{- message.content | tojson }}
        {%- else %}{{- message.content }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
"""
DEEPSEEK_R1 = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', "
    "is_first_sp=true) %}{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if "
    "ns.is_first_sp %}{% set ns.system_prompt = ns.system_prompt"
    " + message['content'] %}{% set ns.is_first_sp "
    "= false %}{%- else %}{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}"
    "{%- endif %}{%- endif %}{%- endfor %}{{ bos_token }}{{ ns.system_prompt }}{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{%- set ns.is_tool ="
    " false -%}{{'<\uff5cUser\uff5c>' + message['content']}}"
    "{%- endif %}{%- if message['role'] == 'assistant' and message['content'] is not none %}{% set content = "
    "message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}"
    "{% endif %}{{'<\uff5cAssistant\uff5c>' + content +"
    " '<\uff5cend▁of▁sentence\uff5c>'}}{%- endif %}{%- endfor -%}"
    "{% if add_generation_prompt and not ns.is_tool %}{{'<\uff5cAssistant\uff5c><think>\\n'}}{% endif %}"
)
PHI3 = (
    "{% for message in messages %}{% if message['role'] =="
    " 'system' %}{{'<|system|>\\n' + message['content'] + "
    "'<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}"
    "{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n'"
    " + message['content'] + '<|end|>\\n'}}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)
QWEN3_STYLE = (
    "{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}"
    "{%- for message in messages[::-1] %}{%- set index = (messages|length - 1) - loop.index0 %}"
    "{%- if ns.multi_step_tool and message.role == 'user'"
    " and not(message.content.startswith('<tool_response>') "
    "and message.content.endswith('</tool_response>')) %}{%- set ns.multi_step_tool = false %}"
    "{%- set ns.last_query_index = index %}{% break %}{%- endif %}{%- endfor %}"
    "{%- for message in messages %}{%- if message.role == 'assistant' %}{% generation %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content.lstrip('\\n') }}{% endgeneration %}"
    "{%- for tool_call in message.tool_calls | default([]) %}{{- tool_call.function.name | tojson }}"
    "{%- endfor %}{%- else %}{{- '<|im_start|>' + message.role + '\\n' + message.content }}{%- endif %}"
    "{{- '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
BENIGN = {
    "llama3": LLAMA3,
    "chatml": CHATML,
    "mistral": MISTRAL,
    "gemma": GEMMA,
    "llama3.1-tools": LLAMA31_TOOLS,
    "deepseek-r1": DEEPSEEK_R1,
    "phi3": PHI3,
    "qwen3-style": QWEN3_STYLE,
}

# --- malicious templates: published SSTI shapes and obfuscations of them ------------------------
CRITICAL_TEMPLATES = {
    # CVE-2024-34359 (llama-cpp-python GHSA-56xg-wfcc-g829): the published PoC.
    "cve-2024-34359": (
        '{% for x in ().__class__.__base__.__subclasses__() %}{% if "warning" in x.__name__ %}'
        "{{x()._module.__builtins__['__import__']('os').popen(\"touch /tmp/retr0reg\")}}{%endif%}{% endfor %}"
    ),
    "config-globals": "{{ config.__class__.__init__.__globals__['os'].popen('id').read() }}",
    "lipsum-globals": "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "cycler-globals": "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "joiner-globals": "{{ joiner.__init__.__globals__.os.popen('id').read() }}",
    "namespace-globals": "{{ namespace.__init__.__globals__.os.popen('id').read() }}",
    "template-reference": "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.popen('id') }}",
    "attr-join": '{{ request|attr(["__","class","__"]|join) }}',
    "attr-hex-escape": "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f')|attr('\\x5f\\x5fmro\\x5f\\x5f') }}",
    "attr-set-variables": "{% set a = '__cla' %}{% set b = 'ss__' %}{{ messages|attr(a ~ b) }}",
    "attr-percent-format": "{{ messages|attr('%s%s'|format('__cla', 'ss__')) }}",
    "attr-reverse": "{{ messages|attr('__ssalc__'|reverse) }}",
    "attr-multiply": "{{ messages|attr('_' * 2 ~ 'class' ~ '_' * 2) }}",
    "item-unicode-escape": "{{ messages['\\u005f\\u005fclass\\u005f\\u005f'] }}",
    "str-format-field": "{{ '{0.__class__.__mro__}'.format(messages) }}",
    "map-attribute": "{{ messages|map(attribute='__class__')|list }}",
    "set-block": "{% set x %}__glo{% endset %}{{ lipsum|attr(x ~ 'bals__') }}",
    "method-join": "{{ messages|attr(''.join(['__', 'class', '__'])) }}",
    "item-concat": "{{ messages[('__cl' ~ 'ass__')] }}",
    "split-across-list": "{% set p = ['__gl', 'obals__'] %}{{ lipsum|attr(p[0] ~ p[1]) }}",
    "slice": "{{ messages|attr('xx__class__'[2:]) }}",
}
HIGH_TEMPLATES = {
    "dynamic-attr": "{{ messages|attr(request.args.a) }}",
    "popen-attribute": "{% for m in messages %}{{ m.popen('id') }}{% endfor %}",
    "gadget-attribute": "{{ cycler.items }}",
}
MEDIUM_TEMPLATES = {
    "syntax-error": "{% for message in messages %}{{ message['content'] }",
    "include": "{% include 'other.jinja' %}",
}


def write_gguf(path: Path, template: str | None = None, *, endianess: gguf.GGUFEndian | None = None) -> Path:
    """A small but complete GGUF written by gguf-py's GGUFWriter."""
    kwargs = {} if endianess is None else {"endianess": endianess}
    writer = gguf.GGUFWriter(str(path), "llama", **kwargs)
    writer.add_name("tiny")
    writer.add_context_length(128)
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "</s>", "hello", "wörld"])
    writer.add_array("tokenizer.ggml.scores", [0.0, 0.5, -1.0, 2.0])
    writer.add_array("test.nested", [[1, 2, 3], [4, 5]])
    if template is not None:
        writer.add_chat_template(template)
    writer.add_tensor("token_embd.weight", np.ones((4, 32), dtype=np.float32))
    writer.add_tensor("output.weight", np.zeros((2, 32), dtype=np.float16))
    writer.add_tensor("blk.0.attn_q.weight", np.arange(64, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def scan_file(path: Path) -> tuple[str, object]:
    scope, _ = make_scope()
    fmt = scan_gguf(path.read_bytes(), scope)
    return fmt, scope


def scan_bytes(data: bytes):  # type: ignore[no-untyped-def]
    scope, _ = make_scope()
    assert scan_gguf(data, scope) == "gguf"
    return scope


# --- whole files ------------------------------------------------------------------------------------


def test_benign_file_has_no_findings(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", CHATML)
    scope = scan_bytes(path.read_bytes())
    assert scope.findings == [], describe(scope)


def test_big_endian_file_is_read(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "be.gguf", CHATML, endianess=gguf.GGUFEndian.BIG)
    assert struct.unpack_from("<I", path.read_bytes(), 4)[0] != 3  # really big-endian
    scope = scan_bytes(path.read_bytes())
    assert scope.findings == [], describe(scope)


def test_big_endian_file_with_malicious_template(tmp_path: Path) -> None:
    path = write_gguf(
        tmp_path / "be.gguf", CRITICAL_TEMPLATES["cve-2024-34359"], endianess=gguf.GGUFEndian.BIG
    )
    scope = scan_bytes(path.read_bytes())
    assert [f.severity for f in by_rule(scope, TEMPLATE)] == [Severity.CRITICAL]


def test_mmap_input_is_not_copied_or_leaked(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", CRITICAL_TEMPLATES["lipsum-globals"])
    fmt, scope = run_on_mmap(path, scan_gguf)
    assert fmt == "gguf"
    assert by_rule(scope, TEMPLATE)


def test_template_finding_names_key_and_offset(tmp_path: Path) -> None:
    template = CRITICAL_TEMPLATES["cve-2024-34359"]
    path = write_gguf(tmp_path / "m.gguf", template)
    data = path.read_bytes()
    scope = scan_bytes(data)
    (finding,) = by_rule(scope, TEMPLATE)
    assert finding.evidence["key"] == "tokenizer.chat_template"
    offset = finding.location.offset
    assert offset is not None
    assert data[offset : offset + len(template)] == template.encode()
    assert any("__subclasses__" in r for r in finding.evidence["reasons"])


def test_named_template_variant_is_audited() -> None:
    data = build_gguf(
        [gguf_kv_string("tokenizer.chat_template.tool_use", CRITICAL_TEMPLATES["cycler-globals"])]
    )
    scope = scan_bytes(data)
    (finding,) = by_rule(scope, TEMPLATE)
    assert finding.evidence["key"] == "tokenizer.chat_template.tool_use"


def test_other_string_keys_are_not_treated_as_templates() -> None:
    data = build_gguf([gguf_kv_string("general.description", CRITICAL_TEMPLATES["cycler-globals"])])
    assert scan_bytes(data).findings == []


def test_version_1_layout_is_read() -> None:
    kv = gguf_kv_string("tokenizer.chat_template", CRITICAL_TEMPLATES["lipsum-globals"], wide=False)
    data = build_gguf([kv], [GgufTensor("w", [8])], version=1)
    scope = scan_bytes(data)
    assert by_rule(scope, MALFORMED) == [], describe(scope)
    assert by_rule(scope, TEMPLATE)


# --- the template audit -------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(BENIGN))
def test_benign_templates_raise_nothing(name: str) -> None:
    audit = audit_template(BENIGN[name])
    assert audit.parse_error is None
    assert audit.severity == Severity.NONE, audit.evidence()


@pytest.mark.parametrize("name", sorted(CRITICAL_TEMPLATES))
def test_injection_templates_are_critical(name: str) -> None:
    audit = audit_template(CRITICAL_TEMPLATES[name])
    assert audit.parse_error is None
    assert audit.severity == Severity.CRITICAL, audit.evidence()


@pytest.mark.parametrize("name", sorted(HIGH_TEMPLATES))
def test_suspicious_templates_are_high(name: str) -> None:
    assert audit_template(HIGH_TEMPLATES[name]).severity == Severity.HIGH


@pytest.mark.parametrize("name", sorted(MEDIUM_TEMPLATES))
def test_unparsable_or_including_templates_are_medium(name: str) -> None:
    assert audit_template(MEDIUM_TEMPLATES[name]).severity == Severity.MEDIUM


def test_template_string_that_only_mentions_internals_is_not_high() -> None:
    audit = audit_template("{{ 'Python classes define __init__ methods.' }}{{ messages[0]['content'] }}")
    assert audit.severity == Severity.MEDIUM


def test_long_expression_chains_stay_fast() -> None:
    chain = " ~ ".join(f"'p{i}'" for i in range(3000))
    balanced = "(" * 40 + "'a'" + " ~ 'b')" * 40
    started = time.perf_counter()
    audit = audit_template(f"{{{{ {chain} }}}}{{{{ messages|attr({balanced}) }}}}")
    assert time.perf_counter() - started < 5
    assert audit.severity == Severity.NONE, audit.evidence()


def test_parse_error_is_reported_with_its_line(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf", "line one\n{% if %}")
    _, scope = scan_file(path)
    (finding,) = by_rule(scope, TEMPLATE)  # type: ignore[arg-type]
    assert finding.severity == Severity.MEDIUM
    assert finding.evidence["parse_error"].startswith("line 2")


def test_template_is_never_rendered(tmp_path: Path, canary: Path) -> None:
    payload = f"{{{{ cycler.__init__.__globals__.os.popen('touch {canary}/rendered').read() }}}}"
    path = write_gguf(tmp_path / "m.gguf", payload)
    _, scope = scan_file(path)
    assert by_rule(scope, TEMPLATE)  # type: ignore[arg-type]
    # the canary fixture fails the test if the file appeared


# --- hand-corrupted headers -----------------------------------------------------------------------


def problems(scope) -> list[str]:  # type: ignore[no-untyped-def]
    return [f.evidence["problem"] for f in by_rule(scope, MALFORMED)]


def only_problem(data: bytes, fragment: str, severity: Severity = Severity.HIGH) -> None:
    scope = scan_bytes(data)
    found = by_rule(scope, MALFORMED)
    assert any(fragment in f.evidence["problem"] and f.severity == severity for f in found), describe(scope)


def test_bad_magic() -> None:
    only_problem(b"GGML" + bytes(20), "magic")


@pytest.mark.parametrize("version", [0, 4, 0x1234])
def test_unknown_version(version: int) -> None:
    only_problem(b"GGUF" + struct.pack("<I", version) + bytes(16), "unsupported version")


def test_absurd_kv_count() -> None:
    only_problem(build_gguf(kv_count=1 << 60), "more than 1000000")


def test_kv_count_larger_than_the_file() -> None:
    only_problem(build_gguf(kv_count=1000), "metadata count 1000 cannot fit")


def test_absurd_tensor_count() -> None:
    only_problem(build_gguf(tensor_count=1 << 40), "more than 1000000")


def test_tensor_count_larger_than_the_file() -> None:
    only_problem(build_gguf(tensor_count=1000), "tensor count 1000 cannot fit")


def test_string_length_past_end_of_file() -> None:
    kv = gguf_string("general.name") + struct.pack("<IQ", 8, 1 << 40) + b"abc"
    only_problem(build_gguf([kv]), "'general.name' needs")


def test_unknown_value_type() -> None:
    kv = gguf_string("general.name") + struct.pack("<I", 13) + b"\0" * 8
    only_problem(build_gguf([kv]), "unknown value type 13")


def test_unknown_array_element_type() -> None:
    kv = gguf_string("a") + struct.pack("<IIQ", 9, 77, 1) + b"\0" * 8
    only_problem(build_gguf([kv]), "unknown element type 77")


def test_array_count_past_end_of_file() -> None:
    kv = gguf_string("a") + struct.pack("<IIQ", 9, 8, 1 << 50)
    only_problem(build_gguf([kv]), "declares")


def test_scalar_array_past_end_of_file() -> None:
    kv = gguf_string("a") + struct.pack("<IIQ", 9, 6, 1 << 30)
    only_problem(build_gguf([kv]), "elements of 'a' needs")


def test_arrays_nested_too_deep() -> None:
    kv = gguf_string("a") + struct.pack("<I", 9) + struct.pack("<IQ", 9, 1) * 12 + struct.pack("<IQ", 4, 0)
    only_problem(build_gguf([kv]), "nests arrays deeper")


def test_duplicate_key_is_medium() -> None:
    only_problem(
        build_gguf([gguf_kv_u32("x", 1), gguf_kv_u32("x", 2)]), "duplicate metadata key", Severity.MEDIUM
    )


def test_template_with_wrong_type() -> None:
    only_problem(build_gguf([gguf_kv_u32("tokenizer.chat_template", 5)]), "value type 4")


def test_unknown_tensor_type() -> None:
    only_problem(build_gguf(tensors=[GgufTensor("w", [4], ggml_type=99)]), "unknown GGML type 99")


def test_too_many_dimensions() -> None:
    only_problem(build_gguf(tensors=[GgufTensor("w", [1, 1, 1, 1, 1])]), "5 dimensions")


def test_row_not_multiple_of_block() -> None:
    only_problem(build_gguf(tensors=[GgufTensor("w", [33], ggml_type=2)]), "block of 32")


def test_misaligned_tensor_offset() -> None:
    only_problem(
        build_gguf(tensors=[GgufTensor("a", [8]), GgufTensor("b", [8], offset=40)]), "not a multiple of 32"
    )


def test_tensor_data_past_end_of_file() -> None:
    only_problem(build_gguf(tensors=[GgufTensor("w", [1024])], data=b"\0" * 64), "runs past the end")


def test_overlapping_tensors() -> None:
    only_problem(
        build_gguf(tensors=[GgufTensor("a", [64]), GgufTensor("b", [8], offset=32)]), "overlaps tensor 'a'"
    )


def test_duplicate_tensor_name() -> None:
    only_problem(
        build_gguf(tensors=[GgufTensor("a", [8]), GgufTensor("a", [8], offset=32)]), "duplicate tensor"
    )


def test_alignment_not_power_of_two() -> None:
    only_problem(build_gguf([gguf_kv_u32("general.alignment", 24)], [GgufTensor("w", [8])]), "power of two")


def test_custom_alignment_is_honoured() -> None:
    data = build_gguf([gguf_kv_u32("general.alignment", 64)], [GgufTensor("w", [8])], alignment=64)
    assert scan_bytes(data).findings == []


def test_dimension_overflow() -> None:
    only_problem(build_gguf(tensors=[GgufTensor("w", [1 << 62, 8])], data=b""), "overflow int64")


def test_truncated_writer_output(tmp_path: Path) -> None:
    data = write_gguf(tmp_path / "m.gguf").read_bytes()
    only_problem(data[: len(data) - 100], "runs past the end")


def test_every_truncation_is_reported_not_raised(tmp_path: Path) -> None:
    data = write_gguf(tmp_path / "m.gguf", CHATML).read_bytes()
    for cut in range(0, len(data), 7):
        scope = scan_bytes(data[:cut])
        if cut < len(data) - 1:
            assert by_rule(scope, MALFORMED), f"truncation at {cut} went unnoticed"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_random_corruption_never_raises(tmp_path: Path, data: st.DataObject) -> None:
    path = tmp_path / "fuzz.gguf"
    if not path.exists():
        write_gguf(path, CHATML)
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        raw[data.draw(st.integers(0, min(len(raw) - 1, 600)))] = data.draw(st.integers(0, 255))
    scan_bytes(bytes(raw))


# --- oracle: the type table against gguf-py -------------------------------------------------------


def test_ggml_type_table_matches_gguf_py() -> None:
    for qtype, (block, size) in gguf.GGML_QUANT_SIZES.items():
        assert int(qtype) in GGML_TYPES, qtype.name
        name, ours_block, ours_size = GGML_TYPES[int(qtype)]
        assert (name, ours_block, ours_size) == (qtype.name, block, size)


def test_tensor_sizes_match_gguf_reader(tmp_path: Path) -> None:
    path = write_gguf(tmp_path / "m.gguf")
    reader = gguf.GGUFReader(str(path))
    for tensor in reader.tensors:
        _, block, size = GGML_TYPES[int(tensor.tensor_type)]
        assert tensor.n_bytes == int(np.prod(tensor.shape)) // block * size
    assert worst(scan_bytes(path.read_bytes())) == Severity.NONE
