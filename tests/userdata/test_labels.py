"""User-shaped data: labels matched to the model's own classes (issue 11, point 1).

A CSV with string labels is numbered from its own values; without matching, a test file lacking one
class was scored against the wrong columns (5% accuracy instead of about 95%, exit 0).
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from mlarmor.cli import app
from mlarmor.data import Dataset, load_dataset
from mlarmor.data.labels import align_labels
from mlarmor.errors import InvalidParameterError

runner = CliRunner()


def _ds(y: list[int], names: tuple[str, ...] | None) -> Dataset:
    return Dataset(x=np.zeros((len(y), 2)), y=np.asarray(y), class_names=names, name="user.csv")


def test_a_file_lacking_a_class_is_renumbered_to_the_model() -> None:
    # The file holds only 'dog' and 'fox': numbered 0 and 1 from its own values.
    aligned = align_labels(_ds([0, 1, 1], ("dog", "fox")), ["cat", "dog", "fox"])
    assert aligned.dataset.y.tolist() == [1, 2, 2]
    assert aligned.mapping == {"dog": 1, "fox": 2}
    assert aligned.basis == "names"
    assert aligned.dataset.class_names == ("cat", "dog", "fox")


def test_integer_classes_that_are_not_0_to_c_minus_1() -> None:
    # A model fitted on labels 1, 2, 5: the data's codes are matched, not taken as column indices.
    aligned = align_labels(_ds([1, 5, 2], None), [1, 2, 5])
    assert aligned.dataset.y.tolist() == [0, 2, 1]


def test_codes_with_descriptive_names_match_a_model_fitted_on_codes() -> None:
    aligned = align_labels(_ds([0, 1], ("malignant", "benign")), [0, 1])
    assert aligned.basis == "codes"
    assert aligned.dataset.y.tolist() == [0, 1]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("Cat", "dog"), "differ only in case"),
        (("cat", "wolf"), "['wolf']"),
    ],
)
def test_labels_the_model_does_not_know_are_refused(names: tuple[str, ...], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message.replace("[", r"\[").replace("]", r"\]")):
        align_labels(_ds([0, 1], names), ["cat", "dog"])


@pytest.fixture
def animals(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    centres = {"cat": (0.2, 0.2), "dog": (0.8, 0.2), "fox": (0.5, 0.8)}
    rows = [
        (*np.clip(np.asarray(c) + rng.normal(0, 0.05, 2), 0, 1), name)
        for name, c in centres.items()
        for _ in range(40)
    ]
    frame = pd.DataFrame(rows, columns=["weight", "height", "species"])
    model = LogisticRegression(max_iter=1000).fit(frame[["weight", "height"]].to_numpy(), frame["species"])
    joblib.dump(model, tmp_path / "clf.joblib")
    test = frame[frame["species"] != "cat"].sample(frac=1.0, random_state=0)  # no cat in the test file
    test.to_csv(tmp_path / "test.csv", index=False)
    capital = test.replace({"species": {"dog": "Dog"}})
    capital.to_csv(tmp_path / "capital.csv", index=False)
    return {
        "model": tmp_path / "clf.joblib",
        "test": tmp_path / "test.csv",
        "capital": tmp_path / "capital.csv",
    }


def test_evasion_on_a_csv_lacking_a_class_measures_the_right_accuracy(animals: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "evasion", "--model", str(animals["model"]), "--data", str(animals["test"]),
            "--label-column", "species", "--eps", "0.01", "--n-samples", "40", "--param", "n_queries=50",
            "--no-reliability-checks", "-f", "json", "--fail-on", "critical",
        ],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["clean_accuracy"] > 0.9  # was about 0.05 when 'dog' was read as class 0 ('cat')
    assert report["metadata"]["label_mapping"] == {"dog": 1, "fox": 2}


def test_a_capitalised_label_is_a_clear_error(animals: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "evasion", "--model", str(animals["model"]), "--data", str(animals["capital"]),
            "--label-column", "species", "--eps", "0.01", "--n-samples", "10",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    text = " ".join(result.output.split())
    assert "'Dog' vs 'dog'" in text
    assert "Traceback" not in result.output


def test_the_demo_sets_still_match_models_fitted_on_their_codes() -> None:
    data = load_dataset("demo:breast-cancer")
    model = LogisticRegression(max_iter=3000).fit(data.x, data.y)
    aligned = align_labels(data, model.classes_)
    assert aligned.basis == "codes"
    assert np.array_equal(aligned.dataset.y, data.y)
