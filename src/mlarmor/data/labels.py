"""Labels matched to the model's own classes, so that a dataset's labels mean what the model means.

A CSV with string labels is numbered from its own sorted values: a test file that lacks one class,
or a model whose classes are ``[1, 2, 5]``, would otherwise be scored against the wrong columns and
give a silently wrong accuracy. :func:`align_labels` renumbers the dataset to the model's class
order when the model knows its classes (a scikit-learn model's ``classes_``), and refuses labels the
model does not have.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from numbers import Integral
from typing import cast

import numpy as np

from mlarmor._validation import is_int
from mlarmor.data.dataset import Dataset
from mlarmor.errors import InvalidParameterError, invalid_parameter

__all__ = ["LabelAlignment", "align_labels", "class_index", "same_classes"]


@dataclass(frozen=True, slots=True, eq=False)
class LabelAlignment:
    """A dataset renumbered to a model's classes.

    Attributes:
        dataset: The dataset with ``y`` as the model's class indices and the model's class names.
        mapping: Each label of the original dataset (by name) to the model's class index.
        basis: ``"names"`` when the labels matched the model's classes by name, ``"codes"`` when the
            dataset's integer codes did (a demo set whose classes have descriptive names).
    """

    dataset: Dataset
    mapping: dict[str, int]
    basis: str


def align_labels(dataset: Dataset, model_labels: Sequence[object]) -> LabelAlignment:
    """Renumber ``dataset``'s labels to ``model_labels``, the model's classes in output order.

    Each label present in the data is matched by name to a model class. When no name matches but
    every integer code does (labels stored as codes with descriptive class names), the codes are
    used. Anything else is refused: a partial match, or a label that differs only in case or spaces,
    would give wrong numbers.

    Raises:
        InvalidParameterError: When a label of the data is not a class of the model.
    """
    labels = tuple(str(label) for label in model_labels)
    index = {label: i for i, label in enumerate(labels)}
    names = dataset.class_names or tuple(str(i) for i in range(dataset.num_classes))
    present = sorted({int(c) for c in np.unique(dataset.y)})
    by_name = {c: index.get(names[c]) for c in present}
    by_code = {c: index.get(str(c)) for c in present}
    if all(v is not None for v in by_name.values()):
        chosen, basis = by_name, "names"
    elif all(v is None for v in by_name.values()) and all(v is not None for v in by_code.values()):
        chosen, basis = by_code, "codes"
    else:
        unknown = [names[c] for c in present if by_name[c] is None]
        close = {u: label for u in unknown for label in labels if label.strip().lower() == u.strip().lower()}
        hint = (
            " Labels differ only in case or spaces: "
            + ", ".join(f"{u!r} vs {m!r}" for u, m in close.items())
            + "; fix them in the data."
            if close
            else " Check that the data belongs to this model, and its label column."
        )
        raise InvalidParameterError(
            f"The labels {unknown} of {dataset.name!r} are not classes of the model, whose classes are "
            f"{list(labels)}.{hint}"
        )
    mapping = {names[c]: int(v) for c, v in chosen.items() if v is not None}
    table = np.zeros(len(names), dtype=np.int64)
    for c, v in chosen.items():
        table[c] = int(v or 0)
    renumbered = replace(dataset, y=table[dataset.y], class_names=labels)
    return LabelAlignment(renumbered, mapping, basis)


def class_index(
    value: object, class_names: Sequence[str] | None, num_classes: int, name: str, owner: str
) -> int:
    """A class given by index or by name (``"spam"``) as its index in ``[0, num_classes)``.

    A string is looked up in ``class_names`` first; a string of digits that is no class name is read
    as an index. An unknown name is refused with the known ones listed.

    Raises:
        InvalidParameterError: For an unknown name or an index out of range.
    """
    names = tuple(class_names or ())
    if names == tuple(str(i) for i in range(len(names))):
        names = ()  # the default names "0".."C-1" are the indices themselves
    expected = f"a class index in [0, {num_classes})" + (
        f" or one of the class names {list(names)}" if names else ""
    )
    if isinstance(value, str):
        text = value.strip()
        if text in names:
            return names.index(text)
        close = [n for n in names if n.strip().lower() == text.lower()]
        if text.isdigit() and int(text) < num_classes:
            return int(text)
        hint = f"did you mean {close[0]!r}? Class names match exactly" if close else ""
        raise invalid_parameter(name, owner, expected, value, hint=hint)
    if is_int(value) and 0 <= int(cast(Integral, value)) < num_classes:
        return int(cast(Integral, value))
    raise invalid_parameter(name, owner, expected, value)


def same_classes(dataset: Dataset, reference: Dataset) -> Dataset:
    """``dataset`` renumbered to ``reference``'s classes by name, when both name their classes.

    Two tables of one source are numbered each from its own sorted labels: a test file that lacks
    a class would otherwise mean other classes by the same numbers.

    Raises:
        InvalidParameterError: When ``dataset`` has a label ``reference`` lacks.
    """
    if reference.class_names is None or dataset.class_names == reference.class_names:
        return dataset
    return align_labels(dataset, reference.class_names).dataset
