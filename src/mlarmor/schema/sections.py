"""The typed sections of a report: one per kind of run, so that one report can hold several.

A single-verb report fills one section beside the flat fields it has always had (``files``,
``clean_accuracy``, ``attacks``, ``suspicious_indices``, …); an assessment that runs several verbs
fills one section per verb. Sections carry the headline figures as typed fields; the long per-item
lists (every file, every training row's score, the per-attack detail) stay in the flat fields and
are not repeated here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Accuracies",
    "CurvePoint",
    "DetectorRates",
    "EpsResult",
    "EvasionSection",
    "HardenSection",
    "MembershipResult",
    "PoisoningSection",
    "PrivacyBudget",
    "PrivacySection",
    "ScanSection",
    "Sections",
    "TargetInfo",
]

_FROZEN = ConfigDict(frozen=True, extra="forbid")


class TargetInfo(BaseModel):
    """What was assessed: the model and the data, as the user named them."""

    model_config = _FROZEN

    name: str = Field(description="The model (file name, file.py:factory or URL).")
    data: str | None = Field(default=None, description="The dataset the run used.")


class ScanSection(BaseModel):
    """A scan of model files (the files themselves are the report's ``files``)."""

    model_config = _FROZEN

    paths: list[str] = Field(description="The paths given.")
    files: int = Field(description="Files scanned.")
    by_severity: dict[str, int] = Field(description="Files at each verdict severity.")
    unreadable: int = Field(default=0, description="Files that could not be read (see ``errors``).")


class EpsResult(BaseModel):
    """An evasion attack's outcome at one budget ε."""

    model_config = _FROZEN

    robust_accuracy: float
    success_rate: float | None = Field(description="Share of correctly classified samples fooled.")
    median_norm: float | None = Field(description="Median perturbation norm of the successful samples.")
    mean_queries: float | None = None
    total_queries: int | None = None


class FeatureLimit(BaseModel):
    """One feature of a table: its range, what one unit of ε means on it, and its constraints."""

    model_config = _FROZEN

    name: str
    low: float = Field(description="Lowest value an adversarial example may take (data units).")
    high: float = Field(description="Highest value an adversarial example may take (data units).")
    eps_scale: float = Field(description="Data units per unit of ε (1 for absolute ε).")
    budget: float = Field(
        description="The threat budget on this feature, in data units: budget_eps * eps_scale."
    )
    immutable: bool
    integer: bool
    eps_exceeds_range: bool = Field(description="Whether the budget is wider than the feature's whole range.")


class EvasionSection(BaseModel):
    """Clean and robust accuracy of a model under one evasion attack, per ε."""

    model_config = _FROZEN

    attack: str
    requested_attack: str = Field(
        description="The attack asked for: 'auto' falls back to a black-box attack on targets without "
        "gradients (then it differs from 'attack')."
    )
    capability: Literal["gradients", "scores", "labels"] = Field(
        description="What the attack needed: gradients (white-box), scores or labels (black-box)."
    )
    norm: Literal["linf", "l2"]
    budget_eps: float = Field(description="The threat budget that sets the severity.")
    n_samples: int
    seed: int
    clean_accuracy: float
    clean_accuracy_ci: tuple[float, float] | None = Field(
        default=None, description="95% Clopper-Pearson interval of the clean accuracy."
    )
    robust_accuracy: dict[str, float] = Field(description="Accuracy under attack, keyed by ε.")
    robust_accuracy_ci: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="95% Clopper-Pearson interval of each robust accuracy, keyed by ε."
    )
    per_eps: dict[str, EpsResult]
    seconds: float
    eps_unit: Literal["absolute", "range", "std"] = Field(
        default="absolute",
        description="Unit of ε and of the norms: input units, a fraction of each feature's range, or "
        "each feature's standard deviations.",
    )
    features: list[FeatureLimit] | None = Field(
        default=None, description="For flat features (tables): each feature's limits and budget."
    )
    label_mapping: dict[str, int] | None = Field(
        default=None,
        description="Each label of the data to the model's class index, when the model names its classes.",
    )


class Accuracies(BaseModel):
    """Clean accuracy and, where measured, robust accuracy by ε."""

    model_config = _FROZEN

    clean_accuracy: float | None = None
    robust_accuracy: dict[str, float] | None = None


