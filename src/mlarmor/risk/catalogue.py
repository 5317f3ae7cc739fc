"""The finding catalogue: every finding id with its ATLAS and OWASP ids, severity rule and mitigations.

Each kind of finding mlarmor reports about a model or its data is declared here once, as a
:class:`FindingKind`; the code that measures something builds the finding from its kind
(``EVASION_ACCURACY_LOSS.finding(title=..., severity=..., evidence=...)``), so no ATLAS or OWASP id
is written anywhere else. A kind declares every technique and entry its findings may cite; a finding
cites all of them unless the measurement narrows it (a white-box attack cites the white-box
technique), and never one outside them. The scanner's rules (:mod:`mlarmor.scan.rules`) are its own
catalogue of the same shape. :data:`FINDINGS` lists the kinds; ``docs/findings.md`` is generated from
it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from mlarmor.findings import Family, Finding, Location, Severity
from mlarmor.risk import severity as rules

__all__ = [
    "ATLAS",
    "ATTRIBUTE_INFERENCE",
    "BACKDOOR_TRIGGER",
    "DP_TRAINING",
    "EVASION_ACCURACY_LOSS",
    "EVASION_DETECTOR",
    "FINDINGS",
    "INTEGRITY_BAD_SIGNATURE",
    "INTEGRITY_FILE",
    "INTEGRITY_WRONG_KEY",
    "MEMBERSHIP_INFERENCE",
    "MODEL_INVERSION",
    "OWASP_ML",
    "POISONING_SIMULATION",
    "RELIABILITY",
    "SANITIZE",
    "SUSPICIOUS_SAMPLES",
    "FindingKind",
    "atlas_url",
    "kind",
    "owasp_url",
    "to_markdown",
]

ATLAS: Final[dict[str, str]] = {
    "AML.T0010.003": "AI Supply Chain Compromise: Model",
    "AML.T0011.000": "User Execution: Unsafe AI Artifacts",
    "AML.T0012": "Valid Accounts",
    "AML.T0015": "Evade AI Model",
    "AML.T0018": "Manipulate AI Model",
    "AML.T0018.000": "Manipulate AI Model: Poison AI Model",
    "AML.T0018.002": "Manipulate AI Model: Embed Malware",
    "AML.T0020": "Poison Training Data",
    "AML.T0024.000": "Exfiltration via AI Inference API: Infer Training Data Membership",
    "AML.T0024.001": "Exfiltration via AI Inference API: Invert AI Model",
    "AML.T0024.002": "Exfiltration via AI Inference API: Extract AI Model",
    "AML.T0040": "AI Model Inference API Access",
    "AML.T0043": "Craft Adversarial Data",
    "AML.T0043.000": "Craft Adversarial Data: White-Box Optimization",
    "AML.T0043.001": "Craft Adversarial Data: Black-Box Optimization",
    "AML.T0043.002": "Craft Adversarial Data: Black-Box Transfer",
    "AML.T0043.004": "Craft Adversarial Data: Insert Backdoor Trigger",
}

OWASP_ML: Final[dict[str, str]] = {
    "ML01": "Input Manipulation Attack",
    "ML02": "Data Poisoning Attack",
    "ML03": "Model Inversion Attack",
    "ML04": "Membership Inference Attack",
    "ML05": "Model Theft",
    "ML06": "AI Supply Chain Attacks",
    "ML07": "Transfer Learning Attack",
    "ML08": "Model Skewing",
    "ML09": "Output Integrity Attack",
    "ML10": "Model Poisoning",
}


def atlas_url(technique: str) -> str:
    """Link to a technique's page on atlas.mitre.org (sub-techniques link to their parent page)."""
    return f"https://atlas.mitre.org/techniques/{technique}"


def owasp_url(entry: str) -> str:
    """Link to an OWASP ML Top 10 entry."""
    slugs = {
        "ML01": "ML01_2023-Input_Manipulation_Attack",
        "ML02": "ML02_2023-Data_Poisoning_Attack",
        "ML03": "ML03_2023-Model_Inversion_Attack",
        "ML04": "ML04_2023-Membership_Inference_Attack",
        "ML05": "ML05_2023-Model_Theft",
        "ML06": "ML06_2023-AI_Supply_Chain_Attacks",
        "ML07": "ML07_2023-Transfer_Learning_Attack",
        "ML08": "ML08_2023-Model_Skewing",
        "ML09": "ML09_2023-Output_Integrity_Attack",
        "ML10": "ML10_2023-Model_Poisoning",
    }
    return f"https://owasp.org/www-project-machine-learning-security-top-10/docs/{slugs.get(entry, '')}"


