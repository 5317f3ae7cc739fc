"""Whole pickled models whose classes live in the user's own module (``mynet.Net``, a custom transformer).

mlarmor imports the user's code only from ``python_path`` (``--python-path``); when the module is
missing it looks next to the model and in the working directory, after the scan, and says what it found.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlarmor.errors import InputError, InvalidParameterError, MlarmorWarning, UnsafeModelError
from mlarmor.targets import SklearnTarget, TorchTarget, load_target

pytestmark = pytest.mark.usefixtures("no_user_modules")

FEATURES = ["petal", "weight_g", "height_mm", "price_cents"]


def _data(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    frame = pd.read_csv(folder / "data.csv")
    return frame[FEATURES].to_numpy(np.float32), frame["species"].to_numpy()


def _models_only(folder: Path, tmp_path: Path) -> Path:
    """The model files without the Python modules beside them (a model shipped on its own)."""
    alone = tmp_path / "shipped"
    alone.mkdir()
    for name in ("model.pt", "pipe.joblib"):
        shutil.copy(folder / name, alone / name)
    return alone


def test_missing_module_found_next_to_the_model(
    user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the working directory holds no mynet.py
    path = list(sys.path)
    with pytest.raises(InputError) as caught:
        load_target(user_folder / "model.pt", bounds=(0.0, 3000.0), num_classes=3)
    message = str(caught.value)
    assert "needs the Python module 'mynet' (for mynet.Net)" in message
    assert f"found {user_folder / 'mynet.py'} next to the model" in message
    assert f"--python-path {user_folder}" in message
    assert "state_dict()" in message
    assert "FILE.py:factory --weights" in message
    assert "passed the scan (verdict medium: mynet.Net is a class the scanner does not know)" in message
    assert "mynet" not in sys.modules  # looked for, never imported
    assert sys.path == path


def test_missing_module_found_in_the_working_directory(
    user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = _models_only(user_folder, tmp_path)
    monkeypatch.chdir(user_folder)  # the code is in the working directory, the model elsewhere
    with pytest.raises(InputError) as caught:
        load_target(shipped / "pipe.joblib", bounds=(0.0, 3000.0))
    message = str(caught.value)
    assert "needs the Python module 'custom_tx' (for custom_tx.MaxAbsScale)" in message
    assert "found ./custom_tx.py in the working directory" in message
    assert "--python-path . " in message
    assert "state_dict" not in message  # no torch advice for a scikit-learn pipeline
    assert "custom_tx" not in sys.modules


def test_missing_module_nowhere(user_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = _models_only(user_folder, tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"'mynet'.* not found\. Name the directory .*--python-path DIR"):
        load_target(shipped / "model.pt", bounds=(0.0, 3000.0), num_classes=3)


def test_python_path_loads_the_torch_model(user_folder: Path, tmp_path: Path) -> None:
    shipped = _models_only(user_folder, tmp_path)
    path = list(sys.path)
    target = load_target(
        shipped / "model.pt", bounds=(0.0, 3000.0), input_shape=(4,), python_path=[user_folder]
    )
    assert sys.path == path  # on sys.path only while the file loaded
    assert isinstance(target, TorchTarget)
    assert target.num_classes == 3
    assert sys.modules["mynet"].__file__ == str(user_folder / "mynet.py")
    x, _ = _data(user_folder)
    expected = np.load(user_folder / "expected.npz")
    np.testing.assert_array_equal(target.predict(x), expected["torch_pred"])


def test_python_path_loads_the_sklearn_pipeline(user_folder: Path) -> None:
    target = load_target(user_folder / "pipe.joblib", bounds=(0.0, 3000.0), python_path=str(user_folder))
    assert isinstance(target, SklearnTarget)
    x, y = _data(user_folder)
    expected = np.load(user_folder / "expected.npz", allow_pickle=False)
    predicted = np.asarray(target.classes)[target.predict(x)]
    np.testing.assert_array_equal(predicted, expected["sklearn_pred"])
    assert float((predicted == y).mean()) == pytest.approx(float(expected["sklearn_acc"]))


def test_an_other_version_of_the_module_lacks_the_class(user_folder: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    old.mkdir()
    (old / "mynet.py").write_text("import torch\n\n\nclass OldNet(torch.nn.Module):\n    pass\n")
    with pytest.raises(InputError) as caught:
        load_target(user_folder / "model.pt", bounds=(0.0, 3000.0), num_classes=3, python_path=[old])
    message = str(caught.value)
    assert "needs the class 'Net' from the Python module 'mynet'" in message
    assert f"({old / 'mynet.py'}) has no 'Net'" in message
    assert f"found {user_folder / 'mynet.py'} next to the model" in message


def test_an_already_imported_module_of_the_same_name_is_named(user_folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(user_folder / "mynet.py", other / "mynet.py")
    load_target(user_folder / "model.pt", bounds=(0.0, 3000.0), num_classes=3, python_path=[other])
    with pytest.warns(MlarmorWarning, match=r"'mynet' is already imported from .*other.*not with"):
        load_target(user_folder / "model.pt", bounds=(0.0, 3000.0), num_classes=3, python_path=[user_folder])


def test_the_scan_runs_first_and_the_lookup_imports_nothing(tmp_path: Path) -> None:
    """An unsafe file is refused before any module is looked up or imported, --python-path or not."""
    code = tmp_path / "code"
    code.mkdir()
    marker = tmp_path / "imported"
    (code / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\n\n\nclass Net:\n    pass\n")
    # GLOBAL evilmod.Net (unknown: medium) then GLOBAL os.system (critical), neither run by the scan.
    evil = b"\x80\x02cevilmod\nNet\n)\x81cos\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R."
    (tmp_path / "model.pkl").write_bytes(evil)
    with pytest.raises(UnsafeModelError, match="failed the scan"):
        load_target(tmp_path / "model.pkl", bounds=(0, 1), num_classes=2, python_path=[code])
    assert not marker.exists()
    assert "evilmod" not in sys.modules
    # A file that passes the scan but needs the module: named in the error, not imported.
    (tmp_path / "needs.pkl").write_bytes(b"\x80\x02cevilmod\nNet\n)\x81.")
    shutil.copy(code / "evilmod.py", tmp_path / "evilmod.py")
    with pytest.raises(InputError, match=r"found .*evilmod\.py next to the model"):
        load_target(tmp_path / "needs.pkl", bounds=(0, 1), num_classes=2)
    assert not marker.exists()
    assert "evilmod" not in sys.modules


def test_bad_python_path(user_folder: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match=r"'python_path' parameter .* existing directories"):
        load_target(user_folder / "model.pt", bounds=(0, 1), python_path=[tmp_path / "nope"])
    with pytest.raises(InvalidParameterError, match=r"'python_path' parameter of load_target does not apply"):
        load_target("https://example.invalid/predict", bounds=(0, 1), num_classes=2, python_path=[tmp_path])
