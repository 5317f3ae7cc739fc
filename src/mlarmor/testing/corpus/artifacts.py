"""Benign model artifacts written by the real libraries, for false-positive tests and benchmarks.

Each artifact *kind* is produced by the library users would use (``torch.save``, ``joblib.dump``,
``keras.Model.save``, ``skl2onnx``, ``safetensors``, ``gguf.GGUFWriter``...) from a tiny model trained
in milliseconds on scikit-learn's bundled datasets or on seeded random data. A kind whose optional
library is missing is skipped. torch, scikit-learn, joblib and numpy are runtime dependencies; pandas,
keras, onnx/skl2onnx, safetensors and gguf come with the ``dev`` extra.

Example:
    >>> from mlarmor.testing.corpus.artifacts import ARTIFACTS
    >>> "sklearn_random_forest_joblib" in ARTIFACTS
    True
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

__all__ = ["ARTIFACTS", "Artifact", "ArtifactLoader", "available", "write_benign"]

_log = logging.getLogger(__name__)

ArtifactLoader = Literal[
    "torch", "torchscript", "pickle", "joblib", "numpy", "keras", "onnx", "safetensors", "gguf"
]
"""The real loader that reads an artifact back (``pickle`` includes pandas pickles)."""


@dataclass(frozen=True, slots=True)
class Artifact:
    """One benign artifact kind.

    Attributes:
        kind: Registry key.
        filename: File name written into the output folder.
        loader: The library call that loads it back.
        requires: Importable modules the writer needs; the kind is skipped when one is missing.
        write: ``write(path)`` produces the file.
    """

    kind: str
    filename: str
    loader: ArtifactLoader
    requires: tuple[str, ...]
    write: Callable[[Path], None]


ARTIFACTS: dict[str, Artifact] = {}


def _artifact(
    kind: str, filename: str, loader: ArtifactLoader, requires: tuple[str, ...] = ()
) -> Callable[[Callable[[Path], None]], Callable[[Path], None]]:
    def decorate(fn: Callable[[Path], None]) -> Callable[[Path], None]:
        ARTIFACTS[kind] = Artifact(kind, filename, loader, requires, fn)
        return fn

    return decorate


def available(artifact: Artifact) -> bool:
    """Whether every module ``artifact`` needs can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in artifact.requires)


