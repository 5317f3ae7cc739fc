"""The corpus of malicious model files: a registry of :class:`Sample` and :func:`write_malicious`.

Every sample is built from raw pickle opcodes or from a real library's output with a payload spliced
in; nothing is executed while building. Every payload is harmless: when a real loader runs it, it
creates the file ``<canary_dir>/<sample name>`` and does nothing else. The registry covers pickle
protocols 0-5, every calling opcode, memo and operand tricks, dotted and Python-2 names, indirect
callables, module writes, second stages, malformed streams, PyTorch/joblib/NumPy/Keras/ONNX/GGUF
containers, zip malformations, archives, and one sample per published scanner bypass (``advisory``).

Example:
    >>> from pathlib import Path
    >>> from mlarmor.testing.corpus.trojans import SAMPLES, write_malicious
    >>> len(SAMPLES) > 60
    True
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from pathlib import Path

from . import (  # noqa: F401  (importing a sample module registers its samples)
    _trojans_archives,
    _trojans_calls,
    _trojans_gadgets,
    _trojans_keras,
    _trojans_names,
    _trojans_onnx_gguf,
    _trojans_opcodes,
    _trojans_streams,
    _trojans_torch,
)
from ._registry import REGISTRY, Canary, Loader, Sample

__all__ = ["SAMPLES", "Canary", "Loader", "Sample", "family_counts", "get_sample", "write_malicious"]

SAMPLES: dict[str, Sample] = dict(sorted(REGISTRY.items()))
"""Every registered sample by name."""


def get_sample(name: str) -> Sample:
    """Return the sample called ``name``.

    Raises:
        KeyError: With the list of known names when ``name`` is unknown.
    """
    try:
        return SAMPLES[name]
    except KeyError:
        known = ", ".join(SAMPLES)
        raise KeyError(f"Unknown sample {name!r}; known samples: {known}.") from None


def family_counts(samples: Iterable[Sample] | None = None) -> dict[str, int]:
    """Number of samples per technique family (the part of ``technique`` before ':')."""
    counts = collections.Counter(s.family for s in (SAMPLES.values() if samples is None else samples))
    return dict(sorted(counts.items()))


def write_malicious(
    out_dir: Path,
    canary_dir: Path,
    names: Iterable[str] | None = None,
    *,
    skipped: dict[str, str] | None = None,
) -> list[Path]:
    """Write malicious samples to ``out_dir``, each aimed at ``canary_dir``.

    Files are named ``<sample name>__<realistic file name>`` so that the extension a victim would
    see is kept and every file maps back to its sample. Writing never runs a payload.

    Args:
        out_dir: Destination folder (created if missing).
        canary_dir: Folder in which a payload, once loaded, creates a file named after its sample.
            Use an absolute path: the payloads embed it.
        names: Sample names to write; all of them when ``None``.
        skipped: When given, a sample whose writer library is not installed (``gen-only`` libraries such
            as gguf or onnx) is skipped and recorded here as ``name -> missing module`` instead of
            raising ``ModuleNotFoundError``.

    Returns:
        The written paths, in sample-name order.

    Raises:
        KeyError: If a name is unknown.
    """
    out_dir = Path(out_dir)
    canary_dir = Path(canary_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = [get_sample(n) for n in (sorted(names) if names is not None else SAMPLES)]
    written = []
    for s in selected:
        path = out_dir / f"{s.name}__{s.filename}"
        try:
            data = s.build(canary_dir)
        except ModuleNotFoundError as e:
            if skipped is None:
                raise
            skipped[s.name] = e.name or str(e)
            continue
        path.write_bytes(data)
        written.append(path)
    return written