# ATLAS techniques and OWASP entries by what they mean, for findings whose ids depend on the measurement.
EVADE = "AML.T0015"
WHITE_BOX = "AML.T0043.000"
BLACK_BOX = "AML.T0043.001"
TRANSFER = "AML.T0043.002"
SUPPLY_CHAIN = "AML.T0010.003"
EMBED_MALWARE = "AML.T0018.002"
ML02, ML10 = "ML02", "ML10"
SCREEN_TRIGGERS = "Screen inputs at run time for triggers (STRIP, mlarmor.defenses.STRIP)."


@dataclass(frozen=True, slots=True)
class FindingKind:
    """One kind of finding: its id (or id prefix), family, the ids it cites, its rule, its mitigations.

    Attributes:
        id: The finding id; kinds with ``variants`` emit ``f"{id}.{variant}"`` (``evasion.reliability``)
            or ``f"{id}-{variant}"`` for ids declared with a trailing ``-`` (``integrity.file-``).
        family: The threat family.
        atlas: Every MITRE ATLAS technique its findings may cite.
        owasp: Every OWASP ML Top 10 entry its findings may cite.
        rule: How the severity is decided, in words.
        severity: The function that applies the rule (``None`` where the severity is fixed).
        fixed: The severity of every finding of this kind, when it does not depend on a measurement.
        mitigations: What to do, shown with findings above ``none``.
        variants: The sub-ids a kind has, with their fixed severity where there is one.
        open_variants: Any sub-id is allowed (``poisoning.<attack>`` for every registered attack).
        other_families: Families a finding of this kind may carry instead of ``family``.
    """

    id: str
    family: Family
    atlas: tuple[str, ...]
    owasp: tuple[str, ...]
    rule: str
    severity: Callable[..., Any] | None = None
    fixed: Severity | None = None
    mitigations: tuple[str, ...] = ()
    variants: Mapping[str, Severity | None] | None = None
    open_variants: bool = False
    other_families: tuple[Family, ...] = ()

    def ids(self) -> tuple[str, ...]:
        """Every finding id this kind emits (``<id>.*`` for open variants)."""
        if self.open_variants:
            return (f"{self.id}.*",)
        if not self.variants:
            return (self.id,)
        return tuple(self._variant_id(v) for v in self.variants)

    def emits(self, finding_id: str) -> bool:
        """Whether ``finding_id`` is one of this kind's."""
        if self.open_variants:
            return finding_id.startswith(self.id + ".") and len(finding_id) > len(self.id) + 1
        return finding_id in self.ids()

    def fixed_severity(self, variant: str | None = None) -> Severity | None:
        """The kind's (or the variant's) fixed severity; ``None`` when a rule decides it."""
        if variant is not None and self.variants:
            return self.variants.get(variant) or self.fixed
        return self.fixed

    def _variant_id(self, variant: str) -> str:
        return f"{self.id}{'' if self.id.endswith('-') else '.'}{variant}"

    def finding(
        self,
        *,
        title: str,
        severity: Severity,
        variant: str | None = None,
        family: Family | None = None,
        description: str = "",
        evidence: Mapping[str, Any] | None = None,
        location: Location | None = None,
        impact: float | None = None,
        likelihood: float | None = None,
        atlas: Iterable[str] | None = None,
        owasp: Iterable[str] | None = None,
        mitigations: Iterable[str] | None = None,
    ) -> Finding:
        """Build a finding of this kind.

        ``atlas`` and ``owasp`` narrow the declared ids (all of them by default) and must be among
        them; ``mitigations`` replaces the declared ones (pass ``[]`` for none).

        Raises:
            ValueError: For a variant or an ATLAS/OWASP id the kind does not declare (a bug in the
                caller, never the user's input).
        """
        declared = list(self.variants or {})
        has_variants = self.open_variants or bool(declared)
        if (variant is None) == has_variants or (
            variant is not None and not self.open_variants and variant not in declared
        ):
            raise ValueError(f"{self.id}: unknown variant {variant!r}; declared: {declared}")
        if family is not None and family not in (self.family, *self.other_families):
            raise ValueError(f"{self.id}: family {family} is not declared for it")
        fixed = self.fixed_severity(variant)
        if fixed is not None and severity != fixed:
            raise ValueError(f"{self.id}: its severity is always {fixed.label}, not {severity.label}")
        cited_atlas = self._narrow(self.atlas, atlas, "ATLAS")
        cited_owasp = self._narrow(self.owasp, owasp, "OWASP")
        return Finding(
            id=self.id if variant is None else self._variant_id(variant),
            family=family or self.family,
            title=title,
            severity=severity,
            description=description,
            likelihood=likelihood,
            impact=impact,
            evidence=dict(evidence or {}),
            location=location or Location(),
            atlas=list(cited_atlas),
            owasp=list(cited_owasp),
            mitigations=list(self.mitigations if mitigations is None else mitigations),
        )

    def _narrow(self, declared: tuple[str, ...], chosen: Iterable[str] | None, what: str) -> tuple[str, ...]:
        if chosen is None:
            return declared
        picked = tuple(chosen)
        unknown = [c for c in picked if c not in declared]
        if unknown:
            raise ValueError(f"{self.id}: {what} ids {unknown} are not declared for it ({list(declared)})")
        return picked


