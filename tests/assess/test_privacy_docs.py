"""The Python example of docs/privacy.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "privacy.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)


def test_example_runs(capsys) -> None:
    assert BLOCKS
    for index, block in enumerate(BLOCKS):
        exec(compile(block, f"{DOC.name}[{index}]", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert "lira-online" in out
    assert "Membership inference" in out
