"""User-shaped tables: evasion budgets per feature (issue 11, point 2).

A table whose features live on very different scales (an age of 11-15, an income in the tens of
thousands) used to get one global bound, 0 to the file's maximum, and a default ε of 50 on every
feature: the age could jump anywhere while the income barely moved. ε is now a fraction of each
feature's range by default on tables, the ranges come from the data or --feature-bounds, and the
report records them with the immutable and integer features.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from typer.testing import CliRunner

from mlarmor.assess import evaluate_evasion
from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.errors import MlarmorWarning
from mlarmor.targets import load_target
from mlarmor.testing.tables import loans as loan_table

runner = CliRunner()


@pytest.fixture(scope="module")
def loans(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A loan table: age 11-15 (integer), income 20k-90k, a debt ratio in [0, 1]; string labels."""
    tmp = tmp_path_factory.mktemp("loans")
    frame = loan_table(240, seed=0)
    train, test = frame.iloc[:180], frame.iloc[180:]
    features = ["age", "income", "debt_ratio"]
    model = make_pipeline(StandardScaler(), MLPClassifier((16,), max_iter=2000, random_state=0))
    model.fit(train[features].to_numpy(), train["decision"])
    joblib.dump(model, tmp / "clf.joblib")
    train.to_csv(tmp / "train.csv", index=False)
    test.to_csv(tmp / "test.csv", index=False)
    return {"model": tmp / "clf.joblib", "train": tmp / "train.csv", "test": tmp / "test.csv", "dir": tmp}


def _run(*args: str) -> dict:  # type: ignore[type-arg]
    result = runner.invoke(app, ["evasion", *args, "-f", "json"])
    assert result.exit_code in (0, 1), result.output
    return json.loads(result.stdout)


def test_the_default_eps_is_a_fraction_of_each_features_range(loans: dict[str, Path]) -> None:
    out = loans["dir"] / "adv.npz"
    report = _run(
        "-m", str(loans["model"]), "-d", str(loans["test"]), "--label-column", "decision",
        "--feature-bounds", str(loans["train"]), "--integer", "age", "--immutable", "debt_ratio",
        "--save-adv", str(out), "--n-samples", "60", "--no-reliability-checks",
    )  # fmt: skip
    section = report["sections"]["evasion"]
    assert section["eps_unit"] == "range"
    assert report["metadata"]["budget_eps"] == 0.1  # the default, 0.03 and 0.1 of each range
    features = {f["name"]: f for f in section["features"]}
    train = pd.read_csv(loans["train"])
    test = pd.read_csv(loans["test"])
    for name in ("age", "income"):
        low = min(train[name].min(), test[name].min())
        high = max(train[name].max(), test[name].max())
        assert features[name]["low"] == pytest.approx(low)
        assert features[name]["high"] == pytest.approx(high)
        assert features[name]["budget"] == pytest.approx(0.1 * (high - low), rel=1e-6)
    assert features["age"]["integer"]
    assert not features["age"]["immutable"]
    assert features["debt_ratio"]["immutable"]
    assert not any(f["eps_exceeds_range"] for f in features.values())
    assert "train.csv" in report["metadata"]["feature_bounds"]

    # The adversarial rows, in the table's units, respect every feature's own budget and range.
    saved = np.load(out)
    x = test[["age", "income", "debt_ratio"]].to_numpy(dtype=np.float32)[saved["indices"]]
    adv = saved["x_adv_0.1"]
    moved = np.abs(adv - x)
    assert (moved[:, 0] <= 0.1 * (features["age"]["high"] - features["age"]["low"]) + 1e-4).all()
    assert (moved[:, 1] <= 0.1 * (features["income"]["high"] - features["income"]["low"]) * (1 + 1e-5)).all()
    assert (moved[:, 2] == 0).all()  # immutable
    assert (adv[:, 0] == np.round(adv[:, 0])).all()  # integer, in years
    assert (adv[:, 1] >= features["income"]["low"]).all()
    assert (adv[:, 1] <= features["income"]["high"]).all()
    # The attack did move incomes by thousands, not by the 0.1 an absolute ε would allow.
    assert moved[saved["success_0.1"], 1].max() > 1000


