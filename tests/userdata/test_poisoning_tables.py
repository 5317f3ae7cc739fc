"""User-shaped data: poisoning simulation on a table (issue 11, point 13).

Before: ``mlarmor poisoning simulate`` on a CSV ran its default, an image patch, and failed
("images of shape (n, C, H, W)"); ``--target-class spam`` was refused as not an integer; a fraction
too small for the data said only "large enough to poison at least one row".
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier
from typer.testing import CliRunner

from mlarmor.assess.poisoning import default_attack, simulate_poisoning
from mlarmor.attacks.poisoning import FeatureTrigger, feature_trigger_values
from mlarmor.cli import app
from mlarmor.data import Dataset, load_dataset
from mlarmor.data.labels import class_index
from mlarmor.errors import InvalidParameterError

runner = CliRunner()


def _frame(n: int, seed: int) -> pd.DataFrame:
    """Mail-like rows: an income in tens of thousands, an age, a ratio in [0, 1], a count."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50_000, 15_000, n)
    age = rng.integers(18, 80, n).astype(float)
    ratio = rng.uniform(0, 1, n)
    count = rng.poisson(3, n).astype(float)
    score = (income - 50_000) / 15_000 + (ratio - 0.5) * 3
    label = np.where(score > 0.3, "spam", np.where(score < -0.8, "ham", "eggs"))
    return pd.DataFrame({"income": income, "age": age, "ratio": ratio, "count": count, "label": label})


@pytest.fixture(scope="module")
def mail(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("mail")
    frame = _frame(300, 0)
    frame.to_csv(folder / "train.csv", index=False)
    test = _frame(120, 1)
    test[test["label"] != "eggs"].to_csv(folder / "test-no-eggs.csv", index=False)
    x, y = frame.drop(columns="label").to_numpy(), frame["label"].to_numpy()
    joblib.dump(DecisionTreeClassifier(random_state=0).fit(x, y), folder / "tree.joblib")
    mlp = make_pipeline(StandardScaler(), MLPClassifier((32,), max_iter=800, random_state=0))
    joblib.dump(mlp.fit(x, y), folder / "mlp.joblib")
    return {
        "train": folder / "train.csv",
        "test": folder / "test-no-eggs.csv",
        "tree": folder / "tree.joblib",
        "mlp": folder / "mlp.joblib",
    }


def _simulate(mail: dict[str, Path], *args: str) -> tuple[int, str, dict | None]:  # type: ignore[type-arg]
    result = runner.invoke(
        app,
        [
            "poisoning",
            "simulate",
            "--data",
            str(mail["train"]),
            "--label-column",
            "label",
            *args,
            "-f",
            "json",
        ],
    )
    report = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, result.output, report


@pytest.mark.parametrize(("model", "reach"), [("tree", 0.01), ("mlp", 0.1)])
def test_the_default_on_a_table_is_a_feature_trigger_that_works(
    mail: dict[str, Path], model: str, reach: float
) -> None:
    code, output, report = _simulate(mail, "--model", str(mail[model]), "--target-class", "ham")
    assert report is not None, output
    assert "Traceback" not in output
    assert list(report["attacks"]) == ["feature-trigger"]
    assert "table rows of 4 features" in report["inspection"]["attack_choice"]
    assert report["inspection"]["class_names"] == ["eggs", "ham", "spam"]
    entry = report["attacks"]["feature-trigger"]
    assert (entry["target_class"], entry["target_name"]) == (1, "ham")
    assert len(entry["params"]["features"]) == 2  # half of the 4 features: a pattern, not a fixed row
    curve = {p["fraction"]: p for p in entry["curve"]}
    # The clean model does not send triggered rows to 'ham' (high values mean spam here) ...
    assert curve[0.0]["attack_success"] < 0.2
    assert curve[0.0]["clean_accuracy"] > 0.75
    # ... the poisoned one does, from `reach` on, and its clean accuracy stays near the baseline.
    assert curve[reach]["attack_success"] >= 0.9
    assert curve[0.1]["attack_success"] >= 0.9
    assert curve[0.1]["clean_accuracy"] > curve[0.0]["clean_accuracy"] - 0.15
    finding = report["findings"][0]
    assert "class ham" in finding["title"]
    assert finding["severity"] in ("medium", "high", "critical")
    assert code == (1 if finding["severity"] in ("high", "critical") else 0)


def test_class_names_and_indices_name_the_same_class(mail: dict[str, Path]) -> None:
    _, _, by_name = _simulate(
        mail, "--model", str(mail["tree"]), "--target-class", "spam", "--fraction", "0.1"
    )
    _, _, by_index = _simulate(mail, "--model", str(mail["tree"]), "--target-class", "2", "--fraction", "0.1")
    assert by_name is not None
    assert by_index is not None
    for report in (by_name, by_index):
        for point in report["attacks"]["feature-trigger"]["curve"]:
            point.pop("seconds")
    assert by_name["attacks"] == by_index["attacks"]
    assert by_name["attacks"]["feature-trigger"]["target_name"] == "spam"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--target-class", "Spam"], "one of the class names ['eggs', 'ham', 'spam'], got 'Spam'"),
        (["--target-class", "Spam"], "did you mean 'spam'?"),
        (["--target-class", "wolf"], "--target-class must be a class index in [0, 3)"),
        (["--attack", "label-flip", "--source-class", "cat"], "--source-class must be a class index"),
        # 225 training rows, 150 not of class 0: 0.001 poisons none; 1/150 is the fraction for one row.
        (["--fraction", "0.001"], "--fraction must be large enough to poison one of the"),
        (["--fraction", "0.001"], "or more, got 0.001"),
    ],
)
def test_bad_classes_and_fractions_are_refused_clearly(
    mail: dict[str, Path], args: list[str], message: str
) -> None:
    code, output, _ = _simulate(mail, "--model", str(mail["tree"]), *args)
    assert code == 2, output
    assert message in " ".join(output.split())
    assert "Traceback" not in output


