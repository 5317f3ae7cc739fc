"""Model-artifact integrity: hashing manifests, Ed25519 signing and verification.

Typical use::

    from mlarmor.integrity import generate_keypair, sign_path, verify_path

    generate_keypair().write("keys/release")           # keys/release.key, keys/release.pub
    sign_path("model_dir", "keys/release.key")         # writes model_dir/model.sig
    result = verify_path("model_dir", "keys/release.pub")
    result.ok, [f.id for f in result.findings]

The signature format (a DSSE envelope over an in-toto statement, after the OpenSSF Model
Signing layout) is described in ``docs/integrity.md``.
"""

from __future__ import annotations

from mlarmor.integrity._files import CHUNK_SIZE, FileEntry, hash_file
from mlarmor.integrity.keys import KeyPair, generate_keypair, key_id, load_private_key, load_public_key
from mlarmor.integrity.manifest import PREDICATE_TYPE, STATEMENT_TYPE, Manifest, build_manifest
from mlarmor.integrity.signing import (
    DEFAULT_DIRECTORY_SIGNATURE,
    PAYLOAD_TYPE,
    SIGNATURE_MEDIA_TYPE,
    Envelope,
    SignResult,
    default_signature_path,
    read_signature,
    sign_path,
)
from mlarmor.integrity.verify import FileDifference, VerificationResult, verify_path

__all__ = [
    "CHUNK_SIZE",
    "DEFAULT_DIRECTORY_SIGNATURE",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "SIGNATURE_MEDIA_TYPE",
    "STATEMENT_TYPE",
    "Envelope",
    "FileDifference",
    "FileEntry",
    "KeyPair",
    "Manifest",
    "SignResult",
    "VerificationResult",
    "build_manifest",
    "default_signature_path",
    "generate_keypair",
    "hash_file",
    "key_id",
    "load_private_key",
    "load_public_key",
    "read_signature",
    "sign_path",
    "verify_path",
]
