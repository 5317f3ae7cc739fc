"""The verbs' one rule for labels: renumber the data to the model's classes when it knows them (private)."""

from __future__ import annotations

from mlarmor.data import Dataset
from mlarmor.data.labels import align_labels

__all__ = ["matched"]


def matched(dataset: Dataset, target: object) -> tuple[Dataset, dict[str, int] | None]:
    """``dataset`` in the target's class order, and the mapping used (``None``: the target has no names)."""
    labels = getattr(target, "class_labels", None)
    if labels is None:
        return dataset, None
    aligned = align_labels(dataset, labels)
    return aligned.dataset, aligned.mapping
