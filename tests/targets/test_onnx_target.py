"""OnnxTarget: skl2onnx classifiers (ZipMap or not), torch.onnx.export and onnx.helper graphs.

(Test modules here carry 'target' in their names: without __init__.py files, pytest needs unique
basenames across tests/.)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from scipy.special import softmax
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from mlarmor.errors import InputError, InvalidParameterError, UnsupportedModelError
from mlarmor.targets import OnnxTarget, Target, TorchTarget

MEAN, STD = 0.3, 0.4


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def onnx_bytes(model: object, x: np.ndarray, **options: object) -> bytes:
    return to_onnx(model, x[:1].astype(np.float32), **options).SerializeToString()


def linear_graph(w: np.ndarray, b: np.ndarray, *, features: int | str, classes: int | str) -> bytes:
    """``x @ w + b`` built with onnx.helper; dims given as strings are symbolic."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["logits"])],
        "linear",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", classes])],
        initializer=[numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


@pytest.mark.parametrize("zipmap", [True, False])
def test_skl2onnx_classifier_agrees_with_sklearn(
    digits_lr: LogisticRegression, digits: tuple[np.ndarray, np.ndarray], zipmap: bool, tmp_path: Path
) -> None:
    x = flat(digits[0])
    path = tmp_path / "lr.onnx"
    path.write_bytes(onnx_bytes(digits_lr, x, options={"zipmap": zipmap}))
    target = OnnxTarget(path, bounds=(0, 1), batch_size=500)
    assert isinstance(target, Target)
    assert target.capabilities == {"scores", "labels"}
    assert target.num_classes == 10
    assert target.input_shape == (64,)
    assert target.output_name == ("output_probability" if zipmap else "probabilities")
    assert target.outputs == "probabilities"
    assert target.outputs_probabilities is True
    assert target.name == "lr.onnx"
    np.testing.assert_allclose(target.predict_proba(x), digits_lr.predict_proba(x), atol=1e-5)
    agree = (target.predict(x) == digits_lr.predict(x)).mean()
    assert agree > 0.999
    assert target.queries == 2 * len(x)


def test_zipmap_with_string_labels_keeps_class_order() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((120, 3)).astype(np.float32)
    y = np.array(["emu", "cat", "dog"])[np.argmax(x, axis=1)]
    model = LogisticRegression().fit(x, y)
    target = OnnxTarget(onnx_bytes(model, x), bounds=(0, 1))
    assert target.name == "<onnx bytes>"
    np.testing.assert_allclose(target.predict_proba(x), model.predict_proba(x), atol=1e-5)
    np.testing.assert_array_equal(model.classes_[target.predict(x)], model.predict(x))


def test_scores_that_are_not_probabilities_are_softmaxed(digits: tuple[np.ndarray, np.ndarray]) -> None:
    x, y = flat(digits[0][:500]), digits[1][:500]
    svm = LinearSVC().fit(x, y)  # skl2onnx writes decision scores into its "probabilities" output
    target = OnnxTarget(onnx_bytes(svm, x), bounds=(0, 1))
    assert target.outputs == "logits"
    assert target.outputs_probabilities is False
    np.testing.assert_allclose(target.predict_proba(x), softmax(svm.decision_function(x), axis=1), atol=1e-4)
    np.testing.assert_array_equal(target.predict(x), svm.predict(x))


def test_torch_export_with_normalisation_in_the_adapter(
    torch_net: torch.nn.Module, digits: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            torch_net,
            (torch.zeros(1, 1, 8, 8),),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
            dynamo=False,
        )
    target = OnnxTarget(path, bounds=(0, 1), mean=MEAN, std=STD)
    reference = TorchTarget(torch_net, bounds=(0, 1), input_shape=(1, 8, 8), mean=MEAN, std=STD)
    assert target.input_shape == (1, 8, 8)
    assert target.num_classes == 10
    assert target.outputs == "logits"
    x = digits[0]
    np.testing.assert_allclose(target.predict_proba(x), reference.predict_proba(x), atol=1e-5)
    assert (target.predict(x) == digits[1]).mean() > 0.9  # normalisation applied before the graph


def test_helper_graph_with_static_width() -> None:
    rng = np.random.default_rng(0)
    w, b = rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32)
    target = OnnxTarget(linear_graph(w, b, features=5, classes=3), bounds=(-1, 1), outputs="logits")
    x = rng.uniform(-1, 1, size=(7, 5)).astype(np.float32)
    np.testing.assert_allclose(target.predict_proba(x), softmax(x @ w + b, axis=1), atol=1e-5)
    assert target.num_classes == 3
    assert target.queries == 7


