"""load_target: dispatch by content, scan before load, refuse unsafe files unless trusted."""

from __future__ import annotations

import io
import pickle
import shlex
import subprocess
import sys
import textwrap
import warnings
import zipfile
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch
from skl2onnx import to_onnx
from sklearn.linear_model import LogisticRegression

from mlarmor.errors import InputError, InvalidParameterError, UnsafeModelError, UnsupportedModelError
from mlarmor.findings import Severity
from mlarmor.targets import (
    HttpTarget,
    OnnxTarget,
    SklearnTarget,
    TorchTarget,
    load_target,
    scan_before_load,
)

MEAN, STD = 0.3, 0.4

ARCH = textwrap.dedent(
    """
    import torch
    from arch_layers import hidden_width  # a neighbour module: the file's folder is importable


    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torch.nn.Sequential(
                torch.nn.Flatten(),
                torch.nn.Linear(64, hidden_width()),
                torch.nn.ReLU(),
                torch.nn.Linear(hidden_width(), 10),
            )

        def forward(self, x):
            return self.body(x)


    def build():
        return Net()


    def broken():
        raise RuntimeError("needs a GPU")


    def not_a_model():
        return 42
    """
)


# -- malicious files, built from opcodes; loading one would create a file in the canary folder ------


def os_system_pickle(canary_file: Path) -> bytes:
    """Protocol-0 pickle: GLOBAL os.system, MARK, UNICODE command, TUPLE, REDUCE, STOP."""
    command = f"touch {shlex.quote(str(canary_file))}"
    return b"cos\nsystem\n(V" + command.encode() + b"\ntR."


def torch_zip_with(data_pkl: bytes) -> bytes:
    """A real torch.save archive whose data.pkl is replaced by ``data_pkl``."""
    original = io.BytesIO()
    torch.save({"w": torch.zeros(2)}, original)
    out = io.BytesIO()
    with zipfile.ZipFile(original) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            body = data_pkl if info.filename.endswith("/data.pkl") else src.read(info)
            dst.writestr(info.filename, body)
    return out.getvalue()


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("factory")
    (folder / "arch_layers.py").write_text("def hidden_width():\n    return 32\n")
    path = folder / "arch.py"
    path.write_text(ARCH)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory, torch_net: torch.nn.Module) -> Path:
    path = tmp_path_factory.mktemp("weights") / "net.pt"
    torch.save(torch_net.state_dict(), path)
    return path


