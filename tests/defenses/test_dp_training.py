"""Differentially private training: real DP-SGD runs (Opacus) on digits, the estimator, the CLI, an audit."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from torch import nn
from typer.testing import CliRunner

from mlarmor.assess.privacy import audit_membership
from mlarmor.cli import app
from mlarmor.data import Dataset, load_dataset
from mlarmor.defenses import DPMLPClassifier, DPResult, dp_incompatibilities, train_dp
from mlarmor.errors import InvalidParameterError, NotFittedError
from mlarmor.models import accuracy, digits_mlp
from mlarmor.targets import SklearnTarget
from mlarmor.targets.recipe import recipe_for

# PRV reports ε with a numerical error of up to 0.01 (its eps_error); the noise is calibrated for the
# target within Opacus' 0.01 tolerance, so the spent ε sits just below the target.
EPS_TOLERANCE = 0.02
# Settings that learn under DP on digits in about a second: few epochs, a large learning rate.
FAST = {"epochs": 10, "batch_size": 64, "lr": 1e-2}

FACTORY = """
from torch import nn


def build():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


def build_bn():
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
"""


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    # On a small, busy machine torch's spinning thread pool makes these tiny models ~10x slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset]:
    return load_dataset("demo:digits").split(0.3, seed=0)


@pytest.fixture(scope="module")
def at_eps1(digits: tuple[Dataset, Dataset]) -> tuple[nn.Module, DPResult]:
    train, _ = digits
    model = digits_mlp(seed=0)
    return model, train_dp(model, train.x, train.y, epsilon=1.0, **FAST)


def test_eps1_spends_at_most_the_budget_and_learns(
    digits: tuple[Dataset, Dataset], at_eps1: tuple[nn.Module, DPResult]
) -> None:
    train, test = digits
    given, result = at_eps1
    assert 0.9 < result.epsilon <= 1.0 + EPS_TOLERANCE
    assert result.target_epsilon == 1.0
    assert result.delta == 1e-5
    assert result.accountant == "prv"
    assert result.noise_multiplier > 1.0  # ε = 1 over 200 steps needs real noise
    n_batches = math.ceil(train.n / 64)
    assert result.sample_rate == pytest.approx(1 / n_batches)
    assert result.steps == 10 * n_batches
    assert len(result.history) == 10
    assert result.replaced_layers == ()
    # The caller's module, trained in place and handed back plain: no Opacus wrapper, hooks or attributes.
    assert result.model is given
    assert type(result.model) is nn.Sequential
    assert not result.model.training
    assert all(not hasattr(p, "grad_sample") and p.grad is None for p in result.model.parameters())
    assert not any(m._forward_hooks or m._backward_hooks for m in result.model.modules())
    # Observed: 0.81 test accuracy (chance is 0.1); a non-private run of the same model reaches ~0.95.
    assert accuracy(result.model, test.x, test.y) > 0.6
    buffer = io.BytesIO()
    torch.save(result.model.state_dict(), buffer)  # saves like any model
    json.dumps(result.to_dict())


def test_a_larger_budget_needs_less_noise_and_is_more_accurate(
    digits: tuple[Dataset, Dataset], at_eps1: tuple[nn.Module, DPResult]
) -> None:
    train, test = digits
    _, strict = at_eps1
    loose = train_dp(digits_mlp(seed=0), train.x, train.y, epsilon=8.0, **FAST)
    assert 7.5 < loose.epsilon <= 8.0 + EPS_TOLERANCE
    assert loose.noise_multiplier < strict.noise_multiplier / 2
    # Same seeds, same data order: only the noise differs. Observed 0.92 against 0.81.
    assert accuracy(loose.model, test.x, test.y) > accuracy(strict.model, test.x, test.y)


def test_a_seed_fixes_sampling_noise_and_weights(digits: tuple[Dataset, Dataset]) -> None:
    train, _ = digits
    x, y = train.x[:400], train.y[:400]

    def run(seed: int) -> dict[str, torch.Tensor]:
        result = train_dp(digits_mlp(seed=0), x, y, epsilon=2.0, epochs=2, accountant="rdp", seed=seed)
        return result.model.state_dict()

    state = torch.random.get_rng_state()
    first, again, other = run(3), run(3), run(4)
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's global generator is untouched
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not all(torch.equal(first[k], other[k]) for k in first)
    # seed=None: an unpredictable seed (for released models), so two runs differ.
    unseeded = [
        train_dp(digits_mlp(seed=0), x, y, epsilon=2.0, epochs=1, accountant="rdp", seed=None).model
        for _ in range(2)
    ]
    assert not torch.equal(unseeded[0][1].weight, unseeded[1][1].weight)


def test_batchnorm_is_replaced_in_a_copy(digits: tuple[Dataset, Dataset]) -> None:
    train, test = digits
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Linear(32, 10))
    model.eval()  # the mode does not matter: training switches it
    problems = dp_incompatibilities(model)
    assert len(problems) == 1
    assert problems[0].startswith("2 (BatchNorm1d): BatchNorm")
    result = train_dp(model, train.x, train.y, epsilon=2.0, epochs=3, lr=1e-2, accountant="rdp")
    assert result.replaced_layers == ("2: BatchNorm1d -> GroupNorm",)
    assert result.model is not model
    assert isinstance(model[2], nn.BatchNorm1d)  # the caller's model is left as it was
    norm = result.model[2]
    assert isinstance(norm, nn.GroupNorm)
    assert norm.num_groups == 1  # one group per example: Opacus' default would zero every feature here
    assert dp_incompatibilities(result.model) == []
    assert accuracy(result.model, test.x, test.y) > 0.5  # observed 0.80


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"epsilon": 0.0}, "epsilon"),
        ({"epsilon": -1.0}, "epsilon"),
        ({"epsilon": math.nan}, "epsilon"),
        ({"epsilon": math.inf}, "epsilon"),
        ({"epsilon": "1"}, "epsilon"),
        ({"delta": 0.0}, "delta"),
        ({"delta": 1.0}, "delta"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"epochs": 0}, "epochs"),
        ({"epochs": 1.5}, "epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": 0.0}, "lr"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"accountant": "moments"}, "accountant"),
        ({"seed": -1}, "seed"),
    ],
)
def test_parameters_out_of_their_domain_are_refused(params: dict[str, object], name: str) -> None:
    x = np.zeros((20, 64), np.float32)
    y = np.arange(20) % 10
    kwargs: dict[str, object] = {"epsilon": 1.0, **params}
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of train_dp"):
        train_dp(digits_mlp(), x, y, **kwargs)  # type: ignore[arg-type]


def test_other_refusals(digits: tuple[Dataset, Dataset]) -> None:
    train, _ = digits
    with pytest.raises(InvalidParameterError, match="must output logits"):
        train_dp(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)), train.x, train.y, epsilon=1.0)
    with pytest.raises(InvalidParameterError, match="must hold inputs the model accepts"):
        train_dp(nn.Linear(10, 10), train.x, train.y, epsilon=1.0)
    with pytest.raises(InvalidParameterError, match="out of reach"):
        train_dp(digits_mlp(), train.x, train.y, epsilon=1e-6, epochs=1, accountant="rdp")
    with pytest.raises(InvalidParameterError, match="trainable parameters"):
        train_dp(nn.Flatten(), train.x, train.y, epsilon=1.0)


def test_empty_poisson_batches_still_take_a_noisy_step() -> None:
    # Three examples at sample rate 1/3: about a third of the batches are empty.
    x = np.random.default_rng(0).uniform(size=(3, 64)).astype(np.float32)
    seen: list[int] = []
    result = train_dp(
        digits_mlp(), x, np.array([0, 1, 2]), epsilon=4.0, epochs=5, batch_size=1, accountant="rdp",
        progress=lambda record: seen.append(record.samples),
    )  # fmt: skip
    assert result.steps == 15
    assert seen == [r.samples for r in result.history]
    assert all(torch.isfinite(p).all() for p in result.model.parameters())


def test_a_delta_not_below_one_over_n_warns(digits: tuple[Dataset, Dataset]) -> None:
    train, _ = digits
    with pytest.warns(UserWarning, match=r"not below 1/n"):
        result = train_dp(
            digits_mlp(), train.x[:100], train.y[:100], epsilon=1.0, delta=0.05, epochs=1, batch_size=10
        )
    assert result.delta == 0.05


@pytest.fixture(scope="module")
def halves() -> tuple[Dataset, Dataset]:
    return load_dataset("demo:digits").split(0.5, seed=0)


@pytest.fixture(scope="module")
def fitted(halves: tuple[Dataset, Dataset]) -> DPMLPClassifier:
    members, _ = halves
    return DPMLPClassifier(epsilon=1.0, input_range=(0.0, 1.0)).fit(
        members.x.reshape(members.n, -1), members.y
    )


def test_estimator_api_clone_and_pickling(fitted: DPMLPClassifier, halves: tuple[Dataset, Dataset]) -> None:
    _, held_out = halves
    x = held_out.x.reshape(held_out.n, -1)
    params = fitted.get_params()
    assert params["epsilon"] == 1.0
    assert params["hidden"] == (64,)
    fresh = clone(fitted)
    assert fresh.get_params() == params
    assert not hasattr(fresh, "model_")
    with pytest.raises(NotFittedError, match="not fitted"):
        fresh.predict(x)
    assert fresh.set_params(epsilon=4.0, random_state=3).get_params()["epsilon"] == 4.0

    assert 0.9 < fitted.epsilon_ <= 1.0 + EPS_TOLERANCE
    assert fitted.noise_multiplier_ > 1.0
    assert list(fitted.classes_) == list(range(10))
    assert fitted.n_features_in_ == 64
    proba = fitted.predict_proba(x)
    assert proba.shape == (held_out.n, 10)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(fitted.predict(x))) <= set(range(10))
    assert fitted.score(x, held_out.y) > 0.5  # observed 0.76 on 899 training examples at ε = 1

    buffer = io.BytesIO()
    joblib.dump(fitted, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    assert np.array_equal(loaded.predict_proba(x), proba)

    target = SklearnTarget(fitted, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    assert target.num_classes == 10
    assert np.allclose(target.predict_proba(held_out.x[:5]), proba[:5])
    with pytest.raises(InvalidParameterError, match="features"):
        fitted.predict(x[:, :10])


def test_estimator_with_string_labels_and_declared_classes() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(300, 4)).astype(np.float32)
    y = np.where(x[:, 0] > 0.5, "spam", "ham")
    clf = DPMLPClassifier(
        hidden=(8,), epsilon=4.0, delta=1e-3, epochs=3, accountant="rdp", classes=["eggs", "ham", "spam"]
    )
    clf.fit(x, y)
    assert list(clf.classes_) == ["eggs", "ham", "spam"]  # declared, so the set itself is not learnt
    assert clf.predict_proba(x[:4]).shape == (4, 3)
    assert set(clf.predict(x)) <= {"eggs", "ham", "spam"}
    with pytest.raises(InvalidParameterError, match="not in the 'classes'"):
        DPMLPClassifier(classes=["ham", "eggs"], epochs=1).fit(x, y)


def test_dp_at_eps1_keeps_the_membership_audit_near_chance(
    fitted: DPMLPClassifier, halves: tuple[Dataset, Dataset]
) -> None:
    members, nonmembers = halves
    target = SklearnTarget(fitted, bounds=(0.0, 1.0), input_shape=(1, 8, 8))
    # The automatic recipe clones the estimator: the reference models are DP-trained alike.
    audit = audit_membership(
        target, members, nonmembers, recipe=recipe_for(target, num_classes=10), n_reference=2, workers=1
    )
    # A loose bound for two reference models; observed best AUC 0.52 (LiRA offline).
    assert audit.best.metrics.auc <= 0.6
    assert all(o.metrics.auc <= 0.6 for o in audit.outcomes)


runner = CliRunner()


@pytest.fixture(scope="module")
def factory(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dp") / "net.py"
    path.write_text(FACTORY)
    return path


def test_cli_dp_report_and_saved_weights(factory: Path, tmp_path: Path) -> None:
    saved = tmp_path / "private.pt"
    result = runner.invoke(
        app,
        ["harden", "--method", "dp", "--model", f"{factory}:build", "--data", "demo:digits",
         "--epsilon", "1", "--epochs", "2", "--lr", "0.01", "--save", str(saved), "-f", "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["kind"] == "harden"
    defense = report["defense"]
    assert defense["method"] == "dp"
    assert 0.0 < defense["epsilon_spent"] <= 1.0 + EPS_TOLERANCE
    assert defense["target_epsilon"] == 1.0
    assert defense["delta"] == 1e-5
    assert defense["max_grad_norm"] == 1.0
    assert defense["epochs"] == 2
    assert defense["accountant"] == "prv"
    assert defense["noise_multiplier"] > 0
    assert defense["after"]["clean_accuracy"] > defense["before"]["clean_accuracy"]
    assert report["clean_accuracy"] == defense["after"]["clean_accuracy"]
    assert defense["saved"] == str(saved)
    # The trained model is re-audited for membership inference (threshold attacks).
    assert set(defense["audit"]["attacks"]) >= {"loss", "entropy"}
    assert 0.0 <= defense["audit"]["best_auc"] <= 1.0
    (finding,) = report["findings"]
    assert finding["id"] == "privacy.dp-training"
    assert finding["severity"] == "none"
    assert finding["evidence"]["epsilon_spent"] == defense["epsilon_spent"]
    assert "ε = 1.00 spent" in finding["title"]
    # The saved state dict loads into the factory's model.
    net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    net.load_state_dict(torch.load(saved, weights_only=True))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--method", "dp", "--epsilon", "1", "--weights", "w.pt"], "does not take --weights"),
        (["--method", "dp"], "needs --epsilon"),
        (["--method", "dp", "--epsilon", "0"], "--epsilon must be a float in (0, inf), got 0.0"),
        (["--method", "dp", "--epsilon", "1", "--delta", "1"], "--delta must be a float in (0, 1), got 1.0"),
        (
            ["--method", "dp", "--epsilon", "1", "--max-grad-norm", "0"],
            "--max-grad-norm must be a float in (0, inf), got 0.0",
        ),
        (["--method", "dp", "--epsilon", "1", "--accountant", "moments"], "unknown --accountant"),
        (["--method", "adversarial-training"], "needs --eps"),
    ],
)
def test_cli_refusals(factory: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["harden", "--model", f"{factory}:build", "--data", "demo:digits", *args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch.jit, to write the TorchScript file
def test_cli_refuses_batchnorm_and_non_factory_models(factory: Path, tmp_path: Path) -> None:
    common = ["harden", "--method", "dp", "--data", "demo:digits", "--epsilon", "1"]
    result = runner.invoke(app, [*common, "--model", f"{factory}:build_bn"])
    assert result.exit_code == 2
    assert "2 (BatchNorm1d)" in result.output
    model = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(64, 10))), str(model))
    result = runner.invoke(app, [*common, "--model", str(model)])
    assert result.exit_code == 2
    assert "file.py:factory" in result.output
