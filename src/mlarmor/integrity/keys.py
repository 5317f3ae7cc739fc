"""Ed25519 key pairs for signing model artifacts: generate, write, load.

Private keys are PKCS#8 PEM (optionally encrypted with a passphrase), written with mode 0600;
public keys are SubjectPublicKeyInfo PEM. A key id is the hex SHA-256 of the raw 32-byte public key.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from mlarmor.errors import InputError, IntegrityError, invalid_parameter

__all__ = [
    "KeyPair",
    "generate_keypair",
    "key_id",
    "load_private_key",
    "load_public_key",
]


def key_id(public_key: Ed25519PublicKey) -> str:
    """Hex SHA-256 of the raw public key: the ``keyid`` written into signatures."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A freshly generated Ed25519 key pair in PEM form.

    Attributes:
        private_pem: PKCS#8 PEM private key (encrypted when a passphrase was given).
        public_pem: SubjectPublicKeyInfo PEM public key.
        key_id: Hex SHA-256 of the raw public key.
    """

    private_pem: bytes = field(repr=False)
    public_pem: bytes
    key_id: str

    def write(self, prefix: str | os.PathLike[str], *, force: bool = False) -> tuple[Path, Path]:
        """Write ``PREFIX.key`` (mode 0600) and ``PREFIX.pub`` (mode 0644), each atomically.

        Args:
            prefix: Path prefix; missing parent directories are created.
            force: Replace existing files instead of refusing.

        Returns:
            The private and public key paths.

        Raises:
            InputError: A file exists and ``force`` is false, or it cannot be written.
        """
        base = Path(prefix)
        private_path = base.with_name(base.name + ".key")
        public_path = base.with_name(base.name + ".pub")
        if not force:
            existing = [str(p) for p in (private_path, public_path) if p.exists() or p.is_symlink()]
            if existing:
                raise InputError(
                    f"refusing to overwrite {' and '.join(existing)}; "
                    "choose another --out prefix or pass --force."
                )
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create {base.parent}: {e.strerror or e}.") from e
        atomic_write(private_path, self.private_pem, mode=0o600)
        atomic_write(public_path, self.public_pem, mode=0o644)
        return private_path, public_path


def generate_keypair(passphrase: bytes | None = None) -> KeyPair:
    """Generate an Ed25519 key pair.

    Args:
        passphrase: Encrypts the private key PEM when given (must not be empty).

    Raises:
        InvalidParameterError: ``passphrase`` is empty.

    Example:
        >>> pair = generate_keypair()
        >>> pair.public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
        True
    """
    if passphrase is not None and not passphrase:
        raise invalid_parameter("passphrase", "generate_keypair", "None or non-empty bytes", passphrase)
    key = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase) if passphrase else serialization.NoEncryption()
    )
    private_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    public = key.public_key()
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(private_pem=private_pem, public_pem=public_pem, key_id=key_id(public))


def _read_key_file(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise InputError(
            f"{what} {path} does not exist; create a key pair with 'mlarmor keygen --out PREFIX'."
        ) from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory; pass the key file.") from None
    except OSError as e:
        raise InputError(f"cannot read {what} {path}: {e.strerror or e}.") from e


def load_private_key(path: str | os.PathLike[str], passphrase: bytes | None = None) -> Ed25519PrivateKey:
    """Load an Ed25519 private key from a PEM file written by :meth:`KeyPair.write`.

    Raises:
        InputError: The file is missing or unreadable.
        IntegrityError: It is not an Ed25519 private key, or the passphrase is missing or wrong.
    """
    p = Path(path)
    data = _read_key_file(p, "private key")
    if b"PUBLIC KEY-----" in data and b"PRIVATE KEY-----" not in data:
        raise IntegrityError(f"{p} holds a public key; signing needs the private key (the .key file).")
    try:
        key = serialization.load_pem_private_key(data, password=passphrase)
    except TypeError as e:
        if passphrase is None:
            raise IntegrityError(f"{p} is encrypted; pass its passphrase with --passphrase-env VAR.") from e
        raise IntegrityError(f"{p} is not encrypted; do not pass a passphrase for it.") from e
    except ValueError as e:
        raise IntegrityError(
            f"cannot load {p} as a PEM private key ({e}); "
            "pass a key written by 'mlarmor keygen' and check the passphrase."
        ) from e
    except Exception as e:  # cryptography raises UnsupportedAlgorithm and others for odd inputs
        raise IntegrityError(f"cannot load {p} as a private key: {type(e).__name__}: {e}.") from e
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(
            f"{p} is a {type(key).__name__.removeprefix('_')}, not an Ed25519 private key; "
            "create one with 'mlarmor keygen --out PREFIX'."
        )
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    """Load an Ed25519 public key from a PEM file written by :meth:`KeyPair.write`.

    Raises:
        InputError: The file is missing or unreadable.
        IntegrityError: It is not an Ed25519 public key (a private key is refused too: verifiers
            should only ever hold the ``.pub`` file).
    """
    p = Path(path)
    data = _read_key_file(p, "public key")
    if b"PRIVATE KEY-----" in data:
        raise IntegrityError(f"{p} holds a private key; verification needs the public key (the .pub file).")
    try:
        key = serialization.load_pem_public_key(data)
    except Exception as e:  # ValueError for bad PEM, UnsupportedAlgorithm for unknown key types
        raise IntegrityError(
            f"cannot load {p} as a PEM public key ({type(e).__name__}); "
            "pass the .pub file written by 'mlarmor keygen'."
        ) from e
    if not isinstance(key, Ed25519PublicKey):
        raise IntegrityError(
            f"{p} is not an Ed25519 public key; pass the .pub file written by 'mlarmor keygen'."
        )
    return key


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename.

    Readers see either the old file or the complete new one; the file gets exactly ``mode``.

    Raises:
        InputError: The file cannot be written.
    """
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror or e}.") from e
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