def test_an_absolute_eps_wider_than_a_features_range_is_warned(loans: dict[str, Path]) -> None:
    dataset = load_dataset(loans["test"], label_column="decision")
    target = load_target(loans["model"], bounds=dataset.bounds, input_shape=dataset.input_shape)
    with pytest.warns(MlarmorWarning, match=r"exceeds the whole range of 2 feature\(s\): 'age' spans"):
        assessment = evaluate_evasion(
            target, dataset, eps=[50.0], eps_unit="absolute", n_samples=20, reliability=False
        )
    section = assessment.to_report().sections.evasion
    assert section is not None
    assert section.features is not None
    flagged = {f.name for f in section.features if f.eps_exceeds_range}
    assert flagged == {"age", "debt_ratio"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluate_evasion(target, dataset, eps=[0.1], n_samples=20, reliability=False)
    assert not [w for w in caught if "exceeds the whole range" in str(w.message)]  # range: within


def test_std_units_bound_each_feature_by_its_spread(loans: dict[str, Path]) -> None:
    dataset = load_dataset(loans["test"], label_column="decision")
    target = load_target(loans["model"], bounds=dataset.bounds, input_shape=dataset.input_shape)
    std = evaluate_evasion(target, dataset, eps=[0.5], eps_unit="std", n_samples=40, reliability=False)
    assert std.budget is not None
    expected = dataset.x.astype(np.float64).std(axis=0)
    assert std.budget.scale == pytest.approx(expected, rel=1e-6)
    # Mapped back to the table's units, each feature moved by at most half its own spread.
    result = std.result_at(0.5)
    moved = np.abs(std.budget.to_data(result.x_adv) - dataset.x[std.indices])
    assert (moved <= 0.5 * expected * (1 + 1e-5) + 1e-6).all()
    assert result.success.any()
    assert (moved[result.success].max(axis=0) > 0.2 * expected).any()


def test_images_keep_an_absolute_eps_and_scaled_tables_are_unchanged() -> None:
    from mlarmor.assess._units import in_units, resolve_unit

    digits = load_dataset("demo:digits")
    assert resolve_unit("auto", digits, "test") == "absolute"
    cancer = load_dataset("demo:breast-cancer")  # min-max scaled to [0, 1] per feature
    assert resolve_unit("auto", cancer, "test") == "range"
    space = in_units(object(), cancer, "range")  # type: ignore[arg-type]
    # Every feature already spans [0, 1]: one unit of range is one input unit, so ε means the same.
    assert space.budget.scale == pytest.approx(np.ones(cancer.num_features))
    assert np.abs(space.dataset.x - cancer.x).max() < 1e-6


def test_white_box_attacks_get_gradients_through_the_rescaled_space(loans: dict[str, Path]) -> None:
    from mlarmor.targets import TorchTarget

    dataset = load_dataset(loans["test"], label_column="decision", integer=["age"])
    low, high = (a.astype(np.float64) for a in dataset.feature_limits)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    scale = torch.tensor(high - low, dtype=torch.float32)
    x = (torch.tensor(dataset.x) - torch.tensor(low, dtype=torch.float32)) / scale
    y = torch.tensor(dataset.y)
    optimiser = torch.optim.Adam(net.parameters(), lr=0.05)
    for _ in range(300):
        optimiser.zero_grad()
        torch.nn.functional.cross_entropy(net(x), y).backward()
        optimiser.step()
    model = torch.nn.Sequential(_Standardise(torch.tensor(low, dtype=torch.float32), scale), net).eval()
    target = TorchTarget(model, bounds=dataset.bounds, input_shape=(3,))
    assessment = evaluate_evasion(target, dataset, eps=[0.02, 0.2], reliability=False)
    assert assessment.capability == "gradients"
    assert assessment.eps_unit == "range"
    assert assessment.clean_accuracy > 0.8
    weak, strong = (assessment.result_at(e).robust_accuracy for e in (0.02, 0.2))
    assert strong < weak <= assessment.clean_accuracy
    assert strong < assessment.clean_accuracy - 0.2  # a fifth of each range flips many decisions
    adv = assessment.budget.to_data(assessment.result_at(0.2).x_adv)  # type: ignore[union-attr]
    assert (adv[:, 0] == np.round(adv[:, 0])).all()


class _Standardise(torch.nn.Module):
    """The user's own input scaling, inside their model."""

    def __init__(self, low: torch.Tensor, scale: torch.Tensor) -> None:
        super().__init__()
        self.low, self.scale = low, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.low) / self.scale
