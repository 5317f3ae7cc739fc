"""TorchTarget: agreement with the raw module, normalisation in input space, queries, validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.targets import Differentiable, Target, TorchTarget

MEAN, STD = 0.3, 0.4  # the normalisation the session net was trained with (see conftest.py)


@pytest.fixture
def target(torch_net: torch.nn.Module) -> TorchTarget:
    return TorchTarget(torch_net, bounds=(0.0, 1.0), input_shape=(1, 8, 8), mean=MEAN, std=STD, batch_size=64)


def test_protocols_and_inferred_metadata(target: TorchTarget) -> None:
    assert isinstance(target, Target)
    assert isinstance(target, Differentiable)
    assert target.capabilities == {"gradients", "scores", "labels"}
    assert target.num_classes == 10
    assert target.input_shape == (1, 8, 8)
    assert target.bounds == (0.0, 1.0)
    assert target.device == torch.device("cpu")
    assert target.outputs_probabilities is False
    assert target.queries == 0  # the probe batch is not counted
    assert target.name == "Net"


def test_predictions_agree_with_the_raw_model(
    target: TorchTarget, torch_net: torch.nn.Module, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x, y = digits
    with torch.no_grad():
        raw = torch_net((torch.from_numpy(x) - MEAN) / STD)
    probs = target.predict_proba(x)
    assert probs.shape == (len(x), 10)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs, torch.softmax(raw.double(), 1).numpy(), atol=1e-6)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-9)
    labels = target.predict(x)
    assert labels.dtype == np.int64
    np.testing.assert_array_equal(labels, raw.argmax(1).numpy())
    assert (labels == y).mean() > 0.9  # the normalisation really is applied: the net was trained on it


def test_logits_equal_model_of_normalised_input_and_gradients_reach_input_space(
    target: TorchTarget, torch_net: torch.nn.Module, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x = torch.from_numpy(digits[0][:8]).requires_grad_(True)
    logits = target.logits(x)
    torch.testing.assert_close(logits, torch_net((x - MEAN) / STD))
    logits.gather(1, torch.from_numpy(digits[1][:8])[:, None]).sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0

    # The chain rule through the normalisation: d/dx f((x - m) / s) = f'((x - m) / s) / s.
    u = ((x.detach() - MEAN) / STD).requires_grad_(True)
    torch_net(u).gather(1, torch.from_numpy(digits[1][:8])[:, None]).sum().backward()
    assert u.grad is not None
    torch.testing.assert_close(x.grad, u.grad / STD)


def test_per_channel_and_per_feature_normalisation() -> None:
    torch.manual_seed(0)
    conv = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5))
    conv(torch.zeros(1, 3, 6, 6))  # materialise the lazy layer
    mean, std = [0.1, 0.2, 0.3], [0.5, 0.25, 2.0]
    target = TorchTarget(conv, bounds=(0, 1), input_shape=(3, 6, 6), mean=mean, std=std)
    x = torch.rand(4, 3, 6, 6)
    expected = conv((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))
    torch.testing.assert_close(target.logits(x), expected)

    mlp = torch.nn.Linear(4, 3)
    tab = TorchTarget(mlp, bounds=(-1, 1), num_classes=3, mean=[0, 1, 2, 3], std=[1, 2, 3, 4])
    xt = torch.rand(5, 4)
    torch.testing.assert_close(tab.logits(xt), mlp((xt - torch.arange(4.0)) / torch.arange(1.0, 5.0)))
    torch.testing.assert_close(tab.normalize(xt), (xt - torch.arange(4.0)) / torch.arange(1.0, 5.0))


def test_query_counting(target: TorchTarget, digits: tuple[np.ndarray, np.ndarray]) -> None:
    x = digits[0][:150]
    target.predict(x)  # three batches of 64, 64, 22
    assert target.queries == 150
    target.predict_proba(x[:10])
    target.logits(torch.from_numpy(x[:7]))
    assert target.queries == 167
    target.reset_queries()
    assert target.queries == 0


def test_empty_batch(target: TorchTarget) -> None:
    assert target.predict_proba(np.zeros((0, 1, 8, 8), np.float32)).shape == (0, 10)
    assert target.predict(np.zeros((0, 1, 8, 8), np.float32)).shape == (0,)
    assert target.queries == 0


def test_detects_a_model_that_outputs_probabilities(torch_net: torch.nn.Module) -> None:
    with_softmax = torch.nn.Sequential(torch_net, torch.nn.Softmax(dim=1))
    target = TorchTarget(with_softmax, bounds=(0, 1), input_shape=(1, 8, 8))
    assert target.outputs_probabilities is True
    x = np.random.default_rng(0).random((5, 1, 8, 8), dtype=np.float32)
    with torch.no_grad():
        expected = with_softmax(torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(target.predict_proba(x), expected, atol=1e-6)  # not softmaxed twice


def test_probability_detection_waits_for_data_without_input_shape(torch_net: torch.nn.Module) -> None:
    target = TorchTarget(
        torch.nn.Sequential(torch_net, torch.nn.Softmax(dim=1)), bounds=(0, 1), num_classes=10
    )
    assert target.outputs_probabilities is None
    target.predict(np.full((3, 1, 8, 8), 0.5, np.float32))
    assert target.outputs_probabilities is True
    plain = TorchTarget(torch_net, bounds=(0, 1), num_classes=10)
    plain.logits(torch.rand(2, 1, 8, 8))
    assert plain.outputs_probabilities is False


def test_num_classes_required_without_input_shape(torch_net: torch.nn.Module) -> None:
    with pytest.raises(InvalidParameterError, match=r"num_classes=N \(--classes N"):
        TorchTarget(torch_net, bounds=(0, 1))


def test_num_classes_mismatch(torch_net: torch.nn.Module) -> None:
    with pytest.raises(InvalidParameterError, match="returns 10 outputs"):
        TorchTarget(torch_net, bounds=(0, 1), input_shape=(1, 8, 8), num_classes=3)


@pytest.mark.parametrize(
    "bounds", [(1.0, 0.0), (0.0, 0.0), (0.0, math.inf), (math.nan, 1.0), (0.0,), "01", None]
)
def test_invalid_bounds(torch_net: torch.nn.Module, bounds: object) -> None:
    with pytest.raises(InvalidParameterError, match="'bounds' parameter of TorchTarget must be a pair"):
        TorchTarget(torch_net, bounds=bounds, num_classes=10)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"std": 0.0}, "'std' parameter"),
        ({"std": [1.0, -1.0]}, "'std' parameter"),
        ({"mean": [[0.1]]}, "'mean' parameter"),
        ({"mean": [0.1, 0.2], "std": [1.0, 2.0, 3.0]}, "same length"),
        ({"mean": [0.1, 0.2], "input_shape": (1, 8, 8)}, "2 mean/std values"),
        ({"input_shape": (0, 8)}, "'input_shape' parameter"),
        ({"num_classes": 1}, "'num_classes' parameter"),
        ({"device": "no-such-device"}, "'device' parameter"),
    ],
)
def test_invalid_parameters(torch_net: torch.nn.Module, kwargs: dict[str, object], match: str) -> None:
    params: dict[str, object] = {"num_classes": 10, **kwargs}
    with pytest.raises(InvalidParameterError, match=match):
        TorchTarget(torch_net, bounds=(0, 1), **params)  # type: ignore[arg-type]


def test_wrong_inputs_name_expected_and_got(target: TorchTarget) -> None:
    with pytest.raises(InvalidParameterError, match=r"must have shape \(n, 1, 8, 8\)\. Got shape \(3, 64\)"):
        target.predict(np.zeros((3, 64), np.float32))
    with pytest.raises(InvalidParameterError, match=r"numeric .* dtype. Got dtype <U1"):
        target.predict(np.array([[["a"] * 8] * 8]))
    with pytest.raises(InvalidParameterError, match="must be a numpy array"):
        target.predict([[0.0] * 64])  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="leading sample axis"):
        target.predict(np.zeros(64, np.float32))
    with pytest.raises(InvalidParameterError, match=r"logits must have shape \(n, 1, 8, 8\)"):
        target.logits(torch.zeros(2, 64))
    with pytest.raises(InvalidParameterError, match=r"must be a torch\.Tensor"):
        target.logits(np.zeros((2, 1, 8, 8)))  # type: ignore[arg-type]


def test_integer_inputs_are_cast(target: TorchTarget) -> None:
    assert target.predict(np.zeros((2, 1, 8, 8), np.uint8)).shape == (2,)


def test_not_a_module() -> None:
    with pytest.raises(UnsupportedModelError, match=r"wraps a torch\.nn\.Module"):
        TorchTarget(object(), bounds=(0, 1), num_classes=2)  # type: ignore[arg-type]


def test_model_with_wrong_output_shape() -> None:
    with pytest.raises(UnsupportedModelError, match=r"shape \(n, classes\)"):
        TorchTarget(torch.nn.Flatten(0), bounds=(0, 1), input_shape=(3,))
    with pytest.raises(UnsupportedModelError, match="fails on inputs of shape"):
        TorchTarget(torch.nn.Linear(5, 2), bounds=(0, 1), input_shape=(4,))
    late = TorchTarget(torch.nn.Linear(4, 3), bounds=(0, 1), num_classes=2)
    with pytest.raises(UnsupportedModelError, match=r"shape \(2, 2\)"):
        late.predict(np.zeros((2, 4), np.float32))


def test_module_is_put_in_eval_mode(torch_net: torch.nn.Module) -> None:
    torch_net.train()
    target = TorchTarget(torch_net, bounds=(0, 1), num_classes=10)
    assert not target.module.training


def test_input_space_puts_the_normalisation_in_front_and_copies_cleanly() -> None:
    import copy

    from mlarmor.targets import InputSpace

    torch.manual_seed(0)
    module = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
    target = TorchTarget(
        module, bounds=(0.0, 1.0), input_shape=(3, 2, 2), mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.4]
    )
    wrapped = InputSpace(target)
    x = torch.rand(5, 3, 2, 2)
    torch.testing.assert_close(wrapped(x), target.logits(x))
    assert wrapped.inner is module  # shared, so training the wrapper trains the target's model
    assert set(wrapped.state_dict()) == {f"inner.{k}" for k in module.state_dict()}
    twin = copy.deepcopy(wrapped)
    with torch.no_grad():
        twin.inner[1].bias.add_(1.0)
    torch.testing.assert_close(wrapped(x), target.logits(x))  # the copy is independent
    plain = InputSpace(TorchTarget(module, bounds=(0.0, 1.0), input_shape=(3, 2, 2)))
    torch.testing.assert_close(plain(x), module(x))