EVASION_ACCURACY_LOSS: Final = FindingKind(
    id="evasion.accuracy-loss",
    family=Family.EVASION,
    atlas=(WHITE_BOX, BLACK_BOX, TRANSFER, EVADE),
    owasp=("ML01",),
    rule="Accuracy lost within the declared threat budget: ≥ 50 points critical, ≥ 25 high, ≥ 10 medium, "
    "> 0 low. Cites the white-box, black-box or transfer technique of the attack run.",
    severity=rules.accuracy_loss,
    mitigations=(
        "Adversarial training (TRADES or PGD-AT) at the declared budget: `mlarmor harden --method "
        "adversarial-training --eps <budget>`.",
        "An input detector (feature squeezing) in front of the model, fitted on clean data: `mlarmor "
        "harden --method feature-squeezing` (a tripwire, not robustness: adaptive attacks evade it).",
        "For exposed endpoints: return labels only and enforce per-caller query budgets, which slow down "
        "score- and decision-based black-box attacks.",
    ),
)

RELIABILITY: Final = FindingKind(
    id="evasion.reliability",
    family=Family.EVASION,
    atlas=(WHITE_BOX,),
    owasp=("ML01",),
    rule="A sign that the evasion evaluation is weak; each check has a fixed severity.",
    variants={
        "probability-outputs": Severity.MEDIUM,
        "nondeterministic": Severity.MEDIUM,
        "zero-gradients": Severity.MEDIUM,
        "nan-gradients": Severity.HIGH,
        "no-accuracy-drop-at-large-eps": Severity.MEDIUM,
        "black-box-beats-white-box": Severity.MEDIUM,
    },
)

EVASION_DETECTOR: Final = FindingKind(
    id="evasion.detector",
    family=Family.EVASION,
    atlas=("AML.T0043",),
    owasp=("ML01",),
    rule="Accuracy points that adversarial examples the detector misses still cost: ≥ 50 critical, ≥ 25 "
    "high, ≥ 10 medium, > 0 low.",
    severity=rules.accuracy_loss,
    mitigations=(
        "Combine the detector with adversarial training (mlarmor harden --method adversarial-training).",
        "Log and rate-limit flagged inputs at the serving gateway.",
    ),
)

MEMBERSHIP_INFERENCE: Final = FindingKind(
    id="privacy.membership-inference",
    family=Family.INFERENCE,
    atlas=("AML.T0024.000",),
    owasp=("ML04",),
    rule="The strongest attack, on the lower ends of the 95% intervals and at FPRs the non-members can "
    "measure (1000 for 0.1%, 100 for 1%): TPR ≥ 10% at 0.1% FPR critical; ≥ 2% or AUC ≥ 0.75 high; ≥ 5% "
    "at 1% FPR or AUC ≥ 0.6 medium; AUC ≥ 0.55 low.",
    severity=rules.membership,
    mitigations=(
        "Train with differential privacy (DP-SGD) at a small ε and re-audit: `mlarmor harden --method dp`.",
        "Return labels or rounded top-k scores instead of full probability vectors (output obfuscation).",
        "Regularise and stop early: the gap between training and held-out loss is what these attacks read.",
    ),
)

