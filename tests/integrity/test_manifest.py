from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlarmor.errors import InputError, IntegrityError, InvalidParameterError
from mlarmor.integrity import PREDICATE_TYPE, STATEMENT_TYPE, FileEntry, Manifest, build_manifest, hash_file
from mlarmor.integrity import _files as files_mod


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "model",
        {
            "weights.bin": os.urandom(4096),
            "config.json": b'{"layers": 2}',
            "sub/a-b.txt": b"dash",
            "sub/a/b.txt": b"nested",
            ".hidden": b"dotfile",
            "empty": b"",
        },
    )


# --- hashing -----------------------------------------------------------------------------------


def test_hash_file_matches_hashlib_on_multi_megabyte_file(tmp_path: Path) -> None:
    data = os.urandom(5 * 1024 * 1024 + 123)
    p = tmp_path / "big.bin"
    p.write_bytes(data)
    assert hash_file(p, chunk_size=64 * 1024) == (hashlib.sha256(data).hexdigest(), len(data))


def test_hash_file_streams_fixed_size_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    size, chunk = 3 * 1024 * 1024 + 7, 256 * 1024
    p = tmp_path / "big.bin"
    p.write_bytes(os.urandom(size))
    updates: list[int] = []
    real_sha256 = hashlib.sha256

    class Recorder:
        def __init__(self) -> None:
            self._h = real_sha256()

        def update(self, data: Any) -> None:
            updates.append(len(data))
            self._h.update(data)

        def hexdigest(self) -> str:
            return self._h.hexdigest()

    monkeypatch.setattr(files_mod, "hashlib", SimpleNamespace(sha256=Recorder))
    digest, n = hash_file(p, chunk_size=chunk)
    assert n == size
    assert digest == real_sha256(p.read_bytes()).hexdigest()
    assert max(updates) <= chunk
    assert len(updates) == math.ceil(size / chunk)


def test_hash_file_of_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty"
    p.write_bytes(b"")
    assert hash_file(p) == (hashlib.sha256(b"").hexdigest(), 0)


def test_hash_file_refuses_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "real"
    target.write_bytes(b"x")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(InputError, match="cannot read"):
        hash_file(link)


def test_hash_file_rejects_bad_chunk_size(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="chunk_size"):
        hash_file(tmp_path, chunk_size=0)


# --- building manifests --------------------------------------------------------------------------


def test_directory_manifest_lists_every_file_sorted_with_posix_names(model_dir: Path) -> None:
    m = build_manifest(model_dir)
    names = [e.name for e in m.entries]
    assert names == sorted(names)
    assert set(names) == {"weights.bin", "config.json", "sub/a-b.txt", "sub/a/b.txt", ".hidden", "empty"}
    assert m.kind == "directory"
    assert m.model_name == "model"
    for e in m.entries:
        data = (model_dir / e.name).read_bytes()
        assert e.sha256 == hashlib.sha256(data).hexdigest()
        assert e.size == len(data)
    assert m.total_size == sum(len((model_dir / n).read_bytes()) for n in names)


def test_single_file_manifest(tmp_path: Path) -> None:
    p = tmp_path / "model.pt"
    p.write_bytes(b"weights")
    m = build_manifest(p)
    assert m.kind == "file"
    assert m.entries == (FileEntry("model.pt", hashlib.sha256(b"weights").hexdigest(), 7),)


def test_exclude_leaves_out_only_paths_inside_the_target(model_dir: Path, tmp_path: Path) -> None:
    (model_dir / "model.sig").write_text("{}")
    m = build_manifest(model_dir, exclude=[model_dir / "model.sig", tmp_path / "elsewhere.sig"])
    assert "model.sig" not in {e.name for e in m.entries}
    assert m.ignore_paths == ("model.sig",)
    assert len(build_manifest(model_dir).entries) == len(m.entries) + 1


