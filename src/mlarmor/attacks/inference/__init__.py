"""Inference attacks and the metrics of a privacy audit: who was in the training data."""

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
    "EpsilonBound",
    "MembershipMetrics",
    "auc",
    "balanced_accuracy",
    "epsilon_lower_bound",
    "membership_metrics",
    "most_exposed",
    "roc_curve",
    "tpr_at_fpr",
]
