"""User-shaped data: the model's classes from an ONNX graph or from ``--classes NAME,...`` (issue 11, 1).

Before: an ONNX export of a scikit-learn model and a PyTorch model named no classes, so a CSV test
file lacking one class (numbered from its own values) was scored against the wrong columns: 0%
accuracy where the model is right on every row, and the report looked like a clean run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from typer.testing import CliRunner

from mlarmor.assess.privacy_audit import audit_privacy
from mlarmor.cli import app
from mlarmor.data import load_dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.targets import load_target

runner = CliRunner()
# The model's output order is not the sorted order of the names.
ORDER = ("fox", "cat", "dog")


class _Net(torch.nn.Module):
    def __init__(self, mu: np.ndarray, sd: np.ndarray) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
        self.register_buffer("mu", torch.tensor(mu, dtype=torch.float32))
        self.register_buffer("sd", torch.tensor(sd, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers((x - self.mu) / self.sd)


@pytest.fixture(scope="module")
def pets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Weight in grams, height in cm, age in years: three very different scales, string labels."""
    folder = tmp_path_factory.mktemp("pets")
    rng = np.random.default_rng(0)
    centres = {"cat": (4_000.0, 25.0, 8.0), "dog": (20_000.0, 55.0, 6.0), "fox": (7_000.0, 40.0, 3.0)}
    spread = np.array([900.0, 4.0, 1.5])
    rows = [
        (*(np.asarray(c) + rng.normal(0, 1, 3) * spread), name)
        for name, c in centres.items()
        for _ in range(50)
    ]
    frame = pd.DataFrame(rows, columns=["weight_g", "height_cm", "age_y", "species"]).sample(
        frac=1.0, random_state=0
    )
    x = frame[["weight_g", "height_cm", "age_y"]].to_numpy(np.float32)
    frame.to_csv(folder / "all.csv", index=False)
    frame[frame["species"] != "cat"].to_csv(folder / "no-cat.csv", index=False)

    from skl2onnx import to_onnx

    clf = LogisticRegression(max_iter=5000).fit(x, frame["species"])
    (folder / "zipmap.onnx").write_bytes(to_onnx(clf, x[:1]).SerializeToString())
    tensor = to_onnx(clf, x[:1], options={id(clf): {"zipmap": False}})
    (folder / "tensor.onnx").write_bytes(tensor.SerializeToString())

    torch.manual_seed(0)
    net = _Net(x.mean(0), x.std(0))
    y = torch.tensor([ORDER.index(s) for s in frame["species"]])
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), y).backward()
        opt.step()
    torch.jit.trace(net.eval(), torch.from_numpy(x[:2])).save(str(folder / "net.pt"))
    return {
        "all": folder / "all.csv",
        "no-cat": folder / "no-cat.csv",
        "zipmap": folder / "zipmap.onnx",
        "tensor": folder / "tensor.onnx",
        "net": folder / "net.pt",
    }


def _true_accuracy(pets: dict[str, Path], model: str) -> float:
    frame = pd.read_csv(pets["no-cat"])
    x = frame[["weight_g", "height_cm", "age_y"]].to_numpy(np.float32)
    if model == "net":
        net = torch.jit.load(str(pets["net"]))
        predicted = np.asarray(ORDER)[net(torch.from_numpy(x)).argmax(1).numpy()]
    else:
        target = load_target(pets[model], bounds=(0.0, 1e5))
        predicted = np.asarray(target.class_labels)[target.predict(x)]
    return float(np.mean(predicted == frame["species"].to_numpy()))


def _evasion(pets: dict[str, Path], model: str, *extra: str):  # type: ignore[no-untyped-def]
    attack = ["--attack", "fgsm"] if model == "net" else ["--param", "n_queries=30"]
    return runner.invoke(
        app,
        [
            "evasion", "--model", str(pets[model]), "--data", str(pets["no-cat"]),
            "--label-column", "species", "--n-samples", "40", *attack,
            "--no-reliability-checks", "--fail-on", "none", "-f", "json", *extra,
        ],
    )  # fmt: skip


