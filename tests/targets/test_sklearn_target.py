"""SklearnTarget: scores from predict_proba or decision_function, labels mapped to 0..C-1."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit, softmax
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, LinearSVC

from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.targets import SklearnTarget, Target


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def test_predictions_agree_with_predict_proba(
    digits_lr: LogisticRegression, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x = flat(digits[0])
    target = SklearnTarget(digits_lr, bounds=(0, 1))
    assert isinstance(target, Target)
    assert target.capabilities == {"scores", "labels"}
    assert target.scores_source == "predict_proba"
    assert target.num_classes == 10
    assert target.input_shape == (64,)
    np.testing.assert_allclose(target.predict_proba(x), digits_lr.predict_proba(x))
    np.testing.assert_array_equal(target.predict(x), digits_lr.predict(x))
    assert target.predict(x).dtype == np.int64


def test_labels_are_indices_into_classes() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((90, 3))
    names = np.array(["emu", "cat", "dog"])
    y = names[np.argmax(x, axis=1)]
    model = LogisticRegression().fit(x, y)
    target = SklearnTarget(model, bounds=(0, 1))
    np.testing.assert_array_equal(target.classes, ["cat", "dog", "emu"])
    predicted = target.predict(x)
    np.testing.assert_array_equal(target.classes[predicted], model.predict(x))
    np.testing.assert_array_equal(predicted, target.predict_proba(x).argmax(1))

    shifted = LogisticRegression().fit(x, np.argmax(x, axis=1) * 10 + 5)  # labels 5, 15, 25
    assert set(SklearnTarget(shifted, bounds=(0, 1)).predict(x)) <= {0, 1, 2}


def test_multiclass_decision_function_is_softmaxed(
    digits: tuple[np.ndarray, np.ndarray],
) -> None:
    x, y = flat(digits[0][:600]), digits[1][:600]
    svm = LinearSVC().fit(x, y)
    target = SklearnTarget(svm, bounds=(0, 1))
    assert target.scores_source == "decision_function"
    probs = target.predict_proba(x)
    np.testing.assert_allclose(probs, softmax(svm.decision_function(x), axis=1))
    np.testing.assert_array_equal(probs.argmax(1), target.predict(x))


def test_binary_decision_function_gives_two_columns(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = cancer
    svm = SVC(kernel="linear").fit(x, y)  # no predict_proba without probability=True
    target = SklearnTarget(svm, bounds=(0, 1))
    probs = target.predict_proba(x)
    assert probs.shape == (len(x), 2)
    np.testing.assert_allclose(probs[:, 1], expit(svm.decision_function(x)))
    np.testing.assert_array_equal(probs.argmax(1), svm.predict(x))


def test_pipeline_and_image_inputs(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = digits
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(flat(x), y)
    target = SklearnTarget(pipe, bounds=(0, 1), input_shape=(1, 8, 8))
    assert target.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(target.predict(x), pipe.predict(flat(x)))
    with pytest.raises(InvalidParameterError, match=r"must have shape \(n, 1, 8, 8\)\. Got shape \(2, 64\)"):
        target.predict(flat(x[:2]))
    with pytest.raises(InvalidParameterError, match="must hold 64 values"):
        SklearnTarget(pipe, bounds=(0, 1), input_shape=(1, 4, 4))


def test_query_counting(digits_lr: LogisticRegression, digits: tuple[np.ndarray, np.ndarray]) -> None:
    target = SklearnTarget(digits_lr, bounds=(0, 1))
    x = flat(digits[0][:25])
    target.predict(x)
    target.predict_proba(x[:5])
    assert target.queries == 30
    target.reset_queries()
    assert target.queries == 0
    target.predict(x[:0])
    assert target.queries == 0


class LabelsOnly:
    """A classifier with predict and classes_ but no scores."""

    classes_ = np.array([0, 1])
    n_features_in_ = 2

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (x[:, 0] > x[:, 1]).astype(int)


def test_estimator_without_scores_is_labels_only() -> None:
    target = SklearnTarget(LabelsOnly(), bounds=(0, 1))
    assert target.capabilities == {"labels"}
    np.testing.assert_array_equal(target.predict(np.array([[1.0, 0.0], [0.0, 1.0]])), [1, 0])
    with pytest.raises(UnsupportedModelError, match="no 'scores' capability"):
        target.predict_proba(np.zeros((1, 2)))


def test_rejects_what_is_not_a_fitted_classifier(cancer: tuple[np.ndarray, np.ndarray]) -> None:
    with pytest.raises(UnsupportedModelError, match="not a fitted classifier"):
        SklearnTarget(LogisticRegression(), bounds=(0, 1))
    with pytest.raises(UnsupportedModelError, match="not a fitted classifier"):
        SklearnTarget(LinearRegression().fit(*cancer), bounds=(0, 1))
    with pytest.raises(UnsupportedModelError, match="'predict' method"):
        SklearnTarget(object(), bounds=(0, 1))


def test_num_classes_must_match(digits_lr: LogisticRegression) -> None:
    with pytest.raises(InvalidParameterError, match="fitted on 10 classes"):
        SklearnTarget(digits_lr, bounds=(0, 1), num_classes=3)
    assert SklearnTarget(digits_lr, bounds=(0, 1), num_classes=10).num_classes == 10


@pytest.mark.parametrize("bounds", [(1, 0), (0, float("inf")), (0, 1, 2), "ab"])
def test_invalid_bounds(digits_lr: LogisticRegression, bounds: object) -> None:
    with pytest.raises(InvalidParameterError, match="'bounds' parameter of SklearnTarget"):
        SklearnTarget(digits_lr, bounds=bounds)  # type: ignore[arg-type]


def test_wrong_inputs(digits_lr: LogisticRegression) -> None:
    target = SklearnTarget(digits_lr, bounds=(0, 1))
    with pytest.raises(InvalidParameterError, match=r"must have shape \(n, 64\)\. Got shape \(2, 30\)"):
        target.predict(np.zeros((2, 30)))
    with pytest.raises(InvalidParameterError, match="numeric"):
        target.predict_proba(np.zeros((2, 64), dtype=object))


@pytest.mark.parametrize("kind", ["mlp-relu", "mlp-tanh-pipeline", "logistic", "binary-mlp", "forest"])
def test_sklearn_logits_match_the_probabilities(kind: str) -> None:
    import warnings

    from sklearn.ensemble import RandomForestClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from mlarmor.data import load_dataset
    from mlarmor.targets.sklearn import has_logits, sklearn_logits

    data = load_dataset("demo:breast-cancer" if kind == "binary-mlp" else "demo:digits")
    x, y = data.x.reshape(len(data.x), -1)[:300], data.y[:300]
    model = {
        "mlp-relu": MLPClassifier((16,), max_iter=60, random_state=0),
        "mlp-tanh-pipeline": make_pipeline(
            StandardScaler(), MLPClassifier((8,), activation="tanh", max_iter=60)
        ),
        "logistic": LogisticRegression(max_iter=300),
        "binary-mlp": MLPClassifier((8,), max_iter=60, random_state=0),
        "forest": RandomForestClassifier(n_estimators=5, random_state=0),
    }[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    z = sklearn_logits(model, x)
    if kind == "forest":
        assert z is None
        assert not has_logits(model)
        return
    assert has_logits(model)
    assert z is not None
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(p, model.predict_proba(x), atol=1e-5)