def identity_graph() -> bytes:
    """A graph that returns its input: the output width is unknown until it runs."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["scores"])],
        "identity",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "f"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", "f"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_unknown_width_needs_num_classes() -> None:
    with pytest.raises(InvalidParameterError, match="--classes"):
        OnnxTarget(identity_graph(), bounds=(0, 1))
    target = OnnxTarget(identity_graph(), bounds=(0, 1), num_classes=3)
    assert target.outputs == "auto"
    assert target.outputs_probabilities is None
    assert target.predict(np.array([[0.2, 0.7, 0.1]], np.float32)).tolist() == [1]
    assert target.outputs == "probabilities"  # resolved on the first batch
    with pytest.raises(UnsupportedModelError, match="4 columns"):
        target.predict(np.zeros((1, 4), np.float32))
    logits = OnnxTarget(identity_graph(), bounds=(-9, 9), num_classes=2)
    np.testing.assert_allclose(
        logits.predict_proba(np.array([[2.0, -1.0]], np.float32)), softmax([[2, -1]], 1)
    )
    assert logits.outputs == "logits"


def test_validation(tmp_path: Path) -> None:
    graph = linear_graph(np.ones((4, 2), np.float32), np.zeros(2, np.float32), features=4, classes=2)
    with pytest.raises(InputError, match="does not exist"):
        OnnxTarget(tmp_path / "missing.onnx", bounds=(0, 1))
    with pytest.raises(UnsupportedModelError, match="ONNX Runtime cannot load"):
        OnnxTarget(b"not an onnx model", bounds=(0, 1))
    with pytest.raises(InvalidParameterError, match="'outputs' parameter of OnnxTarget must be one of"):
        OnnxTarget(graph, bounds=(0, 1), outputs="softmax")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="'output_name' parameter"):
        OnnxTarget(graph, bounds=(0, 1), output_name="nope")
    with pytest.raises(InvalidParameterError, match="'input_name' parameter"):
        OnnxTarget(graph, bounds=(0, 1), input_name="nope")
    with pytest.raises(InvalidParameterError, match="has 2 columns"):
        OnnxTarget(graph, bounds=(0, 1), num_classes=5)
    with pytest.raises(InvalidParameterError, match="'bounds' parameter of OnnxTarget"):
        OnnxTarget(graph, bounds=(2, 1))
    target = OnnxTarget(graph, bounds=(0, 1))
    with pytest.raises(InvalidParameterError, match=r"must have shape \(n, 4\)\. Got shape \(3, 5\)"):
        target.predict(np.zeros((3, 5), np.float32))


def test_single_column_output_is_a_binary_score() -> None:
    x = np.array([[0.8], [-2.0]], np.float32)
    probs = OnnxTarget(identity_graph(), bounds=(-3, 3), num_classes=2, outputs="probabilities")
    np.testing.assert_allclose(probs.predict_proba(x[:1]), [[0.2, 0.8]], atol=1e-6)
    logit = OnnxTarget(identity_graph(), bounds=(-3, 3), num_classes=2, outputs="logits")
    np.testing.assert_allclose(logit.predict_proba(x)[:, 1], 1 / (1 + np.exp(-x[:, 0])), atol=1e-6)
    np.testing.assert_array_equal(logit.predict(x), [1, 0])
