"""Signing manifests: DSSE envelopes over in-toto statements, with Ed25519 keys.

The signature file is JSON shaped like the OpenSSF Model Signing (Sigstore bundle) layout, minus
the transparency log: ``mediaType``, ``verificationMaterial`` (the key id as a hint) and a DSSE
``dsseEnvelope`` whose ``payload`` is the base64 in-toto statement and whose signatures are
Ed25519 over the DSSE pre-authentication encoding (PAE) of payload type and payload. See
``docs/integrity.md``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlarmor import __version__
from mlarmor.errors import InputError, IntegrityError
from mlarmor.integrity._files import CHUNK_SIZE, ProgressCallback, resolve_target
from mlarmor.integrity.keys import atomic_write, key_id, load_private_key
from mlarmor.integrity.manifest import Manifest, build_manifest

__all__ = [
    "DEFAULT_DIRECTORY_SIGNATURE",
    "PAYLOAD_TYPE",
    "SIGNATURE_MEDIA_TYPE",
    "Envelope",
    "EnvelopeSignature",
    "SignResult",
    "default_signature_path",
    "pae",
    "read_signature",
    "sign_path",
]

PAYLOAD_TYPE = "application/vnd.in-toto+json"
SIGNATURE_MEDIA_TYPE = "application/vnd.mlarmor.signature.v1+json"
DEFAULT_DIRECTORY_SIGNATURE = "model.sig"
"""Name of the signature file inside a signed directory (the OMS default)."""

_MAX_SIGNATURE_BYTES = 256 << 20


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the exact bytes that are signed.

    ``"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` with lengths as ASCII decimal byte counts.
    """
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


def default_signature_path(path: str | os.PathLike[str]) -> Path:
    """Where the signature of ``path`` goes by default.

    ``model.pt`` -> ``model.pt.sig`` beside it; a directory ``DIR`` -> ``DIR/model.sig`` inside it
    (left out of the manifest). Based on the path as given, before resolving links.
    """
    p = Path(path)
    if p.is_dir():
        return p / DEFAULT_DIRECTORY_SIGNATURE
    return p.with_name(p.name + ".sig")


