"""Benign artifacts: every writer produces a file its real library loads back."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from mlarmor.testing.corpus.artifacts import ARTIFACTS, Artifact, available, write_benign


def _load(artifact: Artifact, path: Path) -> object:
    """Load ``path`` with the library a user would use for it (these files are benign)."""
    if artifact.loader == "torch":
        import torch

        return torch.load(path, weights_only=False)
    if artifact.loader == "torchscript":
        import torch

        return torch.jit.load(str(path))
    if artifact.loader == "pickle":
        with path.open("rb") as f:
            return pickle.load(f)
    if artifact.loader == "joblib":
        import joblib

        return joblib.load(path)
    if artifact.loader == "numpy":
        import numpy as np

        loaded = np.load(path, allow_pickle=False)
        return {k: loaded[k] for k in loaded.files} if hasattr(loaded, "files") else loaded
    if artifact.loader == "keras":
        os.environ.setdefault("KERAS_BACKEND", "torch")
        import keras

        return keras.saving.load_model(path)
    if artifact.loader == "onnx":
        import onnx

        model = onnx.load(str(path))
        onnx.checker.check_model(model)
        return model
    if artifact.loader == "safetensors":
        from safetensors.numpy import load_file

        return load_file(str(path))
    if artifact.loader == "gguf":
        import gguf

        return gguf.GGUFReader(str(path))
    raise AssertionError(f"no loader for {artifact.loader}")


_TEXT_MODELS = {"sklearn_countvectorizer_nb_joblib"}


def _check(kind: str, obj: object) -> None:
    """Use the loaded object the way its library intends, so a corrupt file cannot pass."""
    import numpy as np

    x = np.random.default_rng(0).uniform(size=(2, 4))
    if kind.startswith(("sklearn_", "joblib_")):
        if kind in _TEXT_MODELS:
            assert len(obj.predict(["scan the file"])) == 1  # type: ignore[attr-defined]
        elif kind == "sklearn_column_transformer_joblib":
            rows = np.array([[0.1, 0.2, 1.0], [0.3, 0.4, 2.0]])
            assert obj.transform(rows).shape == (2, 5)  # type: ignore[attr-defined]
        elif hasattr(obj, "predict"):
            assert len(obj.predict(x[:, : obj.n_features_in_])) == 2  # type: ignore[attr-defined]
        else:
            assert obj.transform(["scan the file"]).shape[0] == 1  # type: ignore[attr-defined]
    elif kind in (
        "torch_state_dict",
        "torch_legacy_format",
        "torch_hf_pytorch_model_bin",
        "safetensors_torch",
        "safetensors_numpy",
    ):
        assert isinstance(obj, dict)
        assert all(hasattr(v, "shape") for v in obj.values())
    elif kind == "torch_optimizer_checkpoint":
        assert isinstance(obj, dict)
        assert {"model_state_dict", "optimizer_state_dict", "epoch"} <= obj.keys()
    elif kind in ("torch_full_module", "torchscript_module"):
        import torch

        assert obj(torch.zeros(1, 4)).shape == (1, 3)  # type: ignore[operator]
    elif kind.startswith("pandas_"):
        import pandas as pd

        assert isinstance(obj, (pd.DataFrame, pd.Series))
        assert len(obj) > 0
    elif kind.startswith("keras_"):
        assert obj.predict(x, verbose=0).shape == (2, 3)  # type: ignore[attr-defined]
    elif kind.startswith("onnx_"):
        ort = pytest.importorskip("onnxruntime")
        session = ort.InferenceSession(obj.SerializeToString())  # type: ignore[attr-defined]
        name = session.get_inputs()[0].name
        assert len(session.run(None, {name: x.astype(np.float32)})[0]) == 2
    elif kind.startswith("numpy_"):
        arrays = obj.values() if isinstance(obj, dict) else [obj]
        assert all(a.dtype != object for a in arrays)
    elif kind.startswith("gguf_"):
        assert "tokenizer.chat_template" in obj.fields  # type: ignore[attr-defined]
    else:
        raise AssertionError(f"no check for {kind}")


@pytest.mark.parametrize("kind", sorted(ARTIFACTS))
def test_benign_artifact_loads_back(kind: str, tmp_path: Path) -> None:
    artifact = ARTIFACTS[kind]
    if not available(artifact):
        pytest.skip(f"{kind} needs {artifact.requires}")
    (path,) = write_benign(tmp_path, [kind])
    assert path.name == artifact.filename
    assert path.stat().st_size > 0
    _check(kind, _load(artifact, path))


def test_at_least_thirty_kinds_and_every_family() -> None:
    assert len(ARTIFACTS) >= 30
    loaders = {a.loader for a in ARTIFACTS.values()}
    assert loaders == {
        "torch",
        "torchscript",
        "pickle",
        "joblib",
        "numpy",
        "keras",
        "onnx",
        "safetensors",
        "gguf",
    }
    assert {f"joblib_{c}" for c in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4")} <= ARTIFACTS.keys()


def test_missing_optional_library_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ghost = Artifact(
        "ghost", "ghost.bin", "pickle", ("mlarmor_no_such_module",), lambda p: p.write_bytes(b"x")
    )
    monkeypatch.setitem(ARTIFACTS, "ghost", ghost)
    assert write_benign(tmp_path, ["ghost", "numpy_npy_float"]) == [tmp_path / "embeddings.npy"]
    assert not (tmp_path / "ghost.bin").exists()


def test_unknown_kind_lists_known_kinds(tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="torch_state_dict"):
        write_benign(tmp_path, ["nope"])
