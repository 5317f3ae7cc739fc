"""The model zoo: shapes, seeded and side-effect-free construction and training, validation, docs."""

from __future__ import annotations

import contextlib
import io
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from mlarmor.data import load_dataset
from mlarmor.errors import InvalidParameterError
from mlarmor.models import Standardize, accuracy, digits_cnn, digits_mlp, fit_classifier, tabular_mlp

DOC = Path(__file__).resolve().parents[2] / "docs" / "models.md"


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread, and a busy CPU makes more threads slower still."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits():
    train, test = load_dataset("demo:digits").split(0.25, seed=0)
    return train.x, train.y, test.x, test.y


def _weights(model: nn.Module) -> list[torch.Tensor]:
    return [t.detach().clone() for t in model.state_dict().values()]


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(u, v) for u, v in zip(_weights(a), _weights(b), strict=True))


# -- shapes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", ["pool", "strided"])
def test_digits_cnn_shapes(variant) -> None:
    model = digits_cnn(variant=variant)
    assert model(torch.zeros(5, 1, 8, 8)).shape == (5, 10)
    assert model.training
    convs = [m for m in model if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32]
    assert any(isinstance(m, nn.MaxPool2d) for m in model) == (variant == "pool")
    assert [m.out_features for m in model if isinstance(m, nn.Linear)] == (
        [64, 10] if variant == "pool" else [10]
    )


def test_digits_mlp_shapes() -> None:
    model = digits_mlp()
    assert model(torch.zeros(3, 1, 8, 8)).shape == (3, 10)
    assert model(torch.zeros(3, 64)).shape == (3, 10)
    widths = [
        (m.in_features, m.out_features) for m in digits_mlp(hidden=(32, 16)) if isinstance(m, nn.Linear)
    ]
    assert widths == [(64, 32), (32, 16), (16, 10)]
    assert [type(m) for m in digits_mlp(hidden=())] == [nn.Flatten, nn.Linear]


def test_tabular_mlp_shapes_and_views() -> None:
    model = tabular_mlp(30, 2)
    widths = [(m.in_features, m.out_features) for m in model if isinstance(m, nn.Linear)]
    assert widths == [(30, 64), (64, 64), (64, 2)]
    x = torch.rand(4, 30)
    assert torch.equal(model(x), model(x.reshape(4, 30, 1, 1)))  # the (n, F, 1, 1) view some tools need
    assert not any(isinstance(m, Standardize) for m in model)


# -- seeds and global random state -----------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [
        digits_cnn,
        lambda seed: digits_cnn(variant="strided", seed=seed),
        digits_mlp,
        lambda seed: tabular_mlp(5, 3, seed=seed),
    ],
)
def test_factories_are_seeded(factory) -> None:
    assert _same(factory(seed=3), factory(seed=3))
    assert not _same(factory(seed=3), factory(seed=4))


def test_nothing_touches_the_global_random_state(digits) -> None:
    x, y, _, _ = digits
    torch.manual_seed(1234)
    expected = torch.rand(3)
    torch.manual_seed(1234)
    model = digits_cnn(seed=0)
    tabular_mlp(4, 2, mean=np.zeros(4), std=np.ones(4), seed=5)
    fit_classifier(model, x[:100], y[:100], epochs=1, batch_size=32, seed=9)
    accuracy(model, x[:50], y[:50])
    assert torch.equal(torch.rand(3), expected)


def test_fits_are_reproducible(digits) -> None:
    x, y, _, _ = digits
    x, y = x[:300], y[:300]
    a = fit_classifier(digits_mlp(seed=0), x, y, epochs=2, batch_size=32, seed=7)
    b = fit_classifier(digits_mlp(seed=0), x, y, epochs=2, batch_size=32, seed=7)
    c = fit_classifier(digits_mlp(seed=0), x, y, epochs=2, batch_size=32, seed=8)
    assert _same(a, b)
    assert not _same(a, c)  # the training seed drives the shuffling


def test_seed_may_be_a_generator(digits) -> None:
    x, y, _, _ = digits
    x, y = x[:200], y[:200]
    by_int = fit_classifier(digits_mlp(seed=0), x, y, epochs=2, batch_size=32, seed=4)
    gen = torch.Generator().manual_seed(4)
    by_gen = fit_classifier(digits_mlp(seed=0), x, y, epochs=2, batch_size=32, seed=gen)
    assert _same(by_int, by_gen)
    assert not torch.equal(gen.get_state(), torch.Generator().manual_seed(4).get_state())  # it advanced


