"""Attribute inference: how much better a sensitive feature is guessed with the model than without it.

The attacker knows a record's other features and its label, and wants its sensitive feature (a
diagnosis, an income band). Guessing it from the other features alone is **imputation**, which
needs no model at all; what the model adds on top of imputation is what it *leaks* (Jayaraman and
Evans 2022). :func:`attribute_inference` therefore measures two learners trained on the attacker's
reference data (records from the same population with the sensitive feature known):

* the **baseline** (imputation): other features and the one-hot label → sensitive value;
* the **attack**: the same inputs plus what the target reveals about the record:

  - the target's output on the record itself, as an attacker sees it when a record's score is
    published or observed (Fredrikson et al. 2014; ``observed_output``);
  - the target's confidence in the record's true label with the sensitive feature set to each
    candidate value (every value of a categorical feature, a grid of quantiles of a numeric one):
    "the value that best explains the label" (Fredrikson et al. 2014, 2015; Yeom et al. 2018),
    with the prior-weighted posterior over candidates (categorical) or the best-explaining and
    the confidence-weighted value (numeric) as summaries.

Both learners are scikit-learn's histogram gradient boosting, classifier or regressor, with the
same settings. The score is the balanced accuracy for a categorical feature (chance is
``1 / number of values``) and R² for a numeric one; the **lift** is attack minus baseline, with a
95% paired-bootstrap interval over the attacked records. A model that leaks nothing about the
feature beyond what the other features and the label tell gives a lift of about 0.

Against a target that returns labels only, the signals are built from labels: the predicted label
of the record (one-hot) and, per candidate value, whether the prediction equals the true label.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from mlarmor._validation import check_fraction
from mlarmor.data import Dataset
from mlarmor.errors import InvalidParameterError, invalid_parameter
from mlarmor.targets.base import Target

__all__ = ["AttributeResult", "attribute_inference"]

Kind = Literal["categorical", "numeric"]
Access = Literal["scores", "labels"]

_OWNER = "attribute_inference"
_MAX_AUTO_VALUES = 20  # at most this many distinct integer values: categorical unless told otherwise
_MAX_VALUES = 100  # categorical=True: one query per value and record, so keep the candidates bounded
_GRID = 11  # quantiles 0, 0.1, ..., 1 of a numeric feature's known values
_MIN_TRAIN = 20
_MIN_TEST = 10
_BOOTSTRAP = 500
_ONE_THREAD_ROWS = 20_000


@dataclass(frozen=True)
class AttributeResult:
    """The outcome of :func:`attribute_inference` on one sensitive feature.

    Attributes:
        feature: The feature's name (its flat index as a string when the data has no names).
        index: Its flat index.
        kind: ``"categorical"`` (classifier, balanced accuracy) or ``"numeric"`` (regressor, R²).
        metric: ``"balanced_accuracy"`` or ``"r2"``.
        attack_score: The attack's score on the attacked records.
        baseline_score: The imputation baseline's score (no model access) on the same records.
        lift_interval: 95% paired-bootstrap interval of the lift.
        n_train: Records the attacker trained on (its reference data).
        n_test: Records attacked.
        access: What the attacker read from the target: ``"scores"`` or ``"labels"``.
        observed_output: Whether the attack used the target's output on the record itself.
        candidates: Values the sensitive feature was set to in the queries (sorted).
        queries: Inputs sent to the target.
        seconds: Wall-clock time.
        per_example: The attack's guess of the feature for each attacked record ``(n_test,)``.
        baseline_per_example: The baseline's guess for each attacked record.
        truth: The attacked records' true values.
        test_index: The attacked records' indices in ``data``.
    """

    feature: str
    index: int
    kind: Kind
    metric: Literal["balanced_accuracy", "r2"]
    attack_score: float
    baseline_score: float
    lift_interval: tuple[float, float]
    n_train: int
    n_test: int
    access: Access
    observed_output: bool
    candidates: np.ndarray
    queries: int
    seconds: float
    per_example: np.ndarray
    baseline_per_example: np.ndarray
    truth: np.ndarray
    test_index: np.ndarray

    @property
    def lift(self) -> float:
        """Attack score minus baseline score: what the model reveals beyond imputation."""
        return self.attack_score - self.baseline_score

    def exposed(self, k: int = 10) -> tuple[int, ...]:
        """Indices in ``data`` of up to ``k`` records the model exposes most.

        Categorical: records the attack gets right and the baseline wrong. Numeric: the largest
        reductions of the absolute error, where the attack's error is the smaller.
        """
        if self.kind == "categorical":
            gain = (self.per_example == self.truth).astype(float) - (
                self.baseline_per_example == self.truth
            ).astype(float)
        else:
            gain = np.abs(self.baseline_per_example - self.truth) - np.abs(self.per_example - self.truth)
        order = np.argsort(-gain, kind="stable")
        return tuple(int(self.test_index[i]) for i in order[:k] if gain[i] > 0)

    def to_dict(self) -> dict[str, Any]:
        """The numbers of the result (no per-record arrays), for reports."""
        return {
            "feature": self.feature,
            "index": self.index,
            "kind": self.kind,
            "metric": self.metric,
            "attack_score": self.attack_score,
            "baseline_score": self.baseline_score,
            "lift": self.lift,
            "lift_interval": list(self.lift_interval),
            "n_train": self.n_train,
            "n_test": self.n_test,
            "access": self.access,
            "observed_output": self.observed_output,
            "n_candidates": len(self.candidates),
            "queries": self.queries,
            "seconds": round(self.seconds, 4),
        }


def attribute_inference(
    target: Target,
    data: Dataset,
    feature: int | str,
    *,
    known: Dataset | None = None,
    test_fraction: float = 0.5,
    seed: int = 0,
    categorical: bool | None = None,
    access: Access | None = None,
    observed_output: bool = True,
) -> AttributeResult:
    """Infer ``feature`` of records of ``data`` with and without the target; report the lift.

    Reference:
        Fredrikson, Lantz, Jha, Lin, Page and Ristenpart, "Privacy in Pharmacogenetics: An
        End-to-End Case Study of Personalized Warfarin Dosing", USENIX Security 2014.
        Yeom, Giacomelli, Fredrikson and Jha, "Privacy Risk in Machine Learning", CSF 2018.
        https://arxiv.org/abs/1709.01604
        Jayaraman and Evans, "Are Attribute Inference Attacks Just Imputation?", ACM CCS 2022.
        https://arxiv.org/abs/2209.01292

    Threat model:
        Model inversion / attribute inference (MITRE ATLAS AML.T0024.001, OWASP ML03) by an
        attacker who knows a record's other features and label, can query the target (and, with
        ``observed_output``, sees its output on the record), and holds reference records from the
        same population with the sensitive feature known.

    Args:
        target: The model adapter; class scores are used where it has them, else labels.
        data: The records attacked (typically the target's training data); without ``known`` a
            seeded part of them serves as the attacker's reference data instead.
        feature: The sensitive feature: a flat index or a name from ``data.feature_names``.
        known: The attacker's reference data (same population, feature known); default: a
            ``1 - test_fraction`` part of ``data``, the rest is attacked.
        test_fraction: Share of ``data`` attacked when ``known`` is not given.
        seed: Seed of the split, the learners and the bootstrap.
        categorical: Treat the feature as categorical (``True``) or numeric (``False``); default:
            categorical when the reference data has at most 20 distinct values, all integers.
        access: ``"scores"`` or ``"labels"``; default: scores where the target has them.
        observed_output: Use the target's output on the record itself (as when a score is
            published); ``False`` leaves only the queries with candidate values.

    Returns:
        The scores with and without the model, and the attack's guesses.

    Raises:
        InvalidParameterError: An unknown feature, a feature constant in the reference data, data
            that does not fit the target, too few records, or a parameter out of its domain.
    """
    start = time.perf_counter()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise invalid_parameter("seed", _OWNER, "an int", seed)
    if categorical not in (None, True, False):
        raise invalid_parameter("categorical", _OWNER, "True, False or None", categorical)
    if not isinstance(observed_output, bool):
        raise invalid_parameter("observed_output", _OWNER, "a bool", observed_output)
    access = _check_access(target, access)
    index, name = _resolve_feature(data, feature)
    data.check_against(target.input_shape, target.num_classes, bounds=target.bounds)
    flat = data.x.reshape(data.n, -1)
    if known is None:
        test_fraction = check_fraction(test_fraction, "test_fraction", _OWNER)
        _check_varies(flat[:, index], name, data.name)
        n_test = min(max(round(test_fraction * data.n), 1), data.n - 1) if data.n > 1 else 0
        order = np.random.default_rng(int(seed)).permutation(data.n)
        test_index, train_index = np.sort(order[:n_test]), np.sort(order[n_test:])
        x_train, y_train = flat[train_index], data.y[train_index]
    else:
        if not isinstance(known, Dataset):
            raise invalid_parameter("known", _OWNER, "a Dataset or None", type(known).__name__)
        if known.input_shape != data.input_shape:
            raise InvalidParameterError(
                f"The attacker's reference data {known.name!r} has inputs of shape {known.input_shape} "
                f"but the attacked data {data.name!r} has {data.input_shape}. Pass records of the same "
                "population, with the same features."
            )
        known.check_against(target.input_shape, target.num_classes, bounds=target.bounds)
        test_index = np.arange(data.n)
        x_train, y_train = known.x.reshape(known.n, -1), known.y
    x_test, y_test = flat[test_index], data.y[test_index]
    if len(x_train) < _MIN_TRAIN or len(x_test) < _MIN_TEST:
        raise InvalidParameterError(
            f"Attribute inference needs at least {_MIN_TRAIN} reference records and {_MIN_TEST} attacked "
            f"records; got {len(x_train)} and {len(x_test)}. Pass more data"
            f"{' (or a larger known set)' if known is not None else ''}."
        )
    values_train = x_train[:, index].astype(np.float64)
    values_test = x_test[:, index].astype(np.float64)
    source = data.name if known is None else known.name
    _check_varies(values_train, name, source)
    kind, candidates = _candidates(values_train, categorical, name)
    if kind == "numeric" and np.ptp(values_test) == 0:
        raise InvalidParameterError(
            f"Every attacked record has the same value of feature {name!r}, so R² is undefined. "
            "Attack more varied records."
        )

    input_shape = data.input_shape
    signal_train, q_train = _signals(
        target, x_train, y_train, index, candidates, input_shape, access, observed_output, kind, values_train
    )
    signal_test, q_test = _signals(
        target, x_test, y_test, index, candidates, input_shape, access, observed_output, kind, values_train
    )
    base_train = _base_features(x_train, y_train, index, target.num_classes)
    base_test = _base_features(x_test, y_test, index, target.num_classes)
    guess_attack = _fit_predict(
        np.hstack([base_train, signal_train]), values_train, np.hstack([base_test, signal_test]), kind, seed
    )
    guess_base = _fit_predict(base_train, values_train, base_test, kind, seed)
    metric: Literal["balanced_accuracy", "r2"] = "balanced_accuracy" if kind == "categorical" else "r2"
    attack_score = float(_scores(guess_attack[None], values_test[None], kind)[0])
    baseline_score = float(_scores(guess_base[None], values_test[None], kind)[0])
    return AttributeResult(
        feature=name,
        index=index,
        kind=kind,
        metric=metric,
        attack_score=attack_score,
        baseline_score=baseline_score,
        lift_interval=_lift_interval(guess_attack, guess_base, values_test, kind, seed),
        n_train=len(x_train),
        n_test=len(x_test),
        access=access,
        observed_output=observed_output,
        candidates=candidates,
        queries=q_train + q_test,
        seconds=time.perf_counter() - start,
        per_example=guess_attack,
        baseline_per_example=guess_base,
        truth=values_test,
        test_index=test_index,
    )


def _check_access(target: Target, access: object) -> Access:
    has_scores = "scores" in target.capabilities
    if access is None:
        return "scores" if has_scores else "labels"
    if access not in ("scores", "labels"):
        raise invalid_parameter("access", _OWNER, "'scores', 'labels' or None", access)
    if access == "scores" and not has_scores:
        raise InvalidParameterError(
            f"{target.name!r} returns labels only, so the attack cannot read its scores: use "
            "access='labels' (or leave access unset)."
        )
    return "scores" if access == "scores" else "labels"


def _resolve_feature(data: Dataset, feature: object) -> tuple[int, str]:
    names = data.feature_names
    if isinstance(feature, str):
        if names is None or feature not in names:
            known = ", ".join(names) if names else "none (the data has no feature names: pass an index)"
            raise invalid_parameter("feature", _OWNER, f"a feature name among: {known}", feature)
        index = names.index(feature)
    elif isinstance(feature, int | np.integer) and not isinstance(feature, bool | np.bool_):
        index = int(feature)
        if not 0 <= index < data.num_features:
            raise invalid_parameter(
                "feature",
                _OWNER,
                f"a feature index in [0, {data.num_features}) (flat, over one input)",
                index,
            )
    else:
        raise invalid_parameter("feature", _OWNER, "a feature index (int) or name (str)", feature)
    return index, names[index] if names is not None else str(index)


def _check_varies(values: np.ndarray, name: str, source: str) -> None:
    if len(values) and np.ptp(values) == 0:
        raise InvalidParameterError(
            f"Feature {name!r} is constant ({float(values[0]):.7g}) in {source!r}: there is nothing to "
            "infer. Pick a feature that varies between records."
        )


def _candidates(values: np.ndarray, categorical: bool | None, name: str) -> tuple[Kind, np.ndarray]:
    distinct = np.unique(values)
    if categorical is None:
        integral = bool(np.all(distinct == np.round(distinct)))
        categorical = integral and len(distinct) <= _MAX_AUTO_VALUES
    if categorical:
        if len(distinct) > _MAX_VALUES:
            raise InvalidParameterError(
                f"Feature {name!r} has {len(distinct)} distinct values in the reference data; a categorical "
                f"attack queries each of them and supports at most {_MAX_VALUES}. Use categorical=False."
            )
        return "categorical", distinct
    return "numeric", np.unique(np.quantile(values, np.linspace(0.0, 1.0, _GRID)))


def _outputs(target: Target, flat: np.ndarray, shape: tuple[int, ...], access: Access) -> np.ndarray:
    x = np.ascontiguousarray(flat.reshape(len(flat), *shape), dtype=np.float32)
    if access == "scores":
        return np.asarray(target.predict_proba(x), dtype=np.float64)
    labels = np.asarray(target.predict(x), dtype=np.int64)
    return np.eye(target.num_classes)[labels]


def _signals(
    target: Target,
    flat: np.ndarray,
    y: np.ndarray,
    index: int,
    candidates: np.ndarray,
    shape: tuple[int, ...],
    access: Access,
    observed_output: bool,
    kind: Kind,
    known_values: np.ndarray,
) -> tuple[np.ndarray, int]:
    """What the target reveals about each record: ``(n, features)`` and the queries it took."""
    rows = np.arange(len(flat))
    conf = np.empty((len(flat), len(candidates)))
    probe = np.array(flat, dtype=np.float32)
    for k, value in enumerate(candidates):
        probe[:, index] = value
        conf[:, k] = _outputs(target, probe, shape, access)[rows, y]
    parts = [conf]
    total = np.sum(conf, axis=1, keepdims=True)
    if kind == "categorical":
        prior = np.array([np.mean(known_values == v) for v in candidates])
        joint = conf * prior
        mass = np.sum(joint, axis=1, keepdims=True)
        parts.append(np.divide(joint, mass, out=np.tile(prior, (len(flat), 1)), where=mass > 0))
    else:
        best = candidates[np.argmax(conf, axis=1)]
        mean = np.divide(
            conf @ candidates, total[:, 0], out=np.full(len(flat), np.nan), where=total[:, 0] > 0
        )
        parts.append(np.column_stack([best, mean]))
    queries = len(flat) * len(candidates)
    if observed_output:
        parts.append(_outputs(target, flat, shape, access))
        queries += len(flat)
    return np.hstack(parts), queries


def _base_features(flat: np.ndarray, y: np.ndarray, index: int, num_classes: int) -> np.ndarray:
    others = np.delete(flat, index, axis=1).astype(np.float64)
    return np.hstack([others, np.eye(num_classes)[y]])


def _fit_predict(
    x_train: np.ndarray, values: np.ndarray, x_test: np.ndarray, kind: Kind, seed: int
) -> np.ndarray:
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits  # scikit-learn's dependency

    # On a few thousand rows one thread is fastest: more spin against each other (and against
    # PyTorch's OpenMP runtime, loaded in the same process) for a tenfold slowdown on a busy CPU.
    threads = 1 if len(x_train) <= _ONE_THREAD_ROWS else None
    with threadpool_limits(limits=threads, user_api="openmp"):
        if kind == "categorical":
            classes, codes = np.unique(values, return_inverse=True)
            clf = HistGradientBoostingClassifier(random_state=int(seed)).fit(x_train, codes)
            predicted: np.ndarray = classes[np.asarray(clf.predict(x_test), dtype=np.int64)]
            return predicted
        reg = HistGradientBoostingRegressor(random_state=int(seed)).fit(x_train, values)
        return np.asarray(reg.predict(x_test), dtype=np.float64)


def _scores(guess: np.ndarray, truth: np.ndarray, kind: Kind) -> np.ndarray:
    """Balanced accuracy or R² of each row of ``guess`` ``(B, n)`` against ``truth`` ``(B, n)``."""
    if kind == "categorical":
        correct = guess == truth
        recalls = []
        for value in np.unique(truth):
            of_value = truth == value
            count = of_value.sum(axis=1)
            hits = (of_value & correct).sum(axis=1)
            recalls.append(np.divide(hits, count, out=np.full(len(truth), np.nan), where=count > 0))
        result: np.ndarray = np.nanmean(np.stack(recalls), axis=0)
        return result
    sse = np.sum((guess - truth) ** 2, axis=1)
    sst = np.sum((truth - truth.mean(axis=1, keepdims=True)) ** 2, axis=1)
    r2: np.ndarray = 1.0 - np.divide(sse, sst, out=np.full(len(truth), np.nan), where=sst > 0)
    return r2


def _lift_interval(
    attack: np.ndarray, baseline: np.ndarray, truth: np.ndarray, kind: Kind, seed: int
) -> tuple[float, float]:
    """95% percentile interval of the lift over paired bootstrap resamples of the attacked records."""
    rng = np.random.default_rng(int(seed))
    lifts = []
    for _ in range(0, _BOOTSTRAP, 100):
        pick = rng.integers(0, len(truth), size=(100, len(truth)))
        t = truth[pick]
        lifts.append(_scores(attack[pick], t, kind) - _scores(baseline[pick], t, kind))
    low, high = np.nanpercentile(np.concatenate(lifts), [2.5, 97.5])
    return float(low), float(high)
