"""The Python examples of docs/scanner.md and docs/integrity.md run as written, on real files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"


def _blocks(page: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), flags=re.DOTALL)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    torch = pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    (tmp_path / "models").mkdir()
    torch.save({"w": torch.ones(2)}, tmp_path / "models" / "net.pt")
    (tmp_path / "policy.toml").write_text('allow = ["mycompany.models.*"]\n')
    (tmp_path / "my-model").mkdir()
    (tmp_path / "my-model" / "weights.bin").write_bytes(b"weights")
    return tmp_path


@pytest.mark.parametrize("page", ["scanner.md", "integrity.md"])
def test_examples_run(page: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocks = _blocks(page)
    assert blocks
    for index, block in enumerate(blocks):
        exec(compile(block, f"{page}[{index}]", "exec"), {"__name__": "__docs__"})
    out = capsys.readouterr().out
    assert out.strip()
    if page == "scanner.md":
        assert "none {'none': 1" in out  # the benign checkpoint folder is clean
    else:
        assert out.startswith("True [] []")  # the signed folder verifies


def test_every_rule_is_documented() -> None:
    from mlarmor.scan.rules import ALL_RULES

    page = (DOCS / "scanner.md").read_text(encoding="utf-8")
    rules_table = page[page.index("## Rules") :]
    missing = [r.id for r in ALL_RULES if f"| `{r.id}` |" not in rules_table]
    assert missing == []