def test_fit_matches_a_plain_adam_loop(digits) -> None:
    """Oracle: the loop the benchmarks wrote by hand, with the same seeds, gives the same weights."""
    x, y, _, _ = digits
    x, y = x[:200], y[:200]
    ours = fit_classifier(
        digits_mlp(seed=0), x, y, epochs=2, batch_size=32, lr=1e-3, weight_decay=1e-4, seed=5
    )
    ref = digits_mlp(seed=0)
    gen = torch.Generator().manual_seed(5)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-3, weight_decay=1e-4)
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(2):
        order = torch.randperm(len(xt), generator=gen)
        for start in range(0, len(xt), 32):
            rows = order[start : start + 32]
            opt.zero_grad()
            nn.functional.cross_entropy(ref(xt[rows]), yt[rows]).backward()
            opt.step()
    assert _same(ours, ref)


def test_full_batch_is_one_step_per_epoch(digits) -> None:
    x, y, _, _ = digits
    x, y = x[:100], y[:100]
    ours = fit_classifier(digits_mlp(seed=0), x, y, epochs=3, batch_size=None, lr=1e-2)
    ref = digits_mlp(seed=0)
    opt = torch.optim.Adam(ref.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        nn.functional.cross_entropy(ref(torch.tensor(x)), torch.tensor(y)).backward()
        opt.step()
    assert _same(ours, ref)


# -- training works --------------------------------------------------------------------------------


def test_quick_fit_on_digits(digits) -> None:
    x, y, x_te, y_te = digits  # read-only dataset arrays: accepted without a copy warning
    model = digits_mlp(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = fit_classifier(model, x, y, epochs=15, lr=1e-2)
    assert out is model
    assert not model.training
    assert all(p.requires_grad for p in model.parameters())
    assert accuracy(model, x_te, y_te) > 0.9


def test_accuracy_batches_and_restores_the_mode(digits) -> None:
    _, _, x, y = digits
    model = digits_mlp(seed=0).train()
    with torch.no_grad():
        expected = float((model(torch.tensor(x)).argmax(1).numpy() == y).mean())
    assert accuracy(model, x, y, batch_size=7) == pytest.approx(expected)
    assert model.training


# -- standardisation -------------------------------------------------------------------------------


def test_standardize_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=(50, 6)).astype(np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0)
    layer = Standardize(mean, std)
    np.testing.assert_allclose(layer(torch.from_numpy(x)).numpy(), (x - mean) / std, rtol=1e-6)
    out = layer(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-5)
    assert set(layer.state_dict()) == {"mean", "std"}
    assert list(layer.parameters()) == []
    mean[:] = 0.0  # the layer holds its own copy
    assert float(layer.mean.abs().sum()) > 0


def test_standardize_broadcasts_over_images() -> None:
    layer = Standardize(np.array(0.5), np.full((1, 8, 8), 0.25))
    assert torch.equal(layer(torch.full((2, 1, 8, 8), 0.75)), torch.ones(2, 1, 8, 8))


def test_tabular_mlp_standardises_inside() -> None:
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(20, 5)).astype(np.float32)
    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-6
    inside = tabular_mlp(5, 3, mean=mean, std=std, seed=2)
    outside = tabular_mlp(5, 3, seed=2)  # Standardize has no weights: the same initialisation
    assert isinstance(inside[1], Standardize)
    expected = outside(torch.from_numpy((x - mean) / std))
    torch.testing.assert_close(inside(torch.from_numpy(x)), expected)


# -- validation ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epochs": 0}, "The 'epochs' parameter of fit_classifier must be an int >= 1. Got 0 instead."),
        ({"epochs": 1.5}, "The 'epochs' parameter of fit_classifier must be an int >= 1. Got 1.5 instead."),
        ({"batch_size": 0}, "The 'batch_size' parameter of fit_classifier must be an int >= 1. Got 0"),
        ({"lr": 0.0}, "The 'lr' parameter of fit_classifier must be a float in (0, inf). Got 0.0 instead."),
        ({"lr": float("nan")}, "The 'lr' parameter of fit_classifier must be a float in (0, inf)."),
        (
            {"weight_decay": -1.0},
            "The 'weight_decay' parameter of fit_classifier must be a float in [0, inf)",
        ),
        (
            {"seed": -1},
            "The 'seed' parameter of fit_classifier must be an int >= 0 or a CPU torch.Generator. Got -1",
        ),
        (
            {"seed": True},
            "The 'seed' parameter of fit_classifier must be an int >= 0 or a CPU torch.Generator. Got True",
        ),
        ({"device": "gpu0"}, "The 'device' parameter of fit_classifier must be a torch device"),
        pytest.param(
            {"device": "cuda"},
            "The 'device' parameter of fit_classifier must be a device present on this machine",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present here"),
        ),
    ],
)
def test_fit_parameter_errors(digits, kwargs, message) -> None:
    x, y, _, _ = digits
    params = {"epochs": 1, **kwargs}
    with pytest.raises(InvalidParameterError) as info:
        fit_classifier(digits_mlp(), x[:10], y[:10], **params)
    assert str(info.value).startswith(message)


