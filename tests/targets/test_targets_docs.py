"""The examples in docs/targets.md run, in order, and print what their comments say."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

DOC = Path(__file__).resolve().parents[2] / "docs" / "targets.md"


def test_docs_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    assert len(blocks) >= 6
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "docs_targets"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out), warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")
        for block in blocks:
            exec(compile(block, str(DOC), "exec"), namespace)
    printed = out.getvalue()
    assert "10 ['gradients', 'labels', 'scores']" in printed
    assert "(300, 10) 304" in printed
    assert "10 (64,) predict_proba" in printed
    assert "decision_function [0 1 2]" in printed
    assert "output_probability probabilities" in printed
    assert "failed the scan (verdict: critical) and was not loaded" in printed
    assert "pass trust=True (--trust)" in printed
