"""The privacy audit verb: membership inference, attribute inference and model inversion in one call.

:func:`audit_privacy` is the function behind ``mlarmor privacy``. It runs the membership audit
(:func:`~mlarmor.assess.privacy.audit_membership`, with reference models trained by the recipe),
attribute inference of each sensitive feature and, on request, model inversion, optionally behind
output obfuscation (top-k, rounding), and returns a frozen :class:`PrivacyResult` whose
:meth:`PrivacyResult.to_report` is the command's ``kind="privacy"`` report. Severity rules are in
:mod:`mlarmor.risk.severity` (``membership``, ``attribute_lift``, ``inversion``).

Example:
    >>> from mlarmor import audit_privacy
    >>> result = audit_privacy(target, members, nonmembers, reference_models=4)  # doctest: +SKIP
    >>> result.membership.best.name, result.to_report().severity  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from mlarmor._progress import Progress, silent, step
from mlarmor._validation import check_choice, check_int, check_seed
from mlarmor.assess._labels import matched
from mlarmor.assess.privacy import (
    PrivacyAudit,
    attribute_finding,
    audit_membership,
    inversion_finding,
    to_privacy_report,
)
from mlarmor.data import Dataset
from mlarmor.errors import invalid_parameter
from mlarmor.schema import Report
from mlarmor.schema.sections import MembershipResult, PrivacySection
from mlarmor.targets import Target

if TYPE_CHECKING:
    from mlarmor.attacks.inference.attribute import AttributeResult
    from mlarmor.attacks.inference.inversion import InversionResult
    from mlarmor.targets.recipe import Recipe

__all__ = ["PrivacyResult", "audit_privacy"]

_OWNER = "audit_privacy"
_ACCESS = ("scores", "labels")


@dataclass(frozen=True, slots=True, eq=False)
class PrivacyResult:
    """The outcome of :func:`audit_privacy`.

    Attributes:
        membership: The membership audit (every attack's scores and metrics, the strongest first
            in :attr:`~mlarmor.assess.privacy.PrivacyAudit.best`).
        attributes: One attribute-inference result per sensitive feature.
        inversion: The model inversion, when it ran.
        label_mapping: Each label of the data to the model's class index, when the model names its
            classes (``None`` otherwise).
    """

    membership: PrivacyAudit
    attributes: tuple[AttributeResult, ...] = ()
    inversion: InversionResult | None = None
    label_mapping: Mapping[str, int] | None = None

    def to_report(self, *, metadata: Mapping[str, Any] | None = None) -> Report:
        """The ``kind="privacy"`` report: per-attack metrics under ``attacks``, one finding per part."""
        audit = self.membership
        report = to_privacy_report(audit, metadata=metadata)
        attacks = dict(report.attacks or {})
        findings = list(report.findings)
        meta = dict(report.metadata)
        mapping = None if self.label_mapping is None else dict(self.label_mapping)
        if mapping is not None:
            meta.setdefault("label_mapping", mapping)
        if self.attributes:
            attacks.update({f"attribute:{r.feature}": r.to_dict() for r in self.attributes})
            findings += [attribute_finding(r, target_name=audit.target_name) for r in self.attributes]
            meta["sensitive"] = [r.feature for r in self.attributes]
        if self.inversion is not None:
            attacks["inversion"] = self.inversion.to_dict()
            findings.append(inversion_finding(self.inversion, target_name=audit.target_name))
        section = PrivacySection(
            access=audit.access,  # type: ignore[arg-type]  # "scores" or "labels"
            n_members=audit.n_members,
            n_nonmembers=audit.n_nonmembers,
            n_reference=audit.n_reference,
            best_attack=audit.best.name,
            attacks={
                o.name: MembershipResult(
                    auc=o.metrics.auc,
                    auc_ci=o.metrics.auc_ci,
                    tpr_at_fpr=dict(o.metrics.tpr_at_fpr),
                    tpr_at_fpr_ci=o.metrics.tpr_at_fpr_ci,
                    unmeasured_fprs=dict(o.metrics.unmeasured_fprs),
                    epsilon_lower_bound=o.metrics.epsilon.epsilon,
                )
                for o in audit.outcomes
            },
            attributes=[r.feature for r in self.attributes],
            inversion=self.inversion is not None,
            label_mapping=mapping,
        )
        sections = report.sections.model_copy(update={"privacy": section})
        return report.model_copy(
            update={"attacks": attacks, "findings": findings, "metadata": meta, "sections": sections}
        )


def audit_privacy(
    target: Target,
    members: Dataset,
    nonmembers: Dataset,
    *,
    recipe: Recipe | None = None,
    reference_models: int = 16,
    access: Literal["scores", "labels"] = "scores",
    attacks: Sequence[str] | None = None,
    top_k: int | None = None,
    decimals: int | None = None,
    augment: int = 0,
    sensitive: Sequence[int | str] = (),
    invert: bool = False,
    seed: int = 0,
    workers: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    delta: float = 0.0,
    progress: Progress | None = None,
) -> PrivacyResult:
    """Audit what ``target`` reveals about ``members`` (its training data) against ``nonmembers``.

    Args:
        target: The model. ``access="scores"`` needs class scores; ``"labels"`` works on any model.
        members: The model's training data.
        nonmembers: Held-out data from the same population, never seen in training.
        recipe: How to train a model like the target, for the reference models; scikit-learn
            models are cloned when ``None``. Not used with ``reference_models=0`` or labels only.
        reference_models: Reference models, even (each example is in exactly half of them).
        access: What the attacker sees: ``"scores"`` or ``"labels"``.
        attacks: Attacks to run, by the label they are reported under
            (:data:`mlarmor.attacks.inference.MEMBERSHIP_ATTACKS`); all that apply when ``None``.
        top_k: Audit the model behind output obfuscation: only the ``top_k`` largest scores.
        decimals: Audit the model behind output obfuscation: scores rounded to ``decimals``.
        augment: LiRA's query augmentation: shifted copies of each image queried too (0-8).
        sensitive: Sensitive features (flat indices or column names): attribute inference of each
            on the members, learning from the non-members, with and without the model.
        invert: Model inversion (PyTorch models): one representative per class.
        seed: Seed of the reference splits, their training and the attacks.
        workers: Processes training reference models (default: one per CPU).
        cache_dir: Cache of reference-model outputs (re-runs reuse them); none when ``None``.
        delta: δ of the empirical ε lower bound.
        progress: Receives the steps and the reference models' progress.

    Raises:
        InvalidParameterError: For a bad parameter, a sensitive feature the data does not have, or
            data that does not fit the target.
    """
    from mlarmor.attacks.inference import MEMBERSHIP_ATTACKS

    check_choice(access, "access", _OWNER, _ACCESS)
    for name in attacks or ():
        check_choice(name, "attack", _OWNER, tuple(MEMBERSHIP_ATTACKS))
    check_int(reference_models, "reference_models", _OWNER, low=0)
    if reference_models % 2:
        raise invalid_parameter(
            "reference_models", _OWNER, "an even number >= 0", reference_models,
            hint="each example is in exactly half of the reference models: use e.g. 16",
        )  # fmt: skip
    if workers is not None:
        check_int(workers, "workers", _OWNER)
    check_seed(seed, _OWNER)
    members, member_mapping = matched(members, target)
    nonmembers, nonmember_mapping = matched(nonmembers, target)
    mapping = None if member_mapping is None else {**member_mapping, **(nonmember_mapping or {})}
    report = progress or silent
    served = target
    if top_k is not None or decimals is not None:
        from mlarmor.defenses.runtime.obfuscation import ObfuscatedTarget

        # The recipe still trains plain reference models: the attacker models the training, and the
        # wrapper is what the deployed endpoint returns.
        served = ObfuscatedTarget(target, top_k=top_k, decimals=decimals)
    n_reference = reference_models if access == "scores" else 0
    if n_reference > 0 and recipe is None:
        from mlarmor.targets.recipe import recipe_for

        recipe = recipe_for(target, num_classes=target.num_classes)
    attributes = _attributes(served, members, nonmembers, sensitive, seed, access, report)
    inversion = None
    if invert:
        from mlarmor.attacks.inference.inversion import invert_classes

        with step(report, "model inversion: reconstructing one representative per class"):
            inversion = invert_classes(target, seed=seed, reference=(members.x, members.y))  # type: ignore[arg-type]
    name = "reference models"
    membership = audit_membership(
        served, members, nonmembers, recipe=recipe, n_reference=n_reference, access=access,
        attacks=[MEMBERSHIP_ATTACKS[a] for a in attacks] if attacks else None, seed=seed, workers=workers,
        cache_dir=cache_dir, progress=lambda done, total: report(name, done, total), delta=delta,
        augmentations=augment,
    )  # fmt: skip
    return PrivacyResult(membership, attributes, inversion, label_mapping=mapping)


def _attributes(
    served: Target,
    members: Dataset,
    nonmembers: Dataset,
    sensitive: Sequence[int | str],
    seed: int,
    access: Literal["scores", "labels"],
    progress: Progress,
) -> tuple[AttributeResult, ...]:
    """Attribute inference of each sensitive feature, once each.

    It runs before the membership audit, so that a wrong feature fails at once, not after it.
    """
    from mlarmor.attacks.inference.attribute import attribute_inference

    found: list[AttributeResult] = []
    for item in sensitive:
        with step(progress, f"attribute inference of {item}"):
            result = attribute_inference(served, members, item, known=nonmembers, seed=seed, access=access)
        if all(r.index != result.index for r in found):
            found.append(result)
    return tuple(found)
