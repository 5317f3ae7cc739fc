"""Inference attacks and the metrics of a privacy audit: who was in the training data, and what about them."""

from mlarmor.attacks.inference.attribute import (
    AttributeResult,
    attribute_finding,
    attribute_inference,
    attribute_severity,
)
from mlarmor.attacks.inference.inversion import (
    InversionResult,
    Objective,
    class_mean_similarity,
    invert_classes,
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

__all__ = [
    "AttributeResult",
    "EpsilonBound",
    "InversionResult",
    "MembershipMetrics",
    "Objective",
    "attribute_finding",
    "attribute_inference",
    "attribute_severity",
    "auc",
    "balanced_accuracy",
    "class_mean_similarity",
    "epsilon_lower_bound",
    "invert_classes",
    "membership_metrics",
    "most_exposed",
    "roc_curve",
    "tpr_at_fpr",
]