@dataclass(frozen=True, slots=True)
class EnvelopeSignature:
    """One DSSE signature: the signer's key id (a hint, not signed) and the raw signature bytes."""

    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    """A parsed signature file: a DSSE envelope whose signatures are not yet checked.

    Attributes:
        payload_type: The DSSE ``payloadType``.
        payload: The decoded payload bytes (the in-toto statement as JSON).
        signatures: Every signature found in the envelope.
    """

    payload_type: str
    payload: bytes
    signatures: tuple[EnvelopeSignature, ...]

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Key ids claimed by the signatures."""
        return tuple(s.keyid for s in self.signatures)

    def to_json(self) -> str:
        """The signature file text."""
        hint = self.signatures[0].keyid if self.signatures else ""
        doc = {
            "mediaType": SIGNATURE_MEDIA_TYPE,
            "verificationMaterial": {"publicKey": {"hint": hint}, "algorithm": "ed25519"},
            "dsseEnvelope": {
                "payload": base64.b64encode(self.payload).decode("ascii"),
                "payloadType": self.payload_type,
                "signatures": [
                    {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                    for s in self.signatures
                ],
            },
        }
        return json.dumps(doc, indent=2) + "\n"

    def statement(self) -> dict[str, Any]:
        """Decode the payload as a JSON object (only meaningful once a signature checked out).

        Raises:
            IntegrityError: The payload type is not in-toto JSON or the payload is not a JSON object.
        """
        if self.payload_type != PAYLOAD_TYPE:
            raise IntegrityError(f"Expected DSSE payloadType {PAYLOAD_TYPE!r}, got {self.payload_type!r}.")
        try:
            doc = json.loads(self.payload)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise IntegrityError(f"The signed payload is not valid JSON: {e}.") from e
        if not isinstance(doc, dict):
            raise IntegrityError("The signed payload must be a JSON object (an in-toto statement).")
        return doc


def _b64(value: object, what: str, sig_path: Path) -> bytes:
    if not isinstance(value, str):
        raise IntegrityError(f"{sig_path} is corrupt: {what} must be a base64 string.")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise IntegrityError(f"{sig_path} is corrupt: {what} is not valid base64 ({e}).") from e


def read_signature(path: str | os.PathLike[str]) -> Envelope:
    """Parse a signature file without checking any signature.

    Raises:
        InputError: The file is missing or unreadable.
        IntegrityError: It is not an mlarmor signature file (truncated, garbage, wrong fields).
    """
    p = Path(path)
    hint = "sign the model again with 'mlarmor sign', or pass the right file with --signature."
    try:
        size = p.stat().st_size
        if size > _MAX_SIGNATURE_BYTES:
            raise IntegrityError(f"{p} is {size} bytes, too large for a signature file; {hint}")
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"signature file {p} does not exist; {hint}") from None
    except IsADirectoryError:
        raise InputError(
            f"signature path {p} is a directory; pass the signature file with --signature."
        ) from None
    except OSError as e:
        raise InputError(f"cannot read signature file {p}: {e.strerror or e}.") from e
    try:
        doc = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise IntegrityError(f"{p} is not a valid signature file (not JSON: {e}); {hint}") from e
    if not isinstance(doc, dict) or doc.get("mediaType") != SIGNATURE_MEDIA_TYPE:
        got = doc.get("mediaType") if isinstance(doc, dict) else type(doc).__name__
        raise IntegrityError(f"{p} is not an mlarmor signature file (mediaType {got!r}); {hint}")
    env = doc.get("dsseEnvelope")
    if not isinstance(env, dict):
        raise IntegrityError(f"{p} is corrupt: 'dsseEnvelope' is missing; {hint}")
    payload_type = env.get("payloadType")
    if not isinstance(payload_type, str):
        raise IntegrityError(f"{p} is corrupt: 'payloadType' is missing; {hint}")
    payload = _b64(env.get("payload"), "'payload'", p)
    sigs = env.get("signatures")
    if not isinstance(sigs, list) or not sigs:
        raise IntegrityError(f"{p} is corrupt: the envelope has no signatures; {hint}")
    parsed: list[EnvelopeSignature] = []
    for s in sigs:
        if not isinstance(s, dict) or not isinstance(s.get("keyid", ""), str):
            raise IntegrityError(f"{p} is corrupt: a signature entry is malformed; {hint}")
        parsed.append(EnvelopeSignature(keyid=s.get("keyid", ""), sig=_b64(s.get("sig"), "a 'sig'", p)))
    return Envelope(payload_type=payload_type, payload=payload, signatures=tuple(parsed))


def sign_manifest(manifest: Manifest, private_key: Ed25519PrivateKey) -> Envelope:
    """Wrap ``manifest`` in an in-toto statement and sign it in a DSSE envelope."""
    created = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    statement = manifest.to_statement(
        {"created_at": created, "tool": {"name": "mlarmor", "version": __version__}}
    )
    payload = json.dumps(statement, indent=2, sort_keys=True).encode("ascii")
    sig = private_key.sign(pae(PAYLOAD_TYPE, payload))
    return Envelope(
        payload_type=PAYLOAD_TYPE,
        payload=payload,
        signatures=(EnvelopeSignature(keyid=key_id(private_key.public_key()), sig=sig),),
    )


@dataclass(frozen=True, slots=True)
class SignResult:
    """What :func:`sign_path` signed and where the signature went.

    Attributes:
        path: The resolved model file or directory.
        signature_path: The signature file written.
        manifest: The signed manifest.
        key_id: Id of the signing key's public half.
    """

    path: Path
    signature_path: Path
    manifest: Manifest
    key_id: str

    @property
    def files(self) -> int:
        """Number of files signed."""
        return len(self.manifest.entries)

    @property
    def total_size(self) -> int:
        """Bytes covered by the signature."""
        return self.manifest.total_size


def sign_path(
    path: str | os.PathLike[str],
    private_key: Ed25519PrivateKey | str | os.PathLike[str],
    *,
    signature: str | os.PathLike[str] | None = None,
    passphrase: bytes | None = None,
    workers: int | None = None,
    chunk_size: int = CHUNK_SIZE,
    progress: ProgressCallback | None = None,
) -> SignResult:
    """Hash every file of a model file or directory and write a signed manifest.

    Args:
        path: The model file or directory.
        private_key: An Ed25519 private key, or the path of its PEM file.
        signature: Where to write the signature; default :func:`default_signature_path`. A
            signature inside the directory is left out of the manifest.
        passphrase: Decrypts ``private_key`` when it is an encrypted PEM file.
        workers: Hashing threads; default one per core.
        chunk_size: Bytes hashed at a time.
        progress: Called after each file as ``progress(done, total)``.

    Returns:
        A :class:`SignResult`.

    Raises:
        InputError: The model, the key or the signature location cannot be used.
        IntegrityError: The key is not a usable Ed25519 private key.

    Example:
        >>> result = sign_path("model_dir", "keys/release.key")  # doctest: +SKIP
        >>> result.signature_path  # doctest: +SKIP
        PosixPath('model_dir/model.sig')
    """
    key = (
        private_key
        if isinstance(private_key, Ed25519PrivateKey)
        else load_private_key(private_key, passphrase)
    )
    root, _ = resolve_target(path)
    sig_path = Path(signature) if signature is not None else default_signature_path(path)
    if sig_path.exists() and sig_path.resolve() == root:
        raise InputError(f"the signature path {sig_path} is the model itself; choose another --signature.")
    if sig_path.is_dir():
        raise InputError(f"signature path {sig_path} is a directory; pass a file path with --signature.")
    manifest = build_manifest(
        root, exclude=[sig_path], workers=workers, chunk_size=chunk_size, progress=progress
    )
    envelope = sign_manifest(manifest, key)
    try:
        sig_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise InputError(f"cannot create {sig_path.parent}: {e.strerror or e}.") from e
    atomic_write(sig_path, envelope.to_json().encode("ascii"))
    return SignResult(
        path=root, signature_path=sig_path, manifest=manifest, key_id=envelope.signatures[0].keyid
    )
