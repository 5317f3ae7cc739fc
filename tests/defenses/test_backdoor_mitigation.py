"""Backdoor removal on a real BadNets digits CNN: unlearning the Neural Cleanse trigger, fine-pruning."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from mlarmor.attacks.poisoning import Poisoned, apply_trigger, attack_success_rate, poison
from mlarmor.data import load_dataset
from mlarmor.defenses.inspect.model import neural_cleanse
from mlarmor.defenses.training.backdoor import Mitigation, fine_prune, unlearn
from mlarmor.errors import InvalidParameterError
from mlarmor.models import accuracy, digits_cnn, fit_classifier
from mlarmor.targets import TorchTarget


@pytest.fixture(scope="module")
def setup() -> dict[str, Any]:
    ds = load_dataset("demo:digits")
    x, y = ds.x.astype(np.float32), ds.y
    order = np.random.default_rng(0).permutation(len(x))
    train, clean, held = order[:1000], order[1000:1300], order[1300:]
    p = poison(x[train], y[train], trigger="badnets", fraction=0.1, target_class=0, seed=0)
    model = fit_classifier(digits_cnn(seed=0), p.x, p.y, epochs=30, lr=1e-3, seed=0)
    return {
        "model": model,
        "poisoned": p,
        "x_clean": x[clean],
        "y_clean": y[clean],
        "x_eval": x[held],
        "y_eval": y[held],
    }


def _asr(model: torch.nn.Module, s: dict[str, Any]) -> float:
    p: Poisoned = s["poisoned"]
    target = TorchTarget(model, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    return attack_success_rate(
        target.predict, s["x_eval"], s["y_eval"], trigger="badnets", target_class=0, **p.params
    )


def _true_trigger(s: dict[str, Any]) -> Any:
    p: Poisoned = s["poisoned"]
    return lambda a: apply_trigger(a, "badnets", **p.params)


def _weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def test_unlearning_the_recovered_trigger_removes_the_backdoor(setup: dict[str, Any]) -> None:
    model = setup["model"]
    original = _weights(model)
    target = TorchTarget(model, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    inspection = neural_cleanse(target, setup["x_clean"], setup["y_clean"])
    assert inspection.target_class == 0
    assert inspection.trigger is not None
    result = unlearn(
        model,
        setup["x_clean"],
        setup["y_clean"],
        inspection.trigger,
        x_eval=setup["x_eval"],
        y_eval=setup["y_eval"],
        asr_trigger=_true_trigger(setup),
    )
    # Measured: true-trigger ASR 0.998 -> 0.005, clean accuracy 0.982 -> 0.986.
    assert _asr(model, setup) > 0.9
    assert _asr(result.model, setup) < 0.1
    assert result.attack_success is not None
    assert result.attack_success[0] > 0.9
    assert result.attack_success[1] < 0.1
    assert result.clean_accuracy[1] >= result.clean_accuracy[0] - 0.03
    assert result.clean_accuracy[0] == pytest.approx(accuracy(model, setup["x_eval"], setup["y_eval"]))
    assert all(torch.equal(a, b) for a, b in zip(original, _weights(model), strict=True))  # untouched


def test_fine_pruning_lowers_attack_success(setup: dict[str, Any]) -> None:
    model = setup["model"]
    original = _weights(model)
    result = fine_prune(
        model,
        setup["x_clean"],
        setup["y_clean"],
        x_eval=setup["x_eval"],
        y_eval=setup["y_eval"],
        trigger=_true_trigger(setup),
        target_class=0,
    )
    # Measured: ASR 0.998 -> 0.02, accuracy 0.982 -> 0.984, 9 of 32 channels of the last conv pruned.
    assert isinstance(result, Mitigation)
    assert result.method == "fine-pruning"
    assert result.params["layer"] == "2"
    assert 0 < len(result.params["pruned"]) < 32
    assert result.attack_success is not None
    assert result.attack_success[1] < 0.3
    assert result.clean_accuracy[1] >= result.clean_accuracy[0] - 0.03
    assert _asr(result.model, setup) == pytest.approx(result.attack_success[1])
    conv = result.model[2]
    pruned = result.params["pruned"]
    assert torch.count_nonzero(conv.weight[pruned]) == 0  # still pruned after fine-tuning
    assert all(torch.equal(a, b) for a, b in zip(original, _weights(model), strict=True))
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["attack_success"]["after"] == result.attack_success[1]


def test_prune_fraction_caps_pruning_and_no_trigger_means_no_asr(setup: dict[str, Any]) -> None:
    result = fine_prune(
        setup["model"], setup["x_clean"], setup["y_clean"], prune_fraction=0.1, fine_tune_epochs=0, layer="6"
    )
    assert len(result.params["pruned"]) <= 6  # 10% of 64 units
    assert result.attack_success is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: fine_prune(s["model"], s["x_clean"], s["y_clean"][:5]), "labels"),
        (lambda s: fine_prune(s["model"], s["x_clean"], s["y_clean"], layer="nope"), "layer"),
        (
            lambda s: fine_prune(s["model"], s["x_clean"], s["y_clean"], max_accuracy_drop=2.0),
            "max_accuracy_drop",
        ),
        (lambda s: fine_prune(s["model"], s["x_clean"], s["y_clean"], target_class=0), "both"),
        (lambda s: fine_prune(s["model"], s["x_clean"], s["y_clean"], x_eval=s["x_eval"]), "together"),
        (lambda s: fine_prune("model", s["x_clean"], s["y_clean"]), "target.module"),
        (lambda s: unlearn(s["model"], s["x_clean"], s["y_clean"], "trigger"), "trigger"),
        (lambda s: unlearn(s["model"], s["x_clean"], s["y_clean"], lambda a: a, fraction=0.0), "fraction"),
        (lambda s: unlearn(s["model"], s["x_clean"], s["y_clean"], lambda a: a[:, :, :4]), "shape"),
    ],
)
def test_rejects_bad_inputs(setup: dict[str, Any], call: Any, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        call(setup)
