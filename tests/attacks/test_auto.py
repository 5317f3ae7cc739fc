"""The auto ensemble: later components see only the points still robust; the union is reported."""

from __future__ import annotations

import numpy as np
import pytest
from _models import ToyTarget

from mlarmor.attacks import APGD, FMN, PGD, AutoAttack, create
from mlarmor.errors import InvalidParameterError


class Recording(ToyTarget):
    """A toy target that records the batch sizes it is called with."""

    def __init__(self, module) -> None:
        super().__init__(module, name="recording")
        self.calls: list[int] = []

    def logits(self, x):
        self.calls.append(int(x.shape[0]))
        return super().logits(x)


def test_components_run_only_on_still_robust_points(mlp_module, digits):
    x, y = digits.x_test[:150], digits.y_test[:150]
    eps = 0.1
    first = APGD(norm="linf", n_iter=20)
    second = FMN(norm="linf", steps=30)
    target = Recording(mlp_module)
    auto = AutoAttack(components=(first, second), batch_size=len(x))
    result = auto(target, x, y, eps=eps)
    # FMN runs without early stopping: its calls all have the size of the set it was given.
    check_after_fmn = target.calls[-2]  # the last call is the base class's final check
    fmn_sizes = target.calls[-(30 + 2) : -2]
    assert len(set(fmn_sizes)) == 1
    survivors = fmn_sizes[0]
    alone = APGD(norm="linf", n_iter=20)
    ref = alone(ToyTarget(mlp_module), x, y, eps=eps)
    clean_correct = int((ref.y_pred_clean == y).sum())
    assert survivors < clean_correct
    assert check_after_fmn == survivors
    assert result.total_queries == target.queries
    assert result.robust_accuracy <= (survivors / len(x)) + 1e-12


def test_union_is_at_least_each_component(mlp_target, cnn_target, digits):
    x, y = digits.x_test[:100], digits.y_test[:100]
    components = (
        create("apgd", n_iter=40),
        create("apgd-t", n_iter=40, n_target_classes=4),
        create("fmn", steps=50),
    )
    for target in (mlp_target, cnn_target):
        auto = AutoAttack(eps=0.08, components=components)(target, x, y)
        for component in components:
            alone = component(target, x, y, eps=0.08)
            assert auto.robust_accuracy <= alone.robust_accuracy
        pgd = PGD(eps=0.08)(target, x, y)
        assert auto.robust_accuracy <= pgd.robust_accuracy


def test_first_success_wins_and_queries_add_up(mlp_target, digits):
    x, y = digits.x_test[:120], digits.y_test[:120]
    result = AutoAttack(eps=1.0, norm="l2")(mlp_target, x, y)
    assert result.robust_accuracy < 0.05
    assert isinstance(result.queries, np.ndarray)
    assert np.all(result.queries >= 1)
    assert result.params["components"] == ("apgd", "apgd-t", "fmn")


def test_invalid_components():
    with pytest.raises(InvalidParameterError, match="'components' parameter of AutoAttack"):
        AutoAttack(components=())
    with pytest.raises(InvalidParameterError, match="'components'"):
        AutoAttack(components=("no-such-attack",))
    with pytest.raises(InvalidParameterError, match="'components'"):
        AutoAttack(norm="linf", components=(APGD(norm="l2"),))


def test_auto_skips_components_a_two_class_model_cannot_run() -> None:
    import numpy as np

    from mlarmor.attacks import create
    from mlarmor.models import fit_classifier, tabular_mlp
    from mlarmor.targets import TorchTarget

    rng = np.random.default_rng(0)
    x = rng.random((80, 6)).astype(np.float32)
    y = (x[:, 0] > 0.5).astype(np.int64)
    model = fit_classifier(tabular_mlp(6, 2, hidden=16), x, y, epochs=100, batch_size=None, lr=0.05)
    target = TorchTarget(model, bounds=(0.0, 1.0), input_shape=(6,))
    result = create("auto", eps=0.2, n_iter=10)(target, x, y)  # APGD-T needs 4 classes: skipped, no error
    assert result.robust_accuracy < result.clean_accuracy