def write_benign(out_dir: Path, kinds: Iterable[str] | None = None) -> list[Path]:
    """Write benign artifacts into ``out_dir``.

    Args:
        out_dir: Destination folder (created if missing).
        kinds: Artifact kinds to write; every kind when ``None``. Kinds whose optional library is
            not installed are skipped (and logged).

    Returns:
        The written paths in kind order.

    Raises:
        KeyError: If a kind is unknown (the message lists the known ones).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    selected = sorted(ARTIFACTS) if kinds is None else list(kinds)
    unknown = [k for k in selected if k not in ARTIFACTS]
    if unknown:
        raise KeyError(f"Unknown artifact kinds {unknown}; known kinds: {', '.join(sorted(ARTIFACTS))}.")
    written = []
    for kind in selected:
        artifact = ARTIFACTS[kind]
        if not available(artifact):
            _log.info("skipping %s: needs %s", kind, ", ".join(artifact.requires))
            continue
        path = out_dir / artifact.filename
        artifact.write(path)
        written.append(path)
    return written


def _optional(module: str) -> Any:
    # Dev-only libraries without type information are imported dynamically so that mypy does not
    # need their stubs.
    return importlib.import_module(module)


# -- shared tiny models ------------------------------------------------------------------------------


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    return x, y


_TEXTS = [
    "the model loads weights from a file",
    "scan every file before you load it",
    "pickles can run code when they load",
    "safetensors only stores tensors",
    "the classifier predicts spam or ham",
    "gradient boosting fits many small trees",
]
_LABELS = [0, 1, 1, 0, 0, 1]


def _torch_mlp() -> Any:
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))


def _dump_joblib(obj: object, path: Path, compress: object = 0) -> None:
    import joblib

    joblib.dump(obj, path, compress=compress)


def _dump_pickle(obj: object, path: Path, protocol: int = pickle.DEFAULT_PROTOCOL) -> None:
    with path.open("wb") as f:
        pickle.dump(obj, f, protocol=protocol)


# -- PyTorch -----------------------------------------------------------------------------------------


@_artifact("torch_state_dict", "mlp_state_dict.pt", "torch", ("torch",))
def _torch_state_dict(path: Path) -> None:
    import torch

    torch.save(_torch_mlp().state_dict(), path)


@_artifact("torch_hf_pytorch_model_bin", "pytorch_model.bin", "torch", ("torch",))
def _torch_bin(path: Path) -> None:
    import torch

    torch.manual_seed(0)
    weights = {
        "embeddings.word_embeddings.weight": torch.randn(16, 8),
        "encoder.layer.0.attention.self.query.weight": torch.randn(8, 8),
        "encoder.layer.0.attention.self.query.bias": torch.zeros(8),
        "pooler.dense.weight": torch.randn(8, 8).half(),
    }
    torch.save(weights, path)


@_artifact("torch_full_module", "mlp_full_module.pth", "torch", ("torch",))
def _torch_module(path: Path) -> None:
    import torch

    torch.save(_torch_mlp(), path)


@_artifact("torch_optimizer_checkpoint", "epoch_3.ckpt", "torch", ("torch",))
def _torch_checkpoint(path: Path) -> None:
    import torch

    model = _torch_mlp()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(torch.randn(5, 4)).sum().backward()
    optimizer.step()
    torch.save(
        {
            "epoch": 3,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "loss": 0.42,
        },
        path,
    )


@_artifact("torch_legacy_format", "mlp_legacy.pt", "torch", ("torch",))
def _torch_legacy(path: Path) -> None:
    import torch

    torch.save(_torch_mlp().state_dict(), path, _use_new_zipfile_serialization=False)


@_artifact("torchscript_module", "mlp_scripted.pt", "torchscript", ("torch",))
def _torchscript(path: Path) -> None:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated, still shipped
        torch.jit.save(torch.jit.script(_torch_mlp()), str(path))


# -- scikit-learn --------------------------------------------------------------------------------------


@_artifact("sklearn_random_forest_joblib", "random_forest.joblib", "joblib", ("sklearn", "joblib"))
def _rf(path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    _dump_joblib(RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(*_iris()), path)


@_artifact("sklearn_pipeline_logreg_pickle", "scaler_logreg_pipeline.pkl", "pickle", ("sklearn",))
def _pipeline(path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    _dump_pickle(make_pipeline(StandardScaler(), LogisticRegression(max_iter=200)).fit(*_iris()), path)


@_artifact("sklearn_logreg_protocol2", "logreg_py2_protocol.pkl", "pickle", ("sklearn",))
def _logreg_p2(path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    _dump_pickle(LogisticRegression(max_iter=200).fit(*_iris()), path, protocol=2)


@_artifact("sklearn_mlp_joblib", "mlp_classifier.joblib", "joblib", ("sklearn", "joblib"))
def _mlp(path: Path) -> None:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 50 epochs is enough for a fixture
        model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=50, random_state=0).fit(*_iris())
    _dump_joblib(model, path)


@_artifact("sklearn_tfidf_pickle", "tfidf_vectorizer.pkl", "pickle", ("sklearn",))
def _tfidf(path: Path) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    _dump_pickle(TfidfVectorizer().fit(_TEXTS), path)


@_artifact("sklearn_countvectorizer_nb_joblib", "spam_filter.joblib", "joblib", ("sklearn", "joblib"))
def _count_nb(path: Path) -> None:
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB
    from sklearn.pipeline import make_pipeline

    _dump_joblib(make_pipeline(CountVectorizer(), MultinomialNB()).fit(_TEXTS, _LABELS), path)


@_artifact("sklearn_gradient_boosting_pickle", "gradient_boosting.pkl", "pickle", ("sklearn",))
def _gb(path: Path) -> None:
    from sklearn.ensemble import GradientBoostingClassifier

    _dump_pickle(GradientBoostingClassifier(n_estimators=5, max_depth=2, random_state=0).fit(*_iris()), path)


@_artifact("sklearn_svc_joblib", "svc_rbf.joblib", "joblib", ("sklearn", "joblib"))
def _svc(path: Path) -> None:
    from sklearn.svm import SVC

    _dump_joblib(SVC(probability=False).fit(*_iris()), path)


@_artifact("sklearn_kmeans_pickle", "kmeans.pkl", "pickle", ("sklearn",))
def _kmeans(path: Path) -> None:
    from sklearn.cluster import KMeans

    x, _ = _iris()
    _dump_pickle(KMeans(n_clusters=3, n_init=2, random_state=0).fit(x), path)


@_artifact("sklearn_column_transformer_joblib", "column_transformer.joblib", "joblib", ("sklearn", "joblib"))
def _column_transformer(path: Path) -> None:
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    x = np.column_stack([rng.normal(size=20), rng.normal(size=20), rng.integers(0, 3, size=20)])
    ct = ColumnTransformer([("num", StandardScaler(), [0, 1]), ("cat", OneHotEncoder(), [2])])
    _dump_joblib(ct.fit(x), path)


def _compressed(kind: str, filename: str, compress: object, extra: tuple[str, ...] = ()) -> None:
    @_artifact(kind, filename, "joblib", ("sklearn", "joblib", *extra))
    def _write(path: Path) -> None:
        from sklearn.linear_model import LogisticRegression

        _dump_joblib(LogisticRegression(max_iter=200).fit(*_iris()), path, compress=compress)


_compressed("joblib_zlib", "logreg_zlib.joblib", ("zlib", 3))
_compressed("joblib_gzip", "logreg.joblib.gz", ("gzip", 3))
_compressed("joblib_bz2", "logreg.joblib.bz2", ("bz2", 3))
_compressed("joblib_xz", "logreg.joblib.xz", ("xz", 3))
_compressed("joblib_lzma", "logreg.joblib.lzma", ("lzma", 3))
_compressed("joblib_lz4", "logreg.joblib.lz4", ("lz4", 3), ("lz4",))


# -- pandas and NumPy ----------------------------------------------------------------------------------


@_artifact("pandas_dataframe_pickle", "features_df.pkl", "pickle", ("pandas",))
def _df(path: Path) -> None:
    pd = _optional("pandas")

    df = pd.DataFrame({"age": [31, 45, 27], "income": [52.0, 71.5, 38.2], "city": ["Oslo", "Lima", "Pune"]})
    df.to_pickle(path)


@_artifact("pandas_series_pickle", "labels_series.pkl", "pickle", ("pandas",))
def _series(path: Path) -> None:
    pd = _optional("pandas")

    pd.Series([0, 1, 1, 0], name="label", index=pd.date_range("2024-01-01", periods=4)).to_pickle(path)


@_artifact("numpy_npy_float", "embeddings.npy", "numpy", ("numpy",))
def _npy(path: Path) -> None:
    import numpy as np

    np.save(path, np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32))


@_artifact("numpy_npz_xy", "dataset.npz", "numpy", ("numpy",))
def _npz(path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    np.savez(path, x=rng.uniform(size=(20, 4)), y=rng.integers(0, 3, size=20))


@_artifact("numpy_npz_compressed", "activations.npz", "numpy", ("numpy",))
def _npz_compressed(path: Path) -> None:
    import numpy as np

    np.savez_compressed(path, layer1=np.zeros((32, 32), dtype=np.float16), layer2=np.arange(10))


# -- Keras, ONNX, safetensors, GGUF ----------------------------------------------------------------------


def _keras_model() -> Any:
    os.environ.setdefault("KERAS_BACKEND", "torch")
    keras = _optional("keras")

    keras.utils.set_random_seed(0)
    inputs = keras.Input((4,))
    hidden = keras.layers.Dense(8, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))


@_artifact("keras_v3", "dense_classifier.keras", "keras", ("keras", "h5py"))
def _keras_v3(path: Path) -> None:
    _keras_model().save(path)


@_artifact("keras_h5", "dense_classifier.h5", "keras", ("keras", "h5py"))
def _keras_h5(path: Path) -> None:
    logging.getLogger("absl").setLevel(logging.ERROR)  # keras warns that .h5 is a legacy format
    _keras_model().save(path)


@_artifact("onnx_sklearn_logreg", "logreg.onnx", "onnx", ("onnx", "skl2onnx", "sklearn"))
def _onnx_logreg(path: Path) -> None:
    to_onnx = _optional("skl2onnx").to_onnx
    from sklearn.linear_model import LogisticRegression

    x, y = _iris()
    model = LogisticRegression(max_iter=200).fit(x, y)
    path.write_bytes(to_onnx(model, x[:1].astype("float32"), target_opset=17).SerializeToString())


@_artifact("onnx_sklearn_random_forest", "random_forest.onnx", "onnx", ("onnx", "skl2onnx", "sklearn"))
def _onnx_rf(path: Path) -> None:
    to_onnx = _optional("skl2onnx").to_onnx
    from sklearn.ensemble import RandomForestClassifier

    x, y = _iris()
    model = RandomForestClassifier(n_estimators=3, max_depth=3, random_state=0).fit(x, y)
    path.write_bytes(to_onnx(model, x[:1].astype("float32"), target_opset=17).SerializeToString())


@_artifact("safetensors_torch", "model.safetensors", "safetensors", ("safetensors", "torch"))
def _safetensors_torch(path: Path) -> None:
    from safetensors.torch import save_file

    save_file(_torch_mlp().state_dict(), str(path), metadata={"format": "pt"})


@_artifact("safetensors_numpy", "adapter.safetensors", "safetensors", ("safetensors", "numpy"))
def _safetensors_numpy(path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    save_file({"lora_A": np.zeros((4, 16), np.float32), "lora_B": np.ones((16, 4), np.float32)}, str(path))


@_artifact("gguf_chatml", "tiny-chat-f32.gguf", "gguf", ("gguf", "numpy"))
def _gguf(path: Path) -> None:
    from ._trojans_onnx_gguf import CHAT_TEMPLATE, gguf_file

    path.write_bytes(gguf_file(CHAT_TEMPLATE))
