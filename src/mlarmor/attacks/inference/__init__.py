"""Inference attacks and the metrics of a privacy audit: who was in the training data, and what about them.

Membership inference: frozen configurations registered by name (``create("lira", online=False)``),
one call each, ``attack.score(evidence)`` on a :class:`MembershipEvidence`, reported under
``attack.label``. :data:`MEMBERSHIP_ATTACKS` holds every configuration an audit runs, by label.
"""

from mlarmor.attacks.inference.attribute import (
    AttributeResult,
    attribute_inference,
)
from mlarmor.attacks.inference.inversion import (
    InversionResult,
    Objective,
    class_mean_similarity,
    invert_classes,
)
from mlarmor.attacks.inference.label_only import LabelOnlyAttack
from mlarmor.attacks.inference.lira import LiRA
from mlarmor.attacks.inference.membership import (
    MembershipAttack,
    MembershipEvidence,
    by_label,
    default_attacks,
)
from mlarmor.attacks.inference.metrics import (
    EpsilonBound,
    MembershipMetrics,
    auc,
    balanced_accuracy,
    epsilon_lower_bound,
    membership_metrics,
    most_exposed,
    roc_curve,
    tpr_at_fpr,
)
from mlarmor.attacks.inference.rmia import RMIA
from mlarmor.attacks.inference.shadow import ShadowModelAttack
from mlarmor.attacks.inference.threshold import ThresholdAttack

MEMBERSHIP_ATTACKS: dict[str, MembershipAttack] = by_label()
"""Every membership attack an audit can run, by the label it is reported under (``--attack``)."""

__all__ = [
    "MEMBERSHIP_ATTACKS",
    "RMIA",
    "AttributeResult",
    "EpsilonBound",
    "InversionResult",
    "LabelOnlyAttack",
    "LiRA",
    "MembershipAttack",
    "MembershipEvidence",
    "MembershipMetrics",
    "Objective",
    "ShadowModelAttack",
    "ThresholdAttack",
    "attribute_inference",
    "auc",
    "balanced_accuracy",
    "by_label",
    "class_mean_similarity",
    "default_attacks",
    "epsilon_lower_bound",
    "invert_classes",
    "membership_metrics",
    "most_exposed",
    "roc_curve",
    "tpr_at_fpr",
]
