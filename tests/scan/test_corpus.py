"""The scanner against the whole corpus: every trojan technique and published bypass, every benign artifact.

One regression test per sample (its advisory id is in the sample's ``advisory`` field); the canary
folder must stay empty, proving that no payload ran while scanning.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlarmor.findings import Severity
from mlarmor.scan import Scanner
from mlarmor.testing.corpus import SAMPLES, write_benign, write_malicious


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], list[Path], Path]:
    root = tmp_path_factory.mktemp("corpus")
    canary = root / "canary"
    canary.mkdir()
    malicious = write_malicious(root / "malicious", canary)
    by_sample = {p.name.split("__", 1)[0]: p for p in malicious}
    benign = write_benign(root / "benign")
    return by_sample, benign, canary


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_malicious_sample_is_high_or_critical(
    corpus: tuple[dict[str, Path], list[Path], Path], name: str
) -> None:
    by_sample, _, canary = corpus
    if name not in by_sample:
        pytest.skip(f"{name}: its writer library is not installed")
    result = Scanner().scan_file(by_sample[name])
    sample = SAMPLES[name]
    assert result.severity >= Severity.HIGH, (sample.technique, sample.advisory, result.findings)
    assert list(canary.iterdir()) == []


def test_benign_artifacts_are_below_high(corpus: tuple[dict[str, Path], list[Path], Path]) -> None:
    _, benign, canary = corpus
    assert len(benign) >= 30
    results = Scanner().scan_paths(benign)
    flagged = {r.path: [f.title for f in r.findings] for r in results if r.severity >= Severity.HIGH}
    assert flagged == {}
    assert all(r.severity <= Severity.LOW for r in results), [
        (r.path, r.findings) for r in results if r.findings
    ]
    assert list(canary.iterdir()) == []
