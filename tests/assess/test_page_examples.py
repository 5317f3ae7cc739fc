"""The Python examples of the privacy, inversion, dp, hardening and poisoning pages run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGES = {
    "privacy.md": ["lira-online", "Membership inference", "privacy.attribute-inference"],
    "inversion.md": [],
    "dp.md": [],
    "hardening.md": ["clean ", "adversarial-training ['evasion.accuracy-loss']"],
    "poisoning.md": ["infected=True target_class=0", "STRIP:", "verb: infected=True -> inspect-model"],
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_examples_run(
    page: str, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # examples write their files (SVGs, saved models) where they run
    text = (DOCS / page).read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert blocks
    namespace = {"__name__": "__docs__"}
    for index, block in enumerate(blocks):  # one namespace: later blocks may build on earlier ones
        exec(compile(block, f"{page}[{index}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert out.strip()
    for expected in PAGES[page]:
        assert expected in out
