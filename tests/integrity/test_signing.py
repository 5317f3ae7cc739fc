from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlarmor.errors import InputError, IntegrityError, InvalidParameterError
from mlarmor.findings import Family, Severity
from mlarmor.integrity import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    SIGNATURE_MEDIA_TYPE,
    build_manifest,
    default_signature_path,
    generate_keypair,
    key_id,
    load_private_key,
    load_public_key,
    read_signature,
    sign_path,
    verify_path,
)
from mlarmor.integrity.signing import pae


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair().write(tmp_path / "keys" / "release")


@pytest.fixture
def other_keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair().write(tmp_path / "keys" / "intruder")


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "shards").mkdir(parents=True)
    (root / "config.json").write_bytes(b'{"hidden": 16}')
    (root / "shards" / "part-0.bin").write_bytes(os.urandom(2048))
    (root / "shards" / "part-1.bin").write_bytes(os.urandom(1024))
    (root / "tokenizer.txt").write_bytes(b"a b c")
    return root


@pytest.fixture
def signed_dir(model_dir: Path, keys: tuple[Path, Path]) -> Path:
    sign_path(model_dir, keys[0])
    return model_dir


def _ids(result: Any) -> list[str]:
    return [f.id for f in result.findings]


def _envelope(sig: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(sig.read_text())
    return doc


# --- keys ----------------------------------------------------------------------------------------


def test_keypair_files_and_modes(keys: tuple[Path, Path]) -> None:
    private, public = keys
    assert private.name == "release.key"
    assert public.name == "release.pub"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(public.stat().st_mode) == 0o644
    assert private.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    assert key_id(load_private_key(private).public_key()) == key_id(load_public_key(public))


def test_keypair_refuses_to_overwrite_unless_forced(keys: tuple[Path, Path], tmp_path: Path) -> None:
    before = keys[0].read_bytes()
    with pytest.raises(InputError, match="refusing to overwrite"):
        generate_keypair().write(tmp_path / "keys" / "release")
    assert keys[0].read_bytes() == before
    keys[1].unlink()
    with pytest.raises(InputError, match=r"release\.key"):
        generate_keypair().write(tmp_path / "keys" / "release")
    generate_keypair().write(tmp_path / "keys" / "release", force=True)
    assert keys[0].read_bytes() != before
    assert stat.S_IMODE(keys[0].stat().st_mode) == 0o600


def test_encrypted_private_key(tmp_path: Path) -> None:
    private, _ = generate_keypair(b"s3cret").write(tmp_path / "enc")
    assert b"ENCRYPTED PRIVATE KEY" in private.read_bytes()
    assert isinstance(load_private_key(private, b"s3cret"), Ed25519PrivateKey)
    with pytest.raises(IntegrityError, match="encrypted"):
        load_private_key(private)
    with pytest.raises(IntegrityError, match="passphrase"):
        load_private_key(private, b"wrong")


def test_empty_passphrase_is_rejected() -> None:
    with pytest.raises(InvalidParameterError, match="passphrase"):
        generate_keypair(b"")


def test_wrong_key_types_are_refused_clearly(keys: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = keys
    with pytest.raises(IntegrityError, match="holds a public key"):
        load_private_key(public)
    with pytest.raises(IntegrityError, match="holds a private key"):
        load_public_key(private)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    ec_priv = tmp_path / "ec.key"
    ec_priv.write_bytes(
        ec_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ec_pub = tmp_path / "ec.pub"
    ec_pub.write_bytes(
        ec_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    with pytest.raises(IntegrityError, match="not an Ed25519 private key"):
        load_private_key(ec_priv)
    with pytest.raises(IntegrityError, match="not an Ed25519 public key"):
        load_public_key(ec_pub)
    garbage = tmp_path / "garbage.pub"
    garbage.write_bytes(b"not a key at all")
    with pytest.raises(IntegrityError, match="cannot load"):
        load_public_key(garbage)
    with pytest.raises(IntegrityError, match="cannot load"):
        load_private_key(garbage)


def test_missing_key_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_public_key(tmp_path / "none.pub")
    with pytest.raises(InputError, match="does not exist"):
        load_private_key(tmp_path / "none.key")
    with pytest.raises(InputError, match="is a directory"):
        load_public_key(tmp_path)


# --- DSSE ----------------------------------------------------------------------------------------


def test_pae_matches_the_dsse_spec_test_vector() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("t", b"") == b"DSSEv1 1 t 0 "


def test_signature_file_is_a_dsse_envelope_over_an_in_toto_statement(
    signed_dir: Path, keys: tuple[Path, Path]
) -> None:
    sig = signed_dir / "model.sig"
    doc = _envelope(sig)
    assert doc["mediaType"] == SIGNATURE_MEDIA_TYPE
    env = doc["dsseEnvelope"]
    assert env["payloadType"] == PAYLOAD_TYPE == "application/vnd.in-toto+json"
    payload = base64.b64decode(env["payload"])
    public = load_public_key(keys[1])
    (signature,) = env["signatures"]
    assert signature["keyid"] == key_id(public) == doc["verificationMaterial"]["publicKey"]["hint"]
    # independent check with cryptography: the signature is over PAE(payloadType, payload)
    message = b"DSSEv1 %d %b %d %b" % (len(PAYLOAD_TYPE), PAYLOAD_TYPE.encode(), len(payload), payload)
    public.verify(base64.b64decode(signature["sig"]), message)
    statement = json.loads(payload)
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == PREDICATE_TYPE
    names = [r["name"] for r in statement["predicate"]["resources"]]
    assert names == ["config.json", "shards/part-0.bin", "shards/part-1.bin", "tokenizer.txt"]
    assert "model.sig" not in names
    assert statement["predicate"]["serialization"]["ignore_paths"] == ["model.sig"]
    data = (signed_dir / "shards" / "part-1.bin").read_bytes()
    assert statement["predicate"]["resources"][2] == {
        "name": "shards/part-1.bin",
        "algorithm": "sha256",
        "digest": hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }
    assert statement["subject"][0]["name"] == "model"


def test_default_signature_paths(tmp_path: Path, model_dir: Path) -> None:
    f = tmp_path / "model.pt"
    f.write_bytes(b"x")
    assert default_signature_path(f) == tmp_path / "model.pt.sig"
    assert default_signature_path(model_dir) == model_dir / "model.sig"


# --- sign and verify -----------------------------------------------------------------------------


def test_untouched_directory_verifies(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    result = verify_path(signed_dir, keys[1])
    assert result.ok
    assert result.signature_valid
    assert result.key_matches
    assert result.findings == ()
    assert result.files_checked == 4
    assert result.manifest is not None
    assert len(result.manifest.entries) == 4
    assert result.signed_at is not None


def test_signing_leaves_no_temporary_files(signed_dir: Path) -> None:
    assert sorted(p.name for p in signed_dir.iterdir()) == [
        "config.json",
        "model.sig",
        "shards",
        "tokenizer.txt",
    ]


def test_resigning_overwrites_and_still_excludes_the_signature(
    signed_dir: Path, keys: tuple[Path, Path]
) -> None:
    first = (signed_dir / "model.sig").read_bytes()
    (signed_dir / "tokenizer.txt").write_bytes(b"new vocab")
    result = sign_path(signed_dir, keys[0])
    assert (signed_dir / "model.sig").read_bytes() != first
    assert result.files == 4
    assert verify_path(signed_dir, keys[1]).ok


def test_content_change_same_size(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    p = signed_dir / "shards" / "part-0.bin"
    data = bytearray(p.read_bytes())
    data[100] ^= 0xFF
    p.write_bytes(bytes(data))
    result = verify_path(signed_dir, keys[1])
    assert not result.ok
    (finding,) = result.findings
    assert finding.id == "integrity.file-changed"
    assert finding.severity is Severity.CRITICAL
    assert finding.family is Family.INTEGRITY
    assert finding.location.member == "shards/part-0.bin"
    assert finding.location.path == str(signed_dir.resolve())
    assert finding.evidence["expected_size"] == finding.evidence["actual_size"] == 2048
    assert finding.evidence["expected_sha256"] != finding.evidence["actual_sha256"]
    assert finding.evidence["actual_sha256"] == hashlib.sha256(bytes(data)).hexdigest()


def test_size_change(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    with (signed_dir / "config.json").open("ab") as f:
        f.write(b" ")
    (d,) = verify_path(signed_dir, keys[1]).differences
    assert d.change == "changed"
    assert d.expected is not None
    assert d.actual is not None
    assert (d.expected.size, d.actual.size) == (14, 15)


def test_added_file(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    (signed_dir / "shards" / "evil.pkl").write_bytes(b"cos\nsystem\n")
    result = verify_path(signed_dir, keys[1])
    assert _ids(result) == ["integrity.file-added"]
    assert result.findings[0].location.member == "shards/evil.pkl"
    assert result.findings[0].severity is Severity.HIGH


def test_added_hidden_file_is_not_ignored(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    (signed_dir / ".pth_hook").write_bytes(b"import os")
    assert _ids(verify_path(signed_dir, keys[1])) == ["integrity.file-added"]


def test_removed_file(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    (signed_dir / "tokenizer.txt").unlink()
    result = verify_path(signed_dir, keys[1])
    assert _ids(result) == ["integrity.file-removed"]
    assert result.findings[0].location.member == "tokenizer.txt"


def test_renamed_file(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    (signed_dir / "shards" / "part-1.bin").rename(signed_dir / "shards" / "part-9.bin")
    result = verify_path(signed_dir, keys[1])
    assert _ids(result) == ["integrity.file-renamed"]
    (d,) = result.differences
    assert d.expected is not None
    assert d.expected.name == "shards/part-1.bin"
    assert d.name == "shards/part-9.bin"


def test_renamed_and_changed_is_removed_plus_added(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    (signed_dir / "tokenizer.txt").rename(signed_dir / "vocab.txt")
    (signed_dir / "vocab.txt").write_bytes(b"other")
    assert sorted(_ids(verify_path(signed_dir, keys[1]))) == [
        "integrity.file-added",
        "integrity.file-removed",
    ]


def test_symlink_added_after_signing_is_reported_not_followed(
    signed_dir: Path, keys: tuple[Path, Path]
) -> None:
    (signed_dir / "link").symlink_to("/nonexistent/target")
    (signed_dir / "tokenizer.txt").unlink()
    (signed_dir / "tokenizer.txt").symlink_to(signed_dir / "config.json")
    result = verify_path(signed_dir, keys[1])
    by_name = {d.name: d for d in result.differences}
    assert by_name["link"].change == "added"
    assert by_name["link"].actual_type == "symlink"
    assert by_name["tokenizer.txt"].change == "changed"
    assert by_name["tokenizer.txt"].actual_type == "symlink"
    titles = {f.location.member: f.title for f in result.findings}
    assert titles["link"].startswith("Symlink added")
    assert titles["tokenizer.txt"].startswith("Signed file replaced by a symlink")


def test_sign_refuses_directory_with_symlink(model_dir: Path, keys: tuple[Path, Path]) -> None:
    (model_dir / "link").symlink_to(model_dir / "config.json")
    with pytest.raises(InputError, match="symlink"):
        sign_path(model_dir, keys[0])
    assert not (model_dir / "model.sig").exists()


def test_edited_manifest_is_a_bad_signature(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    sig = signed_dir / "model.sig"
    doc = _envelope(sig)
    statement = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    (signed_dir / "config.json").write_bytes(b'{"hidden": 99}')
    # the attacker updates the manifest to match the tampered file (keeping it self-consistent)
    manifest = build_manifest(signed_dir, exclude=[sig])
    statement["predicate"]["resources"] = manifest.to_statement()["predicate"]["resources"]
    statement["subject"] = manifest.to_statement()["subject"]
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(doc))
    result = verify_path(signed_dir, keys[1])
    assert not result.ok
    assert not result.signature_valid
    assert result.manifest is None
    assert _ids(result) == ["integrity.bad-signature"]
    assert result.findings[0].severity is Severity.CRITICAL
    assert result.findings[0].location.path == str(sig)


def test_flipped_signature_bytes_is_a_bad_signature(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    sig = signed_dir / "model.sig"
    doc = _envelope(sig)
    raw = bytearray(base64.b64decode(doc["dsseEnvelope"]["signatures"][0]["sig"]))
    raw[0] ^= 1
    doc["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()
    sig.write_text(json.dumps(doc))
    assert _ids(verify_path(signed_dir, keys[1])) == ["integrity.bad-signature"]


def test_changed_payload_type_is_a_bad_signature(signed_dir: Path, keys: tuple[Path, Path]) -> None:
    sig = signed_dir / "model.sig"
    doc = _envelope(sig)
    doc["dsseEnvelope"]["payloadType"] = "application/json"
    sig.write_text(json.dumps(doc))
    assert _ids(verify_path(signed_dir, keys[1])) == ["integrity.bad-signature"]


def test_signature_from_another_key(
    model_dir: Path, keys: tuple[Path, Path], other_keys: tuple[Path, Path]
) -> None:
    sign_path(model_dir, other_keys[0])
    result = verify_path(model_dir, keys[1])
    assert not result.ok
    assert not result.key_matches
    assert _ids(result) == ["integrity.wrong-key"]
    assert result.findings[0].evidence["signature_key_ids"] == [key_id(load_public_key(other_keys[1]))]
    assert verify_path(model_dir, other_keys[1]).ok


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(None, "not JSON", id="truncated"),
        pytest.param(b"", "not JSON", id="empty"),
        pytest.param(b"\x00\xffgarbage\x13", "not JSON", id="garbage"),
        pytest.param(b"[]", "not an mlarmor signature", id="json-array"),
        pytest.param(
            b'{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json"}',
            "not an mlarmor signature",
            id="bundle",
        ),
        pytest.param(
            b'{"mediaType": "application/vnd.mlarmor.signature.v1+json"}', "dsseEnvelope", id="no-envelope"
        ),
    ],
)
def test_corrupt_signature_files_are_integrity_errors(
    signed_dir: Path, keys: tuple[Path, Path], content: bytes | None, message: str
) -> None:
    sig = signed_dir / "model.sig"
    if content is None:
        sig.write_bytes(sig.read_bytes()[: len(sig.read_bytes()) // 2])
    else:
        sig.write_bytes(content)
    with pytest.raises(IntegrityError, match=message):
        verify_path(signed_dir, keys[1])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda e: e.update(payload="%%%not base64"), "not valid base64"),
        (lambda e: e.update(signatures=[]), "no signatures"),
        (lambda e: e["signatures"][0].update(sig=17), "base64 string"),
        (lambda e: e.pop("payloadType"), "payloadType"),
    ],
)
def test_malformed_envelopes_are_integrity_errors(
    signed_dir: Path, keys: tuple[Path, Path], edit: Any, message: str
) -> None:
    sig = signed_dir / "model.sig"
    doc = _envelope(sig)
    edit(doc["dsseEnvelope"])
    sig.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match=message):
        read_signature(sig)


def test_missing_signature_is_an_input_error(model_dir: Path, keys: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match=r"model\.sig does not exist"):
        verify_path(model_dir, keys[1])


def test_missing_model_is_an_input_error(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="does not exist"):
        sign_path(tmp_path / "nope", keys[0])
    with pytest.raises(InputError, match="does not exist"):
        verify_path(tmp_path / "nope", keys[1])


# --- single files and custom signature paths -----------------------------------------------------


def test_single_file_round_trip_and_tamper(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    model = tmp_path / "model.pt"
    model.write_bytes(os.urandom(10_000))
    result = sign_path(model, keys[0])
    assert result.signature_path == tmp_path / "model.pt.sig"
    assert verify_path(model, keys[1]).ok
    # a copy under another name verifies against the same signature: single files are compared by content
    copy = tmp_path / "downloaded.bin"
    copy.write_bytes(model.read_bytes())
    assert verify_path(copy, keys[1], signature=result.signature_path).ok
    with model.open("ab") as f:
        f.write(b"\x00")
    findings = verify_path(model, keys[1]).findings
    assert [f.id for f in findings] == ["integrity.file-changed"]
    assert findings[0].location.path == str(model.resolve())
    assert findings[0].location.member is None


def test_custom_signature_inside_directory_is_excluded(model_dir: Path, keys: tuple[Path, Path]) -> None:
    sig = model_dir / "meta" / "release.sig"
    result = sign_path(model_dir, keys[0], signature=sig)
    assert sig.is_file()
    assert result.manifest.ignore_paths == ("meta/release.sig",)
    assert verify_path(model_dir, keys[1], signature=sig).ok
    # signed again to the default location, the custom signature is just another file, not ignored
    second = sign_path(model_dir, keys[0])
    assert "meta/release.sig" in {e.name for e in second.manifest.entries}
    assert second.manifest.ignore_paths == ("model.sig",)


def test_signature_outside_directory(model_dir: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    sig = tmp_path / "sigs" / "model.sig"
    result = sign_path(model_dir, keys[0], signature=sig)
    assert result.manifest.ignore_paths == ()
    assert not (model_dir / "model.sig").exists()
    assert verify_path(model_dir, keys[1], signature=sig).ok


def test_directory_signature_against_a_file_is_refused(
    signed_dir: Path, keys: tuple[Path, Path], tmp_path: Path
) -> None:
    other = tmp_path / "single.bin"
    other.write_bytes(b"x")
    with pytest.raises(IntegrityError, match="signs a directory"):
        verify_path(other, keys[1], signature=signed_dir / "model.sig")


def test_sign_with_key_object_and_many_files(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    for i in range(300):
        (root / f"f{i:03d}.bin").write_bytes(i.to_bytes(2, "big") * 50)
    key = Ed25519PrivateKey.generate()
    result = sign_path(root, key, workers=2)
    assert result.files == 300
    assert verify_path(root, key.public_key(), workers=2).ok
    (root / "f150.bin").write_bytes(b"tampered")
    assert [d.name for d in verify_path(root, key.public_key(), workers=2).differences] == ["f150.bin"]


def test_streaming_multi_megabyte_file(tmp_path: Path, keys: tuple[Path, Path]) -> None:
    model = tmp_path / "big.safetensors"
    model.write_bytes(os.urandom(6 * 1024 * 1024 + 11))
    sign_path(model, keys[0], chunk_size=128 * 1024)
    assert verify_path(model, keys[1], chunk_size=4096).ok
    with model.open("r+b") as f:  # flip one byte (writing a fixed one left it unchanged 1 time in 256)
        f.seek(5 * 1024 * 1024)
        byte = f.read(1)[0]
        f.seek(5 * 1024 * 1024)
        f.write(bytes([byte ^ 0xFF]))
    assert not verify_path(model, keys[1]).ok
