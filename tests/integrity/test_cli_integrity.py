from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from mlarmor.cli import app

runner = CliRunner()


def run(*args: str | Path, env: dict[str, str] | None = None) -> Result:
    result = runner.invoke(app, [str(a) for a in args], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    r = run("keygen", "--out", tmp_path / "keys" / "release")
    assert r.exit_code == 0, r.output
    return tmp_path / "keys" / "release.key", tmp_path / "keys" / "release.pub"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    (root / "sub").mkdir(parents=True)
    (root / "weights.bin").write_bytes(os.urandom(4096))
    (root / "sub" / "config.json").write_bytes(b"{}")
    return root


@pytest.fixture
def signed(model: Path, keys: tuple[Path, Path]) -> Path:
    r = run("sign", model, "--key", keys[0])
    assert r.exit_code == 0, r.output
    return model


# --- keygen --------------------------------------------------------------------------------------


def test_keygen_writes_pair_and_refuses_overwrite(keys: tuple[Path, Path], tmp_path: Path) -> None:
    private, public = keys
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert public.read_bytes().startswith(b"-----BEGIN PUBLIC KEY-----")
    before = private.read_bytes()
    r = run("keygen", "--out", tmp_path / "keys" / "release")
    assert r.exit_code == 2
    assert "refusing to overwrite" in r.output
    assert "--force" in r.output
    assert private.read_bytes() == before
    r = run("keygen", "--out", tmp_path / "keys" / "release", "--force")
    assert r.exit_code == 0
    assert private.read_bytes() != before


def test_keygen_with_passphrase_and_sign_with_it(tmp_path: Path, model: Path) -> None:
    env = {"MODEL_KEY_PASS": "correct horse"}
    r = run("keygen", "--out", tmp_path / "enc", "--passphrase-env", "MODEL_KEY_PASS", env=env)
    assert r.exit_code == 0, r.output
    assert b"ENCRYPTED" in (tmp_path / "enc.key").read_bytes()
    r = run("sign", model, "--key", tmp_path / "enc.key")
    assert r.exit_code == 2
    assert "encrypted" in r.output
    assert "--passphrase-env" in r.output
    r = run("sign", model, "--key", tmp_path / "enc.key", "--passphrase-env", "MODEL_KEY_PASS", env=env)
    assert r.exit_code == 0, r.output
    r = run("verify", model, "--key", tmp_path / "enc.pub")
    assert r.exit_code == 0, r.output


def test_keygen_with_unset_passphrase_variable(tmp_path: Path) -> None:
    r = run("keygen", "--out", tmp_path / "k", "--passphrase-env", "MLARMOR_TEST_UNSET_VAR")
    assert r.exit_code == 2
    assert "MLARMOR_TEST_UNSET_VAR is not set" in r.output
    assert not (tmp_path / "k.key").exists()


# --- sign / verify -------------------------------------------------------------------------------


def test_sign_then_verify_ok(signed: Path, keys: tuple[Path, Path]) -> None:
    assert (signed / "model.sig").is_file()
    r = run("verify", signed, "--key", keys[1])
    assert r.exit_code == 0, r.output
    assert "OK: 2 file(s)" in r.output


def test_sign_reports_what_it_signed(model: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    sig = tmp_path / "out" / "model.sig"
    r = run("sign", model, "--key", keys[0], "--signature", sig, "--workers", "2")
    assert r.exit_code == 0, r.output
    assert "signed 2 file(s)" in r.output
    assert sig.is_file()
    assert run("verify", model, "--key", keys[1], "--signature", sig).exit_code == 0


def test_verify_tampered_exits_1_and_names_the_file(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "weights.bin").write_bytes(b"trojan")
    (signed / "extra.pkl").write_bytes(b"c")
    r = run("verify", signed, "--key", keys[1])
    assert r.exit_code == 1
    assert "weights.bin" in r.output
    assert "extra.pkl" in r.output
    assert "integrity.file-changed" in r.output
    assert "integrity.file-added" in r.output
    assert "FAILED" in r.output


def test_verify_json_report(signed: Path, keys: tuple[Path, Path]) -> None:
    (signed / "sub" / "config.json").unlink()
    r = run("verify", signed, "--key", keys[1], "--format", "json")
    assert r.exit_code == 1
    report = json.loads(r.stdout)
    assert report["kind"] == "verify"
    assert report["severity"] == "high"
    (finding,) = report["findings"]
    assert finding["id"] == "integrity.file-removed"
    assert finding["family"] == "integrity"
    assert finding["location"]["member"] == "sub/config.json"
    meta = report["metadata"]
    assert meta["signature_valid"] is True
    assert meta["ok"] is False
    assert meta["files_signed"] == 2
    assert meta["files_checked"] == 1


def test_verify_json_ok_and_output_file(signed: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "reports" / "verify.json"
    r = run("verify", signed, "--key", keys[1], "--format", "json", "--output", out)
    assert r.exit_code == 0, r.output
    report = json.loads(out.read_text())
    assert report["findings"] == []
    assert report["metadata"]["ok"] is True
    table_out = tmp_path / "verify.txt"
    assert run("verify", signed, "--key", keys[1], "--output", table_out).exit_code == 0
    assert "OK: 2 file(s)" in table_out.read_text()


def test_verify_with_another_key_exits_1(signed: Path, tmp_path: Path) -> None:
    assert run("keygen", "--out", tmp_path / "other").exit_code == 0
    r = run("verify", signed, "--key", tmp_path / "other.pub", "--format", "json")
    assert r.exit_code == 1
    assert [f["id"] for f in json.loads(r.stdout)["findings"]] == ["integrity.wrong-key"]


def test_verify_edited_signature_exits_1(signed: Path, keys: tuple[Path, Path]) -> None:
    sig = signed / "model.sig"
    doc = json.loads(sig.read_text())
    doc["dsseEnvelope"]["payloadType"] = "text/plain"
    sig.write_text(json.dumps(doc))
    r = run("verify", signed, "--key", keys[1])
    assert r.exit_code == 1
    assert "integrity.bad-signature" in r.output


# --- usage errors: exit 2, clear message, no traceback ---------------------------------------------


def test_usage_errors_exit_2(signed: Path, keys: tuple[Path, Path], tmp_path: Path) -> None:
    garbage_key = tmp_path / "garbage.pub"
    garbage_key.write_text("hello")
    cases: list[tuple[list[str | Path], str]] = [
        (["verify", tmp_path / "missing", "--key", keys[1]], "does not exist"),
        (["sign", tmp_path / "missing", "--key", keys[0]], "does not exist"),
        (["verify", signed, "--key", tmp_path / "none.pub"], "does not exist"),
        (["sign", signed, "--key", tmp_path / "none.key"], "does not exist"),
        (["verify", signed, "--key", keys[0]], "holds a private key"),
        (["sign", signed, "--key", keys[1]], "holds a public key"),
        (["verify", signed, "--key", garbage_key], "cannot load"),
        (["verify", signed, "--key", keys[1], "--signature", tmp_path / "none.sig"], "does not exist"),
        (["verify", signed, "--key", tmp_path], "is a directory"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert "error:" in r.output, (args, r.output)
        assert message in r.output, (args, r.output)


@pytest.mark.parametrize("content", [b"", b"{truncated", b"\x89PNG\r\n\x1a\n", b'{"mediaType": 1}'])
def test_corrupt_signature_file_exits_2(signed: Path, keys: tuple[Path, Path], content: bytes) -> None:
    (signed / "model.sig").write_bytes(content)
    r = run("verify", signed, "--key", keys[1])
    assert r.exit_code == 2
    assert "model.sig" in r.output
    assert "mlarmor sign" in r.output


def test_truncated_signature_file_exits_2(signed: Path, keys: tuple[Path, Path]) -> None:
    sig = signed / "model.sig"
    sig.write_bytes(sig.read_bytes()[:200])
    r = run("verify", signed, "--key", keys[1])
    assert r.exit_code == 2
    assert "not a valid signature file" in r.output


def test_sign_refuses_symlink_with_exit_2(model: Path, keys: tuple[Path, Path]) -> None:
    (model / "link").symlink_to(model / "weights.bin")
    r = run("sign", model, "--key", keys[0])
    assert r.exit_code == 2
    assert "link (symlink" in r.output
    assert "cp -rL" in r.output


def test_unknown_format_option_exits_2(signed: Path, keys: tuple[Path, Path]) -> None:
    r = run("verify", signed, "--key", keys[1], "--format", "sarif")
    assert r.exit_code == 2


@pytest.mark.parametrize("verb", ["keygen", "sign", "verify"])
def test_help_has_an_example(verb: str) -> None:
    r = run(verb, "--help")
    assert r.exit_code == 0
    assert "Example:" in r.output
    assert f"mlarmor {verb}" in r.output


def test_integrity_verbs_are_registered_on_the_application() -> None:
    r = run("--help")
    assert r.exit_code == 0
    for verb in ("keygen", "sign", "verify"):
        assert verb in r.output
