"""Test support that ships with mlarmor but that library code never imports.

:mod:`.corpus` builds the malicious and benign model files that the scanner's tests, the detection
benchmark and ``mlarmor demo`` scan. Only the demo, the tests and the benchmarks import this package.
"""

from __future__ import annotations

__all__: list[str] = []
