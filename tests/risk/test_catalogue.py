"""The finding catalogue: one declaration per finding id, every cited id known, no inline ids."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlarmor.findings import Severity
from mlarmor.risk.catalogue import (
    ATLAS,
    EVASION_ACCURACY_LOSS,
    FINDINGS,
    OWASP_ML,
    POISONING_SIMULATION,
    RELIABILITY,
    WHITE_BOX,
    FindingKind,
    kind,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "mlarmor"


def test_ids_are_unique_and_resolve_to_their_kind() -> None:
    ids = [i for k in FINDINGS for i in k.ids()]
    assert len(ids) == len(set(ids))
    for k in FINDINGS:
        for i in k.ids():
            assert kind(i.replace("*", "badnets")) is k
    assert kind("poisoning.some-new-attack") is POISONING_SIMULATION
    with pytest.raises(KeyError):
        kind("no.such-finding")


@pytest.mark.parametrize("k", FINDINGS, ids=lambda k: k.id)
def test_every_kind_is_complete(k: FindingKind) -> None:
    assert set(k.atlas) <= set(ATLAS), "cite only techniques the catalogue names"
    assert set(k.owasp) <= set(OWASP_ML)
    assert k.atlas
    assert k.owasp
    assert k.rule
    assert (
        k.severity is not None
        or (k.variants and all(v is not None for v in k.variants.values()))
        or ("Always" in k.rule)
    ), "each kind has a rule function, a fixed severity per variant, or a fixed severity in words"


def test_a_finding_cites_the_declared_ids_and_may_narrow_them() -> None:
    full = EVASION_ACCURACY_LOSS.finding(title="t", severity=Severity.HIGH)
    assert full.atlas == list(EVASION_ACCURACY_LOSS.atlas)
    assert full.mitigations == list(EVASION_ACCURACY_LOSS.mitigations)
    narrow = EVASION_ACCURACY_LOSS.finding(
        title="t", severity=Severity.HIGH, atlas=[WHITE_BOX], mitigations=[]
    )
    assert narrow.atlas == [WHITE_BOX]
    assert narrow.mitigations == []
    with pytest.raises(ValueError, match="not declared"):
        EVASION_ACCURACY_LOSS.finding(title="t", severity=Severity.HIGH, atlas=["AML.T0020"])


def test_variants_build_their_own_ids() -> None:
    f = RELIABILITY.finding(title="t", severity=Severity.MEDIUM, variant="zero-gradients")
    assert f.id == "evasion.reliability.zero-gradients"
    with pytest.raises(ValueError, match="unknown variant"):
        RELIABILITY.finding(title="t", severity=Severity.MEDIUM, variant="nope")
    with pytest.raises(ValueError, match="unknown variant"):
        RELIABILITY.finding(title="t", severity=Severity.MEDIUM)


def test_no_atlas_or_owasp_id_is_written_outside_the_catalogues() -> None:
    """Findings take their ids from the catalogue (or the scanner's rules), never from a literal."""
    pattern = re.compile(r"""["'](AML\.T\d{4}(\.\d{3})?|ML\d\d)["']""")
    offenders = [
        f"{path.relative_to(SRC)}:{n}"
        for path in SRC.rglob("*.py")
        # The scanner's rules are its own catalogue (scan/rules.py, with the Rule defaults in scan/).
        if path != SRC / "risk" / "catalogue.py" and "scan" not in path.relative_to(SRC).parts
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert offenders == []


def test_a_fixed_severity_is_enforced() -> None:
    with pytest.raises(ValueError, match="always high"):
        RELIABILITY.finding(title="t", severity=Severity.LOW, variant="nan-gradients")


def test_the_findings_page_shows_the_catalogue() -> None:
    from mlarmor.risk.catalogue import to_markdown

    page = (SRC.parents[1] / "docs" / "findings.md").read_text(encoding="utf-8")
    assert to_markdown() in page, "regenerate the table of docs/findings.md from to_markdown()"