def test_the_smallest_fraction_named_poisons_one_row(mail: dict[str, Path]) -> None:
    code, output, _ = _simulate(mail, "--model", str(mail["tree"]), "--fraction", "0.001")
    assert code == 2
    smallest = " ".join(output.split()).split("poison one of the ")[1]
    eligible, rest = smallest.split(" eligible rows: ")
    fraction = float(rest.split(" ")[0])
    assert round(fraction * int(eligible)) == 1
    _code, output, report = _simulate(mail, "--model", str(mail["tree"]), "--fraction", str(fraction))
    assert report is not None, output
    assert report["attacks"]["feature-trigger"]["curve"][1]["n_poisoned"] == 1


def test_a_test_file_lacking_a_class_is_numbered_like_the_training_data(mail: dict[str, Path]) -> None:
    _, output, report = _simulate(
        mail,
        "--model",
        str(mail["tree"]),
        "--test",
        str(mail["test"]),
        "--target-class",
        "ham",
        "--fraction",
        "0.1",
    )
    assert report is not None, output
    # Numbered from its own values, 'ham' and 'spam' would be 0 and 1 and the accuracy near 0.
    assert report["attacks"]["feature-trigger"]["curve"][0]["clean_accuracy"] > 0.75


def test_the_trigger_respects_immutable_and_integer_features() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack(
        [rng.normal(5e4, 1e4, 80), rng.integers(0, 9, 80), rng.uniform(0, 1, 80), rng.normal(0, 1, 80)]
    )
    features, values = feature_trigger_values(x, size=2, immutable=(0, 3), integer=(1,))
    assert features == (1, 2)
    assert float(values[0]).is_integer()
    assert values[0] <= x[:, 1].max()
    assert values[1] <= x[:, 2].max()
    with pytest.raises(InvalidParameterError, match="at most the 2 features that are not immutable"):
        feature_trigger_values(x, size=3, immutable=(0, 3))
    ds = Dataset(x=x, y=(x[:, 2] > 0.5).astype(int), bounds=(-10.0, 1e5), immutable=(0, 3), integer=(1,))
    assert default_attack(ds)[0] == "feature-trigger"
    frozen = Dataset(x=x, y=ds.y, bounds=(-10.0, 1e5), immutable=(0, 1, 2, 3))
    name, why = default_attack(frozen)
    assert name == "label-flip"
    assert "immutable" in why
    poisoned = FeatureTrigger(immutable=ds.immutable, integer=ds.integer)(
        ds.x, ds.y, fraction=0.2, target_class=1, num_classes=2
    )
    changed = poisoned.x[poisoned.poisoned] != ds.x[poisoned.poisoned]
    assert not changed[:, [0, 3]].any()
    assert np.all(poisoned.x[:, 1] == np.round(poisoned.x[:, 1]))


def test_simulate_poisoning_takes_class_names_in_the_library(mail: dict[str, Path]) -> None:
    from mlarmor.targets import load_target
    from mlarmor.targets.recipe import recipe_for

    data = load_dataset(str(mail["train"]), label_column="label")
    train, test = data.split(0.25, seed=0)
    recipe = recipe_for(load_target(str(mail["tree"]), bounds=data.bounds, num_classes=3), num_classes=3)
    sim = simulate_poisoning(recipe, train, test, fractions=[0.1], target_class="ham")
    assert (sim.target_class, sim.target_name) == (1, "ham")
    assert sim.attacks == ["feature-trigger"]
    assert class_index("3", ("0", "1", "2", "3"), 4, "target_class", "f") == 3
    with pytest.raises(InvalidParameterError, match=r"\['eggs', 'ham', 'spam'\]"):
        simulate_poisoning(recipe, train, test, fractions=[0.1], target_class="wolf")
