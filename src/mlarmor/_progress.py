"""Progress reports from long library calls, without printing (private).

A library function that runs for more than a second or two takes ``progress: Progress | None`` and
calls it with the name of the step it is in, how far it got and, when known, how far it goes:
``progress("adversarial training", 3, 100, "loss 0.41")``. ``total=None`` marks a step whose length
is unknown (a spinner). The command line draws the calls as progress bars; Python callers pass
their own function, or nothing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Protocol

__all__ = ["Progress", "silent", "step"]


class Progress(Protocol):
    """Receives ``(step, done, total, info)`` from a long call."""

    def __call__(self, step: str, done: int, total: int | None, info: str = "") -> None:
        """Report that ``step`` reached ``done`` of ``total`` (``None``: unknown), with ``info``."""


def silent(step: str, done: int, total: int | None, info: str = "") -> None:
    """A :class:`Progress` that reports nowhere."""


@contextlib.contextmanager
def step(progress: Progress | None, name: str) -> Iterator[None]:
    """Report ``name`` as started (length unknown) and, when the block ends, as done."""
    report = progress or silent
    report(name, 0, None)
    yield
    report(name, 1, 1)
