"""The registry behind :mod:`.trojans`: :class:`Sample`, :class:`Canary` and ``@sample``."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

__all__ = ["REGISTRY", "Canary", "Loader", "Sample", "sample"]

Loader = Literal[
    "pickle",
    "pickle-stream",
    "pandas",
    "torch",
    "joblib",
    "numpy",
    "numpy-npz",
    "archive-pickle",
    "tar-extract",
    "keras",
    "jinja",
    "none",
]
"""Which real loader runs a sample's payload (the liveness tests drive each one in a subprocess).

* ``pickle``: ``pickle.load``; ``pickle-stream``: ``pickle.load`` until the end of the file.
* ``pandas``: ``pandas.read_pickle``, which picks the decompressor from the file extension.
* ``torch``: ``torch.load(weights_only=False)``; ``joblib``: ``joblib.load``.
* ``numpy``: ``numpy.load(allow_pickle=True)``; ``numpy-npz``: the same, then every member read.
* ``archive-pickle``: members of zip/tar/7z archives (recursively) handed to ``pickle.loads``,
  which is what a user who unpacks the archive and loads the model file does.
* ``tar-extract``: ``tarfile.extractall`` without a filter (the default before Python 3.14).
* ``keras``: ``keras.saving.load_model(safe_mode=False)`` with the torch backend.
* ``jinja``: the GGUF ``tokenizer.chat_template`` rendered by a plain ``jinja2.Environment``, as
  llama-cpp-python < 0.2.72 did (GHSA-56xg-wfcc-g829).
* ``none``: no installed loader runs the payload; the description says why.
"""


@dataclass(frozen=True, slots=True)
class Canary:
    """Where one sample's payload leaves its mark, and the harmless actions that create it.

    Attributes:
        path: The canary file, ``<canary_dir>/<sample name>``.
    """

    path: Path

    @property
    def file(self) -> str:
        """The canary path as a string."""
        return str(self.path)

    @property
    def sh(self) -> str:
        """A shell command that creates the canary file."""
        return "touch " + shlex.quote(self.file)

    @property
    def py(self) -> str:
        """A Python expression (also a statement) that creates the canary file."""
        return f"open({self.file!r}, 'w').close()"

    @property
    def argv(self) -> list[str]:
        """An argument vector that creates the canary file."""
        return ["touch", self.file]


@dataclass(frozen=True, slots=True)
class Sample:
    """One malicious model file of the corpus.

    Attributes:
        name: Unique identifier; also the canary file name its payload creates.
        technique: ``family:variant`` slug of the evasion or execution technique.
        container: File format the payload travels in (``pickle``, ``pytorch-zip``, ``joblib-zlib``...).
        description: What the sample does, and why it is or is not live under a real loader.
        advisory: The published advisory it reproduces (GHSA or CVE id), if any.
        build: ``build(canary_dir) -> bytes``; never executes the payload.
        filename: Realistic file name (the extension a victim would see).
        loader: The real loader the liveness tests use (see :data:`Loader`).
        requires: Modules the loader needs; liveness is skipped when one is missing.
        platform: ``sys.platform`` prefix the payload needs to run (``None``: any POSIX system).
    """

    name: str
    technique: str
    container: str
    description: str
    advisory: str | None
    build: Callable[[Path], bytes]
    filename: str = field(kw_only=True)
    loader: Loader = field(default="pickle", kw_only=True)
    requires: tuple[str, ...] = field(default=(), kw_only=True)
    platform: str | None = field(default=None, kw_only=True)

    @property
    def family(self) -> str:
        """The technique family (the part of :attr:`technique` before the colon)."""
        return self.technique.split(":", 1)[0]


REGISTRY: dict[str, Sample] = {}


def sample(
    name: str,
    *,
    technique: str,
    container: str,
    filename: str,
    description: str,
    advisory: str | None = None,
    loader: Loader = "pickle",
    requires: tuple[str, ...] = (),
    platform: str | None = None,
) -> Callable[[Callable[[Canary], bytes]], Callable[[Canary], bytes]]:
    """Register a sample whose builder takes the :class:`Canary` it must target.

    Raises:
        ValueError: If ``name`` is already registered or is not a plain file name.
    """
    if name in REGISTRY:
        raise ValueError(f"Sample {name!r} is registered twice.")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"Sample names must be plain file names. Got {name!r} instead.")

    def decorate(fn: Callable[[Canary], bytes]) -> Callable[[Canary], bytes]:
        def build(canary_dir: Path) -> bytes:
            return fn(Canary(Path(canary_dir) / name))

        build.__doc__ = fn.__doc__
        REGISTRY[name] = Sample(
            name,
            technique,
            container,
            description,
            advisory,
            build,
            filename=filename,
            loader=loader,
            requires=requires,
            platform=platform,
        )
        return fn

    return decorate