class DetectorRates(BaseModel):
    """How well an input detector separates adversarial from clean inputs."""

    model_config = _FROZEN

    detection_rate: float
    false_alarm_rate: float
    auc: float
    threshold: float
    n_clean: int
    n_adversarial: int
    detection_rate_ci: tuple[float, float] | None = Field(
        default=None, description="95% Clopper-Pearson interval of the detection rate."
    )
    false_alarm_rate_ci: tuple[float, float] | None = Field(
        default=None, description="95% Clopper-Pearson interval of the false-alarm rate."
    )


class PrivacyBudget(BaseModel):
    """What a differentially private training run spent."""

    model_config = _FROZEN

    target_epsilon: float
    epsilon_spent: float
    delta: float
    noise_multiplier: float
    max_grad_norm: float
    epochs: int
    steps: int
    sample_rate: float
    accountant: str


class HardenSection(BaseModel):
    """A hardening run and its effect on held-out data."""

    model_config = _FROZEN

    method: Literal["adversarial-training", "feature-squeezing", "dp"]
    params: dict[str, Any] = Field(default_factory=dict)
    train_samples: int
    train_seconds: float | None = None
    before: Accuracies
    after: Accuracies
    detector: DetectorRates | None = None
    dp: PrivacyBudget | None = None
    saved: str | None = Field(default=None, description="Where the hardened model or detector was written.")
    label_mapping: dict[str, int] | None = Field(
        default=None,
        description="Each label of the data to the model's class index, when the model names its classes.",
    )


class MembershipResult(BaseModel):
    """One membership-inference attack's success."""

    model_config = _FROZEN

    auc: float
    auc_ci: tuple[float, float] | None = Field(
        default=None, description="95% interval of the AUC (Hanley-McNeil standard error)."
    )
    tpr_at_fpr: dict[str, float] = Field(
        description="TPR at each FPR level the sample can measure (at least ceil(1/FPR) non-members)."
    )
    tpr_at_fpr_ci: dict[str, tuple[float, float]] = Field(
        default_factory=dict, description="95% Clopper-Pearson interval of each TPR in tpr_at_fpr."
    )
    unmeasured_fprs: dict[str, int] = Field(
        default_factory=dict,
        description="FPR levels left out for too few non-members, each with the number it needs.",
    )
    epsilon_lower_bound: float = Field(description="The ε any DP guarantee of the training must exceed.")


class PrivacySection(BaseModel):
    """A privacy audit: membership inference, and attribute inference and inversion where run."""

    model_config = _FROZEN

    access: Literal["scores", "labels"]
    n_members: int
    n_nonmembers: int
    n_reference: int
    best_attack: str
    attacks: dict[str, MembershipResult]
    attributes: list[str] = Field(default_factory=list, description="Sensitive features audited.")
    inversion: bool = Field(default=False, description="Whether model inversion ran.")
    label_mapping: dict[str, int] | None = Field(
        default=None,
        description="Each label of the data to the model's class index, when the model names its classes.",
    )


class CurvePoint(BaseModel):
    """Clean accuracy and attack success after training on data poisoned at one fraction."""

    model_config = _FROZEN

    fraction: float
    clean_accuracy: float
    attack_success: float | None


class PoisoningSection(BaseModel):
    """A poisoning simulation, a backdoor inspection of a model or of its data, or a sanitisation."""

    model_config = _FROZEN

    mode: Literal["simulate", "inspect-model", "inspect-data", "sanitize"]
    curves: dict[str, list[CurvePoint]] | None = Field(
        default=None, description="simulate: per attack, the curve over the poisoned fractions."
    )
    infected: bool | None = None
    target_class: int | None = None
    anomaly_index: float | None = None
    n_samples: int | None = Field(default=None, description="Training rows inspected.")
    n_flagged: int | None = Field(default=None, description="Rows flagged as poisoned.")
    before: Accuracies | None = Field(default=None, description="A repair or retraining: before.")
    after: Accuracies | None = None
    attack_success: dict[str, float] | None = Field(
        default=None, description="Backdoor success ``before`` and ``after`` a repair or retraining."
    )


class Sections(BaseModel):
    """One optional section per kind of run."""

    model_config = _FROZEN

    scan: ScanSection | None = None
    evasion: EvasionSection | None = None
    harden: HardenSection | None = None
    privacy: PrivacySection | None = None
    poisoning: PoisoningSection | None = None