ATTRIBUTE_INFERENCE: Final = FindingKind(
    id="privacy.attribute-inference",
    family=Family.INFERENCE,
    atlas=("AML.T0024.001",),
    owasp=("ML03",),
    rule="Lift over imputation: none under 0.02 or when its 95% interval reaches 0; ≥ 0.4 critical, "
    "≥ 0.2 high, ≥ 0.1 medium, else low.",
    severity=rules.attribute_lift,
    mitigations=(
        "Train with differential privacy (DP-SGD) at a small ε and re-audit: `mlarmor harden --method dp`.",
        "Return labels or rounded top-k scores instead of full probability vectors (output obfuscation).",
        "Do not publish the model's output for a record together with the record's other attributes.",
        "Leave the sensitive feature out of the model's inputs where the task allows it.",
    ),
)

MODEL_INVERSION: Final = FindingKind(
    id="privacy.model-inversion",
    family=Family.INFERENCE,
    atlas=("AML.T0024.001",),
    owasp=("ML03",),
    rule="≥ 80% of classes identifiable and similarity gain ≥ 0.3 high; 50% and 0.2 medium; gain > 0.1 low.",
    severity=rules.inversion,
    mitigations=(
        "Serve labels or rounded top-k scores instead of logits or full probability vectors.",
        "Train with differential privacy (`mlarmor harden --method dp`) and re-run the inversion.",
    ),
)

DP_TRAINING: Final = FindingKind(
    id="privacy.dp-training",
    family=Family.INFERENCE,
    atlas=("AML.T0024.000", "AML.T0024.001"),
    owasp=("ML03", "ML04"),
    rule="ε spent ≤ 1 none, ≤ 10 low, above medium; δ ≥ 1/n at least medium.",
    severity=rules.dp_training,
    mitigations=(
        "Train again with a smaller --epsilon (1 or below is strong) and a --delta below 1/n.",
        "Measure the leakage that remains: mlarmor privacy with a recipe that trains with DP too.",
    ),
)

POISONING_SIMULATION: Final = FindingKind(
    id="poisoning",
    family=Family.POISONING,
    atlas=("AML.T0020",),
    owasp=(ML02, ML10),
    rule="The worst poisoned fraction: attack-success gain ≥ 0.9 at ≤ 1% poisoned critical; ≥ 0.5 at "
    "≤ 5% high; ≥ 0.5, or ≥ 5 points of accuracy lost, medium; ≥ 0.2 low. One id per attack "
    "(poisoning.badnets, ...); a backdoor attack's finding is in the backdoor family, cites ML10 and adds "
    "trigger screening to the mitigations.",
    severity=rules.poisoning_curve,
    mitigations=(
        "Know where each training sample comes from; sign and verify datasets (mlarmor sign/verify).",
        "Inspect the training data for poisoned samples before training: mlarmor poisoning inspect-data.",
        "Inspect trained models for backdoors before deployment: mlarmor poisoning inspect-model.",
    ),
    open_variants=True,
    other_families=(Family.BACKDOOR,),
)

BACKDOOR_TRIGGER: Final = FindingKind(
    id="backdoor.trigger",
    family=Family.BACKDOOR,
    atlas=("AML.T0018", "AML.T0020"),
    owasp=(ML10, ML02),
    rule="A backdoor found by model inspection (anomaly index above the threshold) high, else none.",
    severity=rules.backdoor,
    mitigations=(
        "Do not deploy the model; retrain it on vetted data (mlarmor poisoning inspect-data, sanitize).",
        "If retraining is impossible, repair it: --mitigate unlearning or fine-pruning, and re-inspect.",
        SCREEN_TRIGGERS,
    ),
)

SUSPICIOUS_SAMPLES: Final = FindingKind(
    id="poisoning.suspicious-samples",
    family=Family.POISONING,
    atlas=("AML.T0020",),
    owasp=(ML02, ML10),
    rule="Flagged rows that carry the recovered trigger, or with a backdoor found, high; ≥ 5 rows and "
    "≥ 1% medium; fewer low. ML10 when a backdoor is involved.",
    severity=rules.suspicious_samples,
    mitigations=(
        "Review the flagged samples and their sources; remove the poisoned ones and retrain "
        "(mlarmor poisoning sanitize).",
        "Track the provenance of training data; sign vetted datasets (mlarmor sign).",
    ),
)

