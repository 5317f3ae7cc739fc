"""The malicious corpus: every payload is live under the real loader, and building runs nothing."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlarmor.testing.corpus import SAMPLES, Sample, family_counts, get_sample, write_malicious

# Each loader is what a victim runs. They are executed in a child interpreter because the payloads
# really run (harmlessly: each creates its canary file and nothing else).
_ARCHIVE_LOADER = """
import io, pickle, sys, tarfile, zipfile

def is_tar(data):
    try:
        with tarfile.open(fileobj=io.BytesIO(data)):
            return True
    except tarfile.TarError:
        return False

def walk(name, data, depth=0):
    if depth > 32:
        return
    if data[:4] == b"PK\\x03\\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                walk(info.filename, zf.read(info), depth + 1)
    elif data[:6] == b"7z\\xbc\\xaf\\x27\\x1c":
        import pathlib, py7zr, tempfile
        with tempfile.TemporaryDirectory() as tmp, py7zr.SevenZipFile(io.BytesIO(data)) as archive:
            archive.extractall(path=tmp)
            for member in sorted(pathlib.Path(tmp).rglob("*")):
                if member.is_file():
                    walk(str(member), member.read_bytes(), depth + 1)
    elif is_tar(data):  # every variant: ustar, GNU, PAX, and V7 without a magic
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for info in tf.getmembers():
                if info.isfile():
                    walk(info.name, tf.extractfile(info).read(), depth + 1)
    else:
        try:
            pickle.loads(data)
        except Exception as exc:
            print(name, type(exc).__name__, exc, file=sys.stderr)

walk(sys.argv[1], open(sys.argv[1], "rb").read())
"""

_JINJA_LOADER = """
import sys, gguf, jinja2
reader = gguf.GGUFReader(sys.argv[1])
field = reader.fields["tokenizer.chat_template"]
template = bytes(field.parts[field.data[0]]).decode()
jinja2.Environment().from_string(template).render(
    messages=[{"role": "user", "content": "hello"}], add_generation_prompt=True
)
"""

LOADERS: dict[str, str] = {
    "pickle": "import pickle, sys; pickle.load(open(sys.argv[1], 'rb'))",
    "pickle-stream": (
        "import pickle, sys\nf = open(sys.argv[1], 'rb')\n"
        "while True:\n    try:\n        pickle.load(f)\n    except EOFError:\n        break"
    ),
    "pandas": "import sys, pandas; pandas.read_pickle(sys.argv[1])",
    "torch": "import sys, torch; torch.load(sys.argv[1], weights_only=False)",
    "joblib": "import sys, joblib; joblib.load(sys.argv[1])",
    "numpy": "import sys, numpy; numpy.load(sys.argv[1], allow_pickle=True)",
    "numpy-npz": (
        "import sys, numpy\nz = numpy.load(sys.argv[1], allow_pickle=True)\nfor k in z.files:\n    z[k]"
    ),
    "archive-pickle": _ARCHIVE_LOADER,
    "tar-extract": "import sys, tarfile; tarfile.open(sys.argv[1]).extractall('extracted')",
    "keras": (
        "import os, sys\nos.environ['KERAS_BACKEND'] = 'torch'\nimport keras\n"
        "keras.saving.load_model(sys.argv[1], safe_mode=False)"
    ),
    "jinja": _JINJA_LOADER,
}


def _missing(s: Sample) -> str | None:
    for module in s.requires:
        try:
            if importlib.util.find_spec(module) is None:
                return module
        except (ImportError, ValueError):
            return module
    return None


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_payload_is_live_under_real_loader(name: str, tmp_path: Path) -> None:
    s = get_sample(name)
    if s.loader == "none":
        assert len(s.description) > 80, "a static-only sample must say why no loader runs it"
        pytest.skip(f"no installed loader runs {name}: {s.description}")
    if s.platform is not None and not sys.platform.startswith(s.platform):
        pytest.skip(f"{name} only runs on {s.platform}")
    if (module := _missing(s)) is not None:
        pytest.skip(f"{name} needs {module}")
    canary = tmp_path / "canary"
    canary.mkdir()
    (path,) = write_malicious(tmp_path / "files", canary, [name])
    assert list(canary.iterdir()) == []
    env = {**os.environ, "KERAS_BACKEND": "torch", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(
        [sys.executable, "-c", LOADERS[s.loader], str(path)],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=300,
        check=False,
    )
    target = canary / name
    deadline = time.monotonic() + 10  # Popen-style payloads finish after the loader returns.
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert target.exists(), f"{name} did not fire under {s.loader}:\n{proc.stderr.decode()[-3000:]}"
    assert [p.name for p in canary.iterdir()] == [name]  # the payload touched its canary and nothing else


def test_building_the_corpus_never_creates_a_canary(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    canary.mkdir()
    written = write_malicious(tmp_path / "files", canary)
    assert len(written) == len(SAMPLES)
    assert all(p.stat().st_size > 0 for p in written)
    assert list(canary.iterdir()) == []


def test_registry_shape() -> None:
    assert len(SAMPLES) >= 60
    names = [p.name for p in SAMPLES.values()]
    assert len(set(names)) == len(names)
    for s in SAMPLES.values():
        assert s.technique.count(":") >= 1, s.name
        assert s.family, s.name
        assert "." in s.filename, s.name
        assert s.description, s.name
        assert s.advisory is None or s.advisory.startswith(("GHSA-", "CVE-")), s.name
    families = family_counts()
    for family in (
        "protocol",
        "opcode",
        "memo",
        "operand",
        "dotted",
        "python2-name",
        "indirect",
        "module-write",
        "second-stage",
        "stream",
        "pytorch",
        "zip-trick",
        "joblib",
        "numpy",
        "keras",
        "onnx",
        "gguf",
        "archive",
        "gadget",
    ):
        assert families.get(family, 0) >= 1, family


def test_every_pickle_protocol_is_covered() -> None:
    protos = {s.technique for s in SAMPLES.values() if s.family == "protocol"}
    assert {f"protocol:{n}" for n in (0, 1, 3, 4, 5)} <= protos
    assert "python2-name:__builtin__" in {s.technique for s in SAMPLES.values()}  # the protocol-2 one


def test_unknown_sample_lists_known_names() -> None:
    with pytest.raises(KeyError, match="proto0_os_system"):
        get_sample("no-such-sample")


def test_write_malicious_can_skip_samples_whose_writer_library_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gguf", None)  # makes `import gguf` raise ModuleNotFoundError
    canary = tmp_path / "canary"
    canary.mkdir()
    names = [n for n in SAMPLES if SAMPLES[n].family in {"gguf", "protocol"}]
    skipped: dict[str, str] = {}
    written = write_malicious(tmp_path / "out", canary, names, skipped=skipped)
    assert skipped
    assert set(skipped.values()) == {"gguf"}
    assert len(written) + len(skipped) == len(names)
    with pytest.raises(ModuleNotFoundError):
        write_malicious(tmp_path / "out2", canary, names)
