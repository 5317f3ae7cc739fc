"""Mutated real artifacts: every handler must turn damage into findings, never into an internal error.

The engine converts an unexpected exception into a high "Scanner could not analyse" finding (fail
closed); this test makes sure no handler relies on that net for truncated or bit-flipped input.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlarmor.scan import Limits, Scanner
from mlarmor.testing.corpus import write_benign

_SCANNER = Scanner(limits=Limits(max_member_bytes=64 << 20, max_total_bytes=256 << 20))


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, bytes]]:
    out = tmp_path_factory.mktemp("seeds")
    files = write_benign(out)
    small = [(p.name, p.read_bytes()) for p in files if p.stat().st_size <= 2 << 20]
    assert len(small) >= 15
    return small


def _mutate(data: bytes, draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["truncate", "flip", "splice"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data)))]
    buf = bytearray(data)
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(buf) - 1))
            buf[i] = draw(st.integers(0, 255))
        return bytes(buf)
    i = draw(st.integers(0, len(buf)))
    return bytes(buf[:i]) + draw(st.binary(min_size=1, max_size=64)) + bytes(buf[i:])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_artifacts_never_hit_an_internal_error(
    seeds: list[tuple[str, bytes]], data: st.DataObject
) -> None:
    name, blob = data.draw(st.sampled_from(seeds))
    mutated = _mutate(blob, data.draw)
    result = _SCANNER.scan_bytes(mutated, name)
    internal = [f for f in result.findings if f.title.startswith("Scanner could not analyse")]
    assert internal == [], (name, internal[0].evidence if internal else None)


def test_seed_corpus_itself_is_clean(seeds: list[tuple[str, bytes]], tmp_path: Path) -> None:
    for name, blob in seeds:
        assert _SCANNER.scan_bytes(blob, name).findings == [], name