SANITIZE: Final = FindingKind(
    id="poisoning.sanitize",
    family=Family.POISONING,
    atlas=("AML.T0020",),
    owasp=(ML02,),
    rule="Attack success ≥ 20% after dropping the rows and retraining medium, else none.",
    severity=rules.residual_backdoor,
    mitigations=("Inspect the retrained model: mlarmor poisoning inspect-model.",),
)

_INTEGRITY_MITIGATION = (
    "Do not load this model. Obtain it again from its trusted source, or sign it again only after "
    "reviewing the change and scanning it with 'mlarmor scan'."
)

INTEGRITY_FILE: Final = FindingKind(
    id="integrity.file-",
    family=Family.INTEGRITY,
    atlas=(SUPPLY_CHAIN, EMBED_MALWARE),
    owasp=("ML06",),
    rule="A changed file critical, any other difference from the signed manifest high. Cites Embed "
    "Malware for added and changed files.",
    mitigations=(_INTEGRITY_MITIGATION,),
    variants={
        "added": Severity.HIGH,
        "removed": Severity.HIGH,
        "changed": Severity.CRITICAL,
        "renamed": Severity.HIGH,
    },
)

INTEGRITY_WRONG_KEY: Final = FindingKind(
    id="integrity.wrong-key",
    family=Family.INTEGRITY,
    atlas=(SUPPLY_CHAIN,),
    owasp=("ML06",),
    rule="Always critical: the manifest is not authenticated by the given key.",
    fixed=Severity.CRITICAL,
    mitigations=(
        "Verify with the publisher's public key; if that is the key used, treat the model as tampered and "
        "obtain it again from its trusted source.",
    ),
)

INTEGRITY_BAD_SIGNATURE: Final = FindingKind(
    id="integrity.bad-signature",
    family=Family.INTEGRITY,
    atlas=(SUPPLY_CHAIN,),
    owasp=("ML06",),
    rule="Always critical: the manifest or the signature was altered after signing.",
    fixed=Severity.CRITICAL,
    mitigations=(_INTEGRITY_MITIGATION,),
)

FINDINGS: Final[tuple[FindingKind, ...]] = (
    EVASION_ACCURACY_LOSS,
    RELIABILITY,
    EVASION_DETECTOR,
    MEMBERSHIP_INFERENCE,
    ATTRIBUTE_INFERENCE,
    MODEL_INVERSION,
    DP_TRAINING,
    POISONING_SIMULATION,
    BACKDOOR_TRIGGER,
    SUSPICIOUS_SAMPLES,
    SANITIZE,
    INTEGRITY_FILE,
    INTEGRITY_WRONG_KEY,
    INTEGRITY_BAD_SIGNATURE,
)
"""Every kind of finding about a model's behaviour, its data or its signed files."""


def kind(finding_id: str) -> FindingKind:
    """The kind that emits ``finding_id``.

    Raises:
        KeyError: If no kind emits it (scanner findings are in :mod:`mlarmor.scan.rules`).
    """
    exact = [k for k in FINDINGS if not k.open_variants and k.emits(finding_id)]
    found = exact or [k for k in FINDINGS if k.emits(finding_id)]
    if not found:
        raise KeyError(finding_id)
    return found[0]


def to_markdown() -> str:
    """The catalogue as the table of ``docs/findings.md`` (a test keeps that page in step)."""
    lines = [
        "| finding id | family | MITRE ATLAS | OWASP ML | severity rule | mitigations |",
        "|---|---|---|---|---|---|",
    ]
    for k in FINDINGS:
        families = ", ".join(f.value for f in (k.family, *k.other_families))
        fixed = ""
        if k.variants and not k.fixed:
            levels = [f"{v}: {sev.label}" for v, sev in k.variants.items() if sev is not None]
            fixed = " " + "; ".join(levels) + "."
        lines.append(
            f"| {', '.join(f'`{i}`' for i in k.ids())} | {families} | {', '.join(k.atlas)} | "
            f"{', '.join(k.owasp)} | {k.rule}{fixed} | {' '.join(f'• {m}' for m in k.mitigations) or '—'} |"
        )
    return "\n".join(lines) + "\n"