def test_empty_directory_has_empty_manifest(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    m = build_manifest(tmp_path / "m")
    assert m.entries == ()
    assert m.root_digest == hashlib.sha256(b"").hexdigest()


def test_symlink_inside_directory_is_refused_not_followed(model_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_bytes(b"outside the model")
    (model_dir / "sub" / "link").symlink_to(outside)
    with pytest.raises(InputError, match=r"sub/link \(symlink"):
        build_manifest(model_dir)


def test_fifo_inside_directory_is_refused(model_dir: Path) -> None:
    os.mkfifo(model_dir / "pipe")
    with pytest.raises(InputError, match=r"pipe \(special: fifo"):
        build_manifest(model_dir)


def test_symlinked_directory_given_by_user_is_followed(model_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "link-to-model"
    link.symlink_to(model_dir)
    assert build_manifest(link).entries == build_manifest(model_dir).entries


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        build_manifest(tmp_path / "nope")


def test_unreadable_file_is_an_input_error(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_open = os.open
    locked = str(model_dir / "weights.bin")

    def deny(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if str(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(files_mod.os, "open", deny)
    with pytest.raises(InputError, match=r"cannot read .*weights.bin: Permission denied"):
        build_manifest(model_dir, workers=1)


# --- parallel hashing ----------------------------------------------------------------------------


def test_many_files_hash_in_parallel_with_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path / "many", {f"d{i % 7}/f{i:03d}": os.urandom(i * 13) for i in range(200)})
    sequential = build_manifest(root, workers=1)
    threads: set[int] = set()
    real = files_mod.hash_file

    def recording(path: Path, chunk_size: int = files_mod.CHUNK_SIZE) -> tuple[str, int]:
        threads.add(threading.get_ident())
        time.sleep(0.001)
        return real(path, chunk_size)

    monkeypatch.setattr(files_mod, "hash_file", recording)
    seen: list[tuple[int, int]] = []
    parallel = build_manifest(root, workers=2, progress=lambda d, t: seen.append((d, t)))
    assert parallel == sequential
    assert len(threads) == 2
    assert threading.get_ident() not in threads
    assert [d for d, _ in seen] == list(range(1, 201))
    assert {t for _, t in seen} == {200}


def test_workers_must_be_positive(model_dir: Path) -> None:
    with pytest.raises(InvalidParameterError, match="'workers'"):
        build_manifest(model_dir, workers=0)


def test_error_in_a_worker_propagates(model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(path: Path, chunk_size: int = 0) -> tuple[str, int]:
        raise InputError(f"cannot read {path}: simulated")

    monkeypatch.setattr(files_mod, "hash_file", boom)
    with pytest.raises(InputError, match="simulated"):
        build_manifest(model_dir, workers=3)


# --- statement round trip ------------------------------------------------------------------------


def test_statement_has_in_toto_and_oms_structure(model_dir: Path) -> None:
    m = build_manifest(model_dir)
    st_ = m.to_statement()
    assert st_["_type"] == STATEMENT_TYPE == "https://in-toto.io/Statement/v1"
    assert st_["predicateType"] == PREDICATE_TYPE
    (subject,) = st_["subject"]
    concat = b"".join(bytes.fromhex(e.sha256) for e in m.entries)
    assert subject == {"name": "model", "digest": {"sha256": hashlib.sha256(concat).hexdigest()}}
    ser = st_["predicate"]["serialization"]
    assert ser == {
        "method": "files",
        "hash_type": "sha256",
        "allow_symlinks": False,
        "ignore_paths": [],
        "target": "directory",
    }
    assert st_["predicate"]["resources"][0] == {
        "name": m.entries[0].name,
        "algorithm": "sha256",
        "digest": m.entries[0].sha256,
        "size": m.entries[0].size,
    }
    assert Manifest.from_statement(st_) == m


_names = st.lists(
    st.lists(
        st.text(alphabet="abcxyz._-é", min_size=1, max_size=6).filter(lambda s: s not in (".", "..")),
        min_size=1,
        max_size=3,
    ).map("/".join),
    unique=True,
    max_size=20,
)


@given(names=_names, sizes=st.lists(st.integers(0, 2**40), min_size=20, max_size=20))
def test_statement_round_trip_property(names: list[str], sizes: list[int]) -> None:
    entries = tuple(
        FileEntry(n, hashlib.sha256(n.encode()).hexdigest(), s)
        for n, s in zip(sorted(names), sizes, strict=False)
    )
    m = Manifest(model_name="m", kind="directory", entries=entries, ignore_paths=("model.sig",))
    assert Manifest.from_statement(m.to_statement({"created_at": "now"})) == m


def _statement(model_dir: Path) -> dict[str, Any]:
    return build_manifest(model_dir).to_statement()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda s: s.update(predicateType="https://model_signing/signature/v1.0"), "not an mlarmor manifest"),
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "not an mlarmor manifest"),
        (lambda s: s["subject"].append(dict(s["subject"][0])), "exactly one subject"),
        (lambda s: s["subject"][0]["digest"].update(sha256="0" * 64), "inconsistent"),
        (lambda s: s["predicate"]["resources"][0].update(digest="0" * 64), "inconsistent"),
        (lambda s: s["predicate"]["resources"][0].update(digest="XYZ"), "64 lower-case hex"),
        (lambda s: s["predicate"]["resources"][0].update(size=-1), "non-negative"),
        (lambda s: s["predicate"]["resources"][0].update(size=True), "non-negative"),
        (lambda s: s["predicate"]["resources"][0].update(name="../etc/passwd"), "relative"),
        (lambda s: s["predicate"]["resources"][0].update(name="/abs"), "relative"),
        (lambda s: s["predicate"]["resources"][0].update(algorithm="md5"), "expected 'sha256'"),
        (lambda s: s["predicate"]["resources"].reverse(), "sorted order"),
        (lambda s: s["predicate"]["resources"].append(s["predicate"]["resources"][-1]), "unique"),
        (lambda s: s["predicate"]["serialization"].update(method="shards"), "Unsupported serialization"),
        (lambda s: s["predicate"]["serialization"].update(target="tarball"), "target"),
        (lambda s: s["predicate"].pop("resources"), "resources"),
        (lambda s: s.update(predicate=[]), "JSON object"),
    ],
)
def test_malformed_statements_are_rejected(model_dir: Path, mutate: Any, message: str) -> None:
    statement = _statement(model_dir)
    mutate(statement)
    with pytest.raises(IntegrityError, match=message):
        Manifest.from_statement(statement)