def reference_labels(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return net((torch.from_numpy(x) - MEAN) / STD).argmax(1).numpy()


# -- PyTorch --------------------------------------------------------------------------------------


def test_torchscript(
    tmp_path: Path, torch_net: torch.nn.Module, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    path = tmp_path / "net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(torch_net), str(path))
    target = load_target(path, bounds=(0, 1), input_shape=(1, 8, 8), mean=MEAN, std=STD)
    assert isinstance(target, TorchTarget)
    assert target.name == "net.pt"
    assert target.num_classes == 10
    x = digits[0][:200]
    np.testing.assert_array_equal(target.predict(x), reference_labels(torch_net, x))


def test_factory_with_weights(
    arch: Path, weights: Path, torch_net: torch.nn.Module, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    target = load_target(
        f"{arch}:build", weights=weights, bounds=(0, 1), input_shape=(1, 8, 8), mean=MEAN, std=STD
    )
    assert isinstance(target, TorchTarget)
    assert target.name == "arch.py:build"
    x = digits[0][:200]
    np.testing.assert_array_equal(target.predict(x), reference_labels(torch_net, x))
    x_t = torch.from_numpy(x).requires_grad_(True)
    target.logits(x_t).sum().backward()  # white-box: gradients reach input space
    assert x_t.grad is not None
    assert x_t.grad.abs().sum() > 0


def test_factory_with_safetensors_and_checkpoint_dicts(
    arch: Path, tmp_path: Path, torch_net: torch.nn.Module, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = {k: v.contiguous() for k, v in torch_net.state_dict().items()}
    st_path = tmp_path / "net.safetensors"
    safetensors_torch.save_file(state, str(st_path))
    ckpt_path = tmp_path / "checkpoint.pt"
    torch.save({"state_dict": state, "epoch": 3}, ckpt_path)
    x = digits[0][:100]
    for path in (st_path, ckpt_path):
        target = load_target(f"{arch}:build", weights=path, bounds=(0, 1), num_classes=10, mean=MEAN, std=STD)
        np.testing.assert_array_equal(target.predict(x), reference_labels(torch_net, x))


def test_factory_errors(arch: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no function 'missing'"):
        load_target(f"{arch}:missing", bounds=(0, 1), num_classes=10)
    with pytest.raises(InputError, match=r"broken\(\) failed: RuntimeError: needs a GPU"):
        load_target(f"{arch}:broken", bounds=(0, 1), num_classes=10)
    with pytest.raises(UnsupportedModelError, match=r"returned a int; it must return a torch\.nn\.Module"):
        load_target(f"{arch}:not_a_model", bounds=(0, 1), num_classes=10)
    with pytest.raises(InputError, match="does not exist"):
        load_target(f"{tmp_path / 'nope.py'}:build", bounds=(0, 1), num_classes=10)
    bad_weights = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), bad_weights)
    with pytest.raises(UnsupportedModelError, match=r"do not fit the model built by arch\.py:build"):
        load_target(f"{arch}:build", weights=bad_weights, bounds=(0, 1), num_classes=10)
    syntax = tmp_path / "syntax.py"
    syntax.write_text("def build(:\n")
    with pytest.raises(InputError, match="failed to import: SyntaxError"):
        load_target(f"{syntax}:build", bounds=(0, 1), num_classes=10)
    with pytest.raises(InvalidParameterError, match=r"arch\.py:factory"):
        load_target(arch, bounds=(0, 1))


def test_whole_pickled_module_that_passes_the_scan(tmp_path: Path) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    path = tmp_path / "whole.pth"
    torch.save(net, path)
    target = load_target(path, bounds=(0, 1), input_shape=(4,))
    assert isinstance(target, TorchTarget)
    x = np.random.default_rng(0).random((5, 4), dtype=np.float32)
    np.testing.assert_array_equal(target.predict(x), net(torch.from_numpy(x)).argmax(1).numpy())


def test_state_dict_alone_asks_for_a_factory(weights: Path) -> None:
    with pytest.raises(UnsupportedModelError, match=r"state dict .* file\.py:factory"):
        load_target(weights, bounds=(0, 1), num_classes=10)


# -- scikit-learn and ONNX --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl", "model.pickle", "model.joblib.gz"])
def test_sklearn_files(
    tmp_path: Path, name: str, digits_lr: LogisticRegression, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    path = tmp_path / name
    if name.endswith(".pkl") or name.endswith(".pickle"):
        path.write_bytes(pickle.dumps(digits_lr))
    else:
        joblib.dump(digits_lr, path, compress=3 if name.endswith(".gz") else 0)
    target = load_target(path, bounds=(0, 1))
    assert isinstance(target, SklearnTarget)
    x = digits[0][:100].reshape(100, -1)
    np.testing.assert_array_equal(target.predict(x), digits_lr.predict(x))


def test_content_wins_over_extension(tmp_path: Path, digits_lr: LogisticRegression) -> None:
    path = tmp_path / "looks_like.onnx"
    joblib.dump(digits_lr, path)
    assert isinstance(load_target(path, bounds=(0, 1)), SklearnTarget)


def test_onnx_file(
    tmp_path: Path, digits_lr: LogisticRegression, digits: tuple[np.ndarray, np.ndarray]
) -> None:
    x = digits[0][:100].reshape(100, -1)
    path = tmp_path / "model.onnx"
    path.write_bytes(to_onnx(digits_lr, x[:1]).SerializeToString())
    target = load_target(path, bounds=(0, 1))
    assert isinstance(target, OnnxTarget)
    np.testing.assert_allclose(target.predict_proba(x), digits_lr.predict_proba(x), atol=1e-5)


def test_normalisation_does_not_apply_to_sklearn(tmp_path: Path, digits_lr: LogisticRegression) -> None:
    path = tmp_path / "model.joblib"
    joblib.dump(digits_lr, path)
    with pytest.raises(InvalidParameterError, match="'mean' parameter of load_target does not apply"):
        load_target(path, bounds=(0, 1), mean=0.5)


def test_skops_without_the_package(tmp_path: Path) -> None:
    try:
        import skops  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("skops is installed")
    path = tmp_path / "model.skops"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("schema.json", '{"__class__": "LogisticRegression"}')
    with pytest.raises(UnsupportedModelError, match="pip install skops"):
        load_target(path, bounds=(0, 1))


# -- URLs and bad input ---------------------------------------------------------------------------


def test_url() -> None:
    target = load_target("https://models.example/v1/predict", bounds=(0, 1), num_classes=3, output="labels")
    assert isinstance(target, HttpTarget)
    assert target.capabilities == {"labels"}
    with pytest.raises(InvalidParameterError, match="--classes"):
        load_target("http://models.example/predict", bounds=(0, 1))
    with pytest.raises(InvalidParameterError, match="'std' parameter of load_target does not apply to a URL"):
        load_target("http://models.example/predict", bounds=(0, 1), num_classes=3, std=0.5)


def test_bad_input(tmp_path: Path, weights: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_target(tmp_path / "missing.pt", bounds=(0, 1))
    text = tmp_path / "notes.bin"
    text.write_text("just some notes, not a model\n" * 5)
    with pytest.raises(
        (UnsupportedModelError, UnsafeModelError), match=r"Supported: TorchScript|failed the scan"
    ):
        load_target(text, bounds=(0, 1))
    with pytest.raises(InvalidParameterError, match=r"only applies to file\.py:factory"):
        load_target(weights, weights=weights, bounds=(0, 1))
    with pytest.raises(InvalidParameterError, match="'bounds' parameter of load_target"):
        load_target(weights, bounds=(1, 0))


# -- scan before load ------------------------------------------------------------------------------


def test_refuses_a_malicious_pickle(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(os_system_pickle(canary / "pickle"))
    with pytest.raises(UnsafeModelError) as info:
        load_target(path, bounds=(0, 1))
    message = str(info.value)
    assert "failed the scan (verdict: critical)" in message
    assert "os.system" in message or "posix.system" in message
    assert "pass trust=True (--trust) to load it anyway" in message
    assert scan_before_load(path, trust=True).severity >= Severity.HIGH  # trust still scans
    # the `canary` fixture asserts the folder is still empty


def test_refuses_a_torch_file_with_a_malicious_data_pkl(tmp_path: Path, canary: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(torch_zip_with(os_system_pickle(canary / "torch")))
    with pytest.raises(UnsafeModelError, match=r"\(member [^)]*data\.pkl\)"):
        load_target(path, bounds=(0, 1), num_classes=10)


def test_refuses_malicious_weights_before_running_the_factory(tmp_path: Path, canary: Path) -> None:
    marker = tmp_path / "factory_ran"
    arch = tmp_path / "arch.py"
    arch.write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n\ndef build():\n    return None\n"
    )
    evil = tmp_path / "weights.pt"
    evil.write_bytes(torch_zip_with(os_system_pickle(canary / "weights")))
    with pytest.raises(UnsafeModelError, match=r"weights\.pt failed the scan"):
        load_target(f"{arch}:build", weights=evil, bounds=(0, 1), num_classes=10)
    assert not marker.exists()


def test_trust_loads_anyway_in_a_subprocess(tmp_path: Path) -> None:
    live = tmp_path / "live_canary"  # not the `canary` fixture: these payloads are meant to run
    live.mkdir()
    pkl = tmp_path / "model.pkl"
    pkl.write_bytes(os_system_pickle(live / "pickle"))
    pt = tmp_path / "model.pt"
    pt.write_bytes(torch_zip_with(os_system_pickle(live / "torch")))
    script = textwrap.dedent(
        """
        import sys
        from mlarmor.errors import MlarmorError
        from mlarmor.targets import load_target

        for path in sys.argv[1:]:
            try:
                load_target(path, bounds=(0, 1), num_classes=2, trust=True)
            except MlarmorError as e:
                print(type(e).__name__, str(e)[:200])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(pkl), str(pt)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in live.iterdir()) == ["pickle", "torch"]  # both payloads ran
    assert done.stderr.count("failed the scan") == 2  # the warning is logged even when trusted
    assert "because trust=True" in done.stderr
    assert done.stdout.count("UnsupportedModelError") == 2  # os.system returned an int, not a model