@pytest.mark.parametrize("model", ["zipmap", "tensor"])
def test_an_onnx_classifier_names_its_classes(pets: dict[str, Path], model: str) -> None:
    target = load_target(pets[model], bounds=(0.0, 1e5))
    assert target.class_labels == ("cat", "dog", "fox")  # classes_ order, read from the graph
    result = _evasion(pets, model)
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    true = _true_accuracy(pets, model)
    assert true > 0.9
    # The file holds dog and fox only, numbered 0 and 1 from its own values: without the graph's
    # labels they were read as the model's 'cat' and 'dog'.
    assert report["clean_accuracy"] == pytest.approx(true, abs=0.05)
    assert report["metadata"]["label_mapping"] == {"dog": 1, "fox": 2}
    assert report["sections"]["evasion"]["label_mapping"] == {"dog": 1, "fox": 2}


def test_classes_names_a_torch_models_outputs(pets: dict[str, Path]) -> None:
    named = _evasion(pets, "net", "--classes", ",".join(ORDER))
    assert named.exit_code in (0, 1), named.output
    report = json.loads(named.stdout)
    true = _true_accuracy(pets, "net")
    assert true > 0.9
    assert report["clean_accuracy"] == pytest.approx(true, abs=0.05)
    assert report["metadata"]["label_mapping"] == {"dog": 2, "fox": 0}
    table = runner.invoke(
        app,
        [
            "evasion", "--model", str(pets["net"]), "--data", str(pets["no-cat"]),
            "--label-column", "species", "--n-samples", "20", "--attack", "fgsm",
            "--no-reliability-checks", "--fail-on", "none", "--classes", ",".join(ORDER),
        ],
    )  # fmt: skip
    assert "labels matched to the model's classes: fox → 0, dog → 2" in " ".join(table.output.split())


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("fox,cat", "are 2, but the model net.pt has 3 outputs"),
        ("fox,cat,cat", "neither a number of classes nor a list of two or more distinct names"),
        ("wolf,cat,dog", "The labels ['fox'] of"),
    ],
)
def test_a_wrong_classes_list_is_refused(pets: dict[str, Path], classes: str, message: str) -> None:
    result = _evasion(pets, "net", "--classes", classes)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output


def test_classes_must_agree_with_a_model_that_names_its_own(pets: dict[str, Path]) -> None:
    with pytest.raises(InvalidParameterError, match="names its own classes"):
        load_target(pets["zipmap"], bounds=(0.0, 1e5), class_labels=["dog", "cat", "fox"])
    same = load_target(pets["zipmap"], bounds=(0.0, 1e5), class_labels=["cat", "dog", "fox"])
    assert same.class_labels == ("cat", "dog", "fox")


def test_the_privacy_report_records_the_mapping(pets: dict[str, Path]) -> None:
    data = load_dataset(str(pets["all"]), label_column="species")
    members, nonmembers = data.split(0.5, seed=0)
    target = load_target(pets["net"], bounds=data.bounds, class_labels=list(ORDER))
    result = audit_privacy(target, members, nonmembers, reference_models=0, attacks=["loss"])
    assert result.label_mapping == {"cat": 1, "dog": 2, "fox": 0}
    report = result.to_report()
    assert report.metadata["label_mapping"] == {"cat": 1, "dog": 2, "fox": 0}
    assert report.sections.privacy is not None
    assert report.sections.privacy.label_mapping == {"cat": 1, "dog": 2, "fox": 0}
    # Matched, the model's accuracy on its data is what it is; numbered by sorted name it was not.
    assert result.membership.target_accuracy[1] > 0.9


def test_the_harden_report_records_the_mapping(pets: dict[str, Path]) -> None:
    result = runner.invoke(
        app,
        [
            "harden", "--model", str(pets["net"]), "--data", str(pets["all"]),
            "--label-column", "species", "--classes", ",".join(ORDER),
            "--method", "adversarial-training", "--eps", "500", "--epochs", "1", "--n-samples", "20",
            "--attack", "fgsm", "--no-reliability-checks", "--fail-on", "none", "-f", "json",
        ],
    )  # fmt: skip
    assert result.exit_code in (0, 1), result.output
    report = json.loads(result.stdout)
    assert report["metadata"]["label_mapping"] == {"cat": 1, "dog": 2, "fox": 0}
    assert report["sections"]["harden"]["label_mapping"] == {"cat": 1, "dog": 2, "fox": 0}
    assert report["sections"]["harden"]["before"]["clean_accuracy"] > 0.9  # not a third, as unmatched