def test_fit_data_and_model_errors(digits) -> None:
    x, y, _, _ = digits
    x, y = x[:20], y[:20]
    with pytest.raises(InvalidParameterError, match="'model' parameter of fit_classifier must be a torch"):
        fit_classifier("mlp", x, y, epochs=1)
    with pytest.raises(InvalidParameterError, match="with trainable parameters"):
        fit_classifier(nn.Flatten(), x, y, epochs=1)
    with pytest.raises(InvalidParameterError, match="same length"):
        fit_classifier(digits_mlp(), x, y[:-1], epochs=1)
    with pytest.raises(InvalidParameterError, match="at least 2 dimensions"):
        fit_classifier(digits_mlp(), x.reshape(-1), y, epochs=1)
    with pytest.raises(InvalidParameterError, match="must be finite"):
        fit_classifier(digits_mlp(), np.full_like(x, np.nan), y, epochs=1)
    with pytest.raises(InvalidParameterError, match="negative label"):
        fit_classifier(digits_mlp(), x, -np.ones_like(y), epochs=1)
    with pytest.raises(InvalidParameterError, match=r"C > 12, the largest label"):
        fit_classifier(digits_mlp(), x, np.full_like(y, 12), epochs=1)
    with pytest.raises(
        InvalidParameterError, match=r"'x' parameter of fit_classifier must hold inputs the model"
    ):
        fit_classifier(tabular_mlp(30, 10), x, y, epochs=1)
    with pytest.raises(InvalidParameterError, match="'batch_size' parameter of accuracy"):
        accuracy(digits_mlp(), x, y, batch_size=0)
    with pytest.raises(InvalidParameterError, match="same length"):
        accuracy(digits_mlp(), x, y[:3])


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: digits_cnn(variant="resnet"), "The 'variant' parameter of digits_cnn must be one of"),
        (lambda: digits_cnn(seed=-2), "The 'seed' parameter of digits_cnn must be an int >= 0. Got -2"),
        (lambda: digits_mlp(hidden=0), "The 'hidden' parameter of digits_mlp must be an int >= 1 or a"),
        (lambda: digits_mlp(hidden="64"), "The 'hidden' parameter of digits_mlp must be"),
        (lambda: tabular_mlp(0, 2), "The 'n_features' parameter of tabular_mlp must be an int >= 1"),
        (lambda: tabular_mlp(3, 1), "The 'n_classes' parameter of tabular_mlp must be an int >= 2"),
        (lambda: tabular_mlp(3, 2, mean=np.zeros(3)), "The 'std' parameter of tabular_mlp must be given"),
        (lambda: tabular_mlp(3, 2, std=np.ones(3)), "The 'mean' parameter of tabular_mlp must be given"),
        (
            lambda: Standardize([0.0, 1.0], [1.0, 0.0]),
            "The 'std' parameter of Standardize must be an array of",
        ),
        (lambda: Standardize([0.0, np.inf], [1.0, 1.0]), "The 'mean' parameter of Standardize must be an"),
        (
            lambda: Standardize(np.zeros(3), np.ones(4)),
            "The 'std' parameter of Standardize must be an array whose",
        ),
        (lambda: Standardize("a", 1.0), "The 'mean' parameter of Standardize must be an array"),
    ],
)
def test_factory_errors(build, message) -> None:
    with pytest.raises(InvalidParameterError) as info:
        build()
    assert str(info.value).startswith(message)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_on_cuda(digits) -> None:
    x, y, x_te, y_te = digits
    model = fit_classifier(digits_mlp(seed=0), x, y, epochs=15, lr=1e-2, device="cuda")
    assert next(model.parameters()).device.type == "cuda"
    assert accuracy(model, x_te, y_te) > 0.9


# -- docs ------------------------------------------------------------------------------------------


def test_docs_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert blocks
    out = io.StringIO()
    namespace: dict[str, object] = {"__name__": "docs_models"}
    with contextlib.redirect_stdout(out):
        for i, block in enumerate(blocks):
            exec(compile(block, f"{DOC.name}[{i}]", "exec"), namespace)
    assert "digits MLP accuracy: 0.9" in out.getvalue()
