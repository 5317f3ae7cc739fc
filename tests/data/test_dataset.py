"""Dataset: validation, derived properties, subsets and splits, model checks, and constraint projection."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlarmor.data import Dataset, FeatureScaling
from mlarmor.errors import InvalidParameterError, MlarmorError


def _toy(n: int = 12, d: int = 4, classes: int = 3, **kwargs: object) -> Dataset:
    rng = np.random.default_rng(0)
    return Dataset(x=rng.random((n, d)), y=np.arange(n) % classes, **kwargs)  # type: ignore[arg-type]


# ---------------------------------------------------------------- construction and properties


def test_arrays_are_converted_and_read_only_without_touching_the_callers_arrays() -> None:
    x = np.random.default_rng(0).random((6, 1, 2, 2))
    y = [0, 1, 2, 0, 1, 2]
    ds = Dataset(x=x, y=y, name="img")  # type: ignore[arg-type]
    assert ds.x.dtype == np.float32
    assert ds.y.dtype == np.int64
    assert not ds.x.flags.writeable
    assert not ds.y.flags.writeable
    assert x.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        ds.x[0] = 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.name = "other"  # type: ignore[misc]
    assert (ds.n, len(ds), ds.input_shape, ds.num_features, ds.num_classes) == (6, 6, (1, 2, 2), 4, 3)
    assert ds.class_names == ("0", "1", "2")
    assert ds.class_counts.tolist() == [2, 2, 2]
    assert repr(ds) == "Dataset(name='img', n=6, input_shape=(1, 2, 2), num_classes=3, bounds=(0.0, 1.0))"
    assert not ds.constrained


def test_bool_and_integral_float_labels_are_accepted() -> None:
    x = np.zeros((3, 2))
    assert Dataset(x=x, y=np.array([True, False, True])).y.tolist() == [1, 0, 1]
    assert Dataset(x=x, y=np.array([2.0, 0.0, 1.0])).y.tolist() == [2, 0, 1]
    assert Dataset(x=x, y=np.array([[0], [1], [1]])).y.tolist() == [0, 1, 1]


def test_class_names_fix_num_classes_beyond_the_labels_present() -> None:
    ds = Dataset(x=np.zeros((2, 2)), y=np.array([0, 0]), class_names=("a", "b", "c"))
    assert ds.num_classes == 3
    assert ds.class_counts.tolist() == [2, 0, 0]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"x": np.array([["a", "b"]]), "y": [0]}, r"must be numbers .* dtype <U1"),
        ({"x": np.zeros(3), "y": [0, 0, 0]}, r"at least 2 dimensions. Got shape \(3,\).*\(n, 1\)"),
        ({"x": np.zeros((0, 3)), "y": np.zeros(0)}, "is empty"),
        ({"x": np.array([[np.nan, 0.0], [np.inf, 0.0]]), "y": [0, 1]}, "1 NaN and 1 infinite"),
        ({"x": np.array([[1e39]]), "y": [0], "bounds": (0, 1e40)}, "too large for float32"),
        ({"x": np.zeros((2, 2)), "y": [0, 1, 1]}, "2 input.* and 3 label"),
        ({"x": np.zeros((2, 2)), "y": np.zeros((2, 3))}, r"shape \(n,\).*one-hot.*argmax"),
        ({"x": np.zeros((2, 2)), "y": [0, -1]}, "1 negative label.* smallest -1"),
        ({"x": np.zeros((2, 2)), "y": [0.5, 1.0]}, "non-integral label.* 0.5 at index 0"),
        ({"x": np.zeros((2, 2)), "y": [np.nan, 1.0]}, "NaN or infinite label"),
        ({"x": np.zeros((2, 2)), "y": ["a", "b"]}, "dtype <U1"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "bounds": (1, 0)}, "'bounds' parameter of Dataset"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "bounds": (0, math.nan)}, "'bounds' parameter"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "bounds": "01"}, "'bounds' parameter"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "bounds": (0, 1, 2)}, "'bounds' parameter"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "bounds": ("0", "1")}, "'bounds' parameter"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "immutable": (2,)}, r"indices in \[0, 2\).* Got 2"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "immutable": (-1,)}, "Got -1"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "integer": (True,)}, "'integer' parameter"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "integer": ("age",)}, "no feature names"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "feature_names": ("a",)}, "2 names"),
        ({"x": np.zeros((2, 2)), "y": [0, 2], "class_names": ("a", "b")}, "labels up to 2 but only 2"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "feature_low": np.zeros(3)}, "'feature_low' parameter"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "feature_high": [np.nan, 1]}, "without NaN"),
        ({"x": np.zeros((2, 2)), "y": [0, 1], "name": 3}, "'name' parameter"),
    ],
)
def test_bad_construction_is_a_clear_invalid_parameter_error(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        Dataset(**kwargs)  # type: ignore[arg-type]


def test_values_outside_the_bounds_are_counted_with_their_extremes() -> None:
    x = np.array([[0.0, 255.0], [-0.5, 0.5]])
    with pytest.raises(InvalidParameterError) as info:
        Dataset(x=x, y=[0, 1], name="px")  # type: ignore[arg-type]
    message = str(info.value)
    assert "'px' has 2 value(s) outside the declared bounds (0.0, 1.0)" in message
    assert "smallest is -0.5 and the largest 255." in message
    assert "--bounds" in message


def test_values_outside_a_feature_range_name_the_feature() -> None:
    with pytest.raises(
        InvalidParameterError, match=r"feature 1 \('b'\) spans \[0.5, 0.9\] but must lie in \[0, 0.6\]"
    ):
        Dataset(
            x=np.array([[0.1, 0.5], [0.2, 0.9]]),
            y=[0, 1],  # type: ignore[arg-type]
            feature_names=("a", "b"),
            feature_high=np.array([1.0, 0.6]),
        )


def test_integer_features_must_hold_integers_and_have_an_integer_in_range() -> None:
    with pytest.raises(InvalidParameterError, match=r"non-integral values, e.g. feature 1"):
        Dataset(x=np.array([[1.0, 2.5]]), y=[0], bounds=(0, 5), integer=(1,))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"no valid value.* for an integer feature"):
        Dataset(
            x=np.array([[0.25]]),
            y=[0],  # type: ignore[arg-type]
            integer=(0,),
            feature_low=[0.2],  # type: ignore[arg-type]
            feature_high=[0.8],  # type: ignore[arg-type]
        )


def test_feature_names_resolve_immutable_and_integer() -> None:
    ds = Dataset(
        x=np.array([[1.0, 0.5, 3.0]]),
        y=[0],  # type: ignore[arg-type]
        bounds=(0, 10),
        feature_names=("age", "score", "visits"),
        immutable=("age",),  # type: ignore[arg-type]
        integer=("visits", 0),  # type: ignore[arg-type]
    )
    assert ds.immutable == (0,)
    assert ds.integer == (0, 2)
    assert ds.feature_index(["visits", "age"]) == (0, 2)
    assert ds.constrained
    with pytest.raises(InvalidParameterError, match="feature names among: age, score, visits"):
        ds.feature_index(["height"])


def test_feature_ranges_are_stored_flat_and_intersected_with_the_bounds() -> None:
    ds = Dataset(
        x=np.full((2, 1, 2, 2), 0.5),
        y=[0, 1],  # type: ignore[arg-type]
        feature_low=np.full((1, 2, 2), -np.inf),
        feature_high=np.array([0.9, 2.0, 0.5, 1.0]),
    )
    assert ds.feature_low is not None
    assert ds.feature_low.shape == (4,)
    low, high = ds.feature_limits
    assert low.shape == (1, 2, 2)
    assert low.ravel().tolist() == [0.0] * 4
    assert high.ravel().tolist() == pytest.approx([0.9, 1.0, 0.5, 1.0])


def test_scaling_must_cover_every_feature() -> None:
    scaling = FeatureScaling(data_min=np.zeros(3), data_max=np.ones(3))
    with pytest.raises(InvalidParameterError, match="FeatureScaling over 2 features"):
        Dataset(x=np.zeros((1, 2)), y=[0], scaling=scaling)  # type: ignore[arg-type]


def test_feature_scaling_round_trips_and_handles_constant_features() -> None:
    scaling = FeatureScaling(data_min=np.array([10.0, 5.0]), data_max=np.array([20.0, 5.0]))
    raw = np.array([[15.0, 5.0], [10.0, 5.0]])
    scaled = scaling.from_original(raw)
    assert scaled.tolist() == [[0.5, 0.0], [0.0, 0.0]]
    assert scaling.to_original(scaled).tolist() == raw.tolist()
    with pytest.raises(InvalidParameterError, match="data_min/data_max"):
        FeatureScaling(data_min=np.zeros(2), data_max=np.ones(3))


# ---------------------------------------------------------------- subset and split


def test_subset_by_indices_and_mask_keeps_constraints_and_classes() -> None:
    ds = _toy(immutable=(1,), integer=(), feature_names=("a", "b", "c", "d"))
    part = ds.subset([3, 0])
    assert part.y.tolist() == [0, 0]
    assert part.num_classes == 3
    assert part.x.tolist() == ds.x[[3, 0]].tolist()
    assert part.immutable == (1,)
    assert part.feature_names == ds.feature_names
    mask = ds.y == 1
    assert ds.subset(mask).n == int(mask.sum())


@pytest.mark.parametrize(
    ("indices", "message"),
    [
        ([12], r"indices in \[0, 12\)"),
        ([-1], "Got -1"),
        (np.ones(3, dtype=bool), r"boolean mask of shape \(12,\)"),
        ([0.5], "integer indices or a boolean mask"),
        ([], "selected no sample"),
        (np.zeros(12, dtype=bool), "selected no sample"),
    ],
)
def test_subset_rejects_bad_indices(indices: object, message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        _toy().subset(indices)  # type: ignore[arg-type]


def test_split_is_stratified_disjoint_complete_and_seeded() -> None:
    y = np.array([0] * 40 + [1] * 20 + [2] * 10)
    x = np.arange(70, dtype=float)[:, None] / 70
    ds = Dataset(x=x, y=y)
    train, test = ds.split(0.3, seed=1)
    assert test.n == 21
    assert train.n == 49
    assert test.class_counts.tolist() == [12, 6, 3]
    ids = np.concatenate([train.x[:, 0], test.x[:, 0]])
    assert sorted(ids.tolist()) == sorted(ds.x[:, 0].tolist())
    assert np.all(np.diff(test.x[:, 0]) > 0), "both parts keep the original order"
    again, _ = ds.split(0.3, seed=1)
    other, _ = ds.split(0.3, seed=2)
    assert again.x.tolist() == train.x.tolist()
    assert other.x.tolist() != train.x.tolist()
    assert train.num_classes == test.num_classes == 3


def test_split_of_tiny_sets_leaves_both_parts_non_empty() -> None:
    train, test = Dataset(x=np.zeros((2, 1)), y=[0, 1]).split(0.01)  # type: ignore[arg-type]
    assert (train.n, test.n) == (1, 1)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"test_fraction": 0.0}, "'test_fraction' parameter of Dataset.split"),
        ({"test_fraction": 1.0}, "'test_fraction'"),
        ({"test_fraction": True}, "'test_fraction'"),
        ({"seed": 1.5}, "'seed' parameter"),
    ],
)
def test_split_rejects_bad_parameters(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        _toy().split(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="at least 2 samples"):
        Dataset(x=np.zeros((1, 1)), y=[0]).split()  # type: ignore[arg-type]


# ---------------------------------------------------------------- check_against


def test_check_against_accepts_a_matching_model_and_skips_unknowns() -> None:
    ds = _toy(d=4, classes=3)
    ds.check_against((4,), 3, bounds=(0.0, 1.0))
    ds.check_against(None, None)
    ds.check_against([4], 10)


def test_check_against_reports_expected_and_got() -> None:
    ds = Dataset(x=np.zeros((2, 1, 8, 8)), y=[0, 9], name="digits")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError) as info:
        ds.check_against((64,), 10)
    assert "expects inputs of shape (64,)" in str(info.value)
    assert "'digits' has inputs of shape (1, 8, 8)" in str(info.value)
    assert "reshape x to (n, 64)" in str(info.value)
    with pytest.raises(InvalidParameterError, match=r"shape \(3, 32, 32\).*belong together"):
        ds.check_against((3, 32, 32), 10)
    with pytest.raises(
        InvalidParameterError, match=r"outputs 2 classes .* has 10 \(labels up to 9\).*0\.\.1"
    ):
        ds.check_against((1, 8, 8), 2)
    with pytest.raises(InvalidParameterError, match="'num_classes' parameter"):
        ds.check_against((1, 8, 8), 0)
    wide = Dataset(x=np.array([[0.0], [200.0]]), y=[0, 1], bounds=(0, 255))  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match=r"accepts inputs in \[0.0, 1.0\] .* spans \[0, 200\]"):
        wide.check_against((1,), 2, bounds=(0, 1))


def test_errors_are_mlarmor_errors_and_value_errors() -> None:
    with pytest.raises(MlarmorError):
        _toy().check_against((5,), 3)
    with pytest.raises(ValueError, match="shape"):
        _toy().check_against((5,), 3)


# ---------------------------------------------------------------- project: examples


def _tabular() -> Dataset:
    return Dataset(
        x=np.array([[20.0, 0.5, 3.0, 1.0], [40.0, 0.25, 0.0, 0.0]]),
        y=[0, 1],  # type: ignore[arg-type]
        bounds=(0.0, 100.0),
        feature_low=np.array([18.0, 0.0, 0.0, 0.0]),
        feature_high=np.array([90.0, 1.0, 10.5, 1.0]),
        immutable=(0,),
        integer=(2, 3),
    )


def test_project_enforces_every_constraint_on_numpy() -> None:
    ds = _tabular()
    adv = np.array([[55.0, 1.7, 12.6, 0.4], [-3.0, -0.2, 2.5, 0.6]], dtype=np.float32)
    out = ds.project(adv, ds.x)
    assert out.dtype == np.float32
    assert out.tolist() == [[20.0, 1.0, 10.0, 0.0], [40.0, 0.0, 2.0, 1.0]]
    assert adv[0, 0] == 55.0, "the input is not modified"


def test_project_single_input_and_dtypes() -> None:
    ds = _tabular()
    single = ds.project(np.array([0.0, 0.5, 3.2, 1.0]), ds.x[0].astype(np.float64))
    assert single.dtype == np.float64
    assert single.tolist() == [20.0, 0.5, 3.0, 1.0]
    ints = ds.project(np.array([[1, 2, 3, 4]]), ds.x[:1])
    assert ints.dtype == np.float32
    assert ints.tolist() == [[20.0, 1.0, 3.0, 1.0]]


def test_project_rejects_mismatched_shapes() -> None:
    ds = _tabular()
    with pytest.raises(InvalidParameterError, match=r"x_adv of shape \(n, \*\(4,\)\).*Got \(2, 3\)"):
        ds.project(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(InvalidParameterError, match="same shape as x_adv"):
        ds.project(np.zeros((2, 4)), np.zeros((1, 4)))
    with pytest.raises(InvalidParameterError, match="floating-point tensor"):
        ds.project(torch.zeros((2, 4), dtype=torch.int64), ds.x)


def test_project_torch_keeps_dtype_and_lets_gradients_through_mutable_features() -> None:
    ds = _tabular()
    adv = torch.tensor(
        [[30.0, 0.5, 4.2, 0.0], [50.0, 2.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True
    )
    x, y = ds.as_tensors(dtype=torch.float64)
    assert y.dtype == torch.int64
    assert x.dtype == torch.float64
    out = ds.project(adv, x)
    assert out.dtype == torch.float64
    assert out.device == adv.device
    out.sum().backward()
    assert adv.grad is not None
    # immutable feature 0: no gradient; feature 1 clipped in row 1: no gradient; integer features: round.
    assert adv.grad.tolist() == [[0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]
    assert out.detach().tolist() == [[20.0, 0.5, 4.0, 0.0], [40.0, 1.0, 1.0, 1.0]]


def test_project_with_only_bounds_is_a_plain_clip() -> None:
    ds = _toy()
    adv = np.array([[-1.0, 0.5, 2.0, 1.0]] * 12)
    assert ds.project(adv, ds.x)[0].tolist() == [0.0, 0.5, 1.0, 1.0]
    assert ds.project(torch.as_tensor(adv), ds.x)[0].tolist() == [0.0, 0.5, 1.0, 1.0]
    assert ds.project(adv, ds.as_tensors()[0])[0].tolist() == [0.0, 0.5, 1.0, 1.0]


def test_masks_mark_mutable_and_integer_features() -> None:
    ds = _tabular()
    assert ds.mutable_mask().tolist() == [0.0, 1.0, 1.0, 1.0]
    assert ds.mutable_mask().dtype == np.float32
    assert ds.mutable_mask(like=np.zeros(1)).dtype == np.float64
    assert ds.integer_mask().tolist() == [False, False, True, True]
    like = torch.zeros(3, 4, dtype=torch.float64)
    mask = ds.mutable_mask(like=like)
    assert isinstance(mask, torch.Tensor)
    assert mask.dtype == torch.float64
    assert (like + 0.5 * mask).tolist()[0] == [0.0, 0.5, 0.5, 0.5]
    assert ds.integer_mask(like=like).tolist() == [0.0, 0.0, 1.0, 1.0]
    image = Dataset(x=np.zeros((1, 1, 2, 2)), y=[0], immutable=(3,))  # type: ignore[arg-type]
    assert image.mutable_mask().shape == (1, 2, 2)
    assert image.mutable_mask()[0, 1, 1] == 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_project_stays_on_the_gpu() -> None:
    ds = _tabular()
    adv = torch.tensor([[30.0, 2.0, 4.4, 0.0]] * 2, device="cuda")
    out = ds.project(adv, ds.x)
    assert out.device == adv.device
    assert out.cpu().tolist() == ds.project(adv.cpu().numpy(), ds.x).tolist()


# ---------------------------------------------------------------- project: properties


@st.composite
def constrained_case(draw: st.DrawFn) -> tuple[Dataset, np.ndarray, np.ndarray]:
    """A random constrained dataset, its clean inputs and arbitrary candidate inputs."""
    d = draw(st.integers(1, 6))
    n = draw(st.integers(1, 4))
    low = draw(st.floats(-50, 50))
    high = low + draw(st.floats(0.5, 100))
    feature_low = None
    feature_high = None
    lo = np.full(d, low)
    hi = np.full(d, high)
    if draw(st.booleans()):
        feature_low = np.array([draw(st.floats(low - 10, low + 0.2 * (high - low))) for _ in range(d)])
        lo = np.maximum(lo, feature_low)
    if draw(st.booleans()):
        feature_high = np.array([draw(st.floats(high - 0.2 * (high - low), high + 10)) for _ in range(d)])
        hi = np.minimum(hi, feature_high)
    integer = tuple(i for i in range(d) if draw(st.booleans()) and math.floor(hi[i]) - math.ceil(lo[i]) >= 0)
    immutable = tuple(i for i in range(d) if draw(st.booleans()))
    lo32 = lo.astype(np.float32)
    hi32 = hi.astype(np.float32)
    u = np.array(draw(st.lists(st.floats(0, 1), min_size=n * d, max_size=n * d))).reshape(n, d)
    x = np.clip((lo + u * (hi - lo)).astype(np.float32), lo32, hi32)
    for i in integer:
        x[:, i] = np.clip(np.round(x[:, i]), math.ceil(lo[i]), math.floor(hi[i]))
    ds = Dataset(
        x=x,
        y=np.zeros(n, dtype=np.int64),
        bounds=(low, high),
        feature_low=feature_low,
        feature_high=feature_high,
        immutable=immutable,
        integer=integer,
    )
    special = st.sampled_from([low, high, *lo.tolist(), *hi.tolist(), 0.0, -0.5, 0.5, 1.5])
    values = st.one_of(st.floats(-200, 200, width=32), special)
    adv = np.array(draw(st.lists(values, min_size=n * d, max_size=n * d)), dtype=np.float32).reshape(n, d)
    return ds, x, adv


_PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@_PROPERTY
@given(constrained_case())
def test_projected_points_satisfy_every_constraint(case: tuple[Dataset, np.ndarray, np.ndarray]) -> None:
    ds, x, adv = case
    out = ds.project(adv, x)
    low, high = ds.feature_limits
    assert np.all(out >= low)
    assert np.all(out <= high)
    assert np.all(out >= np.float32(ds.bounds[0]))
    assert np.all(out <= np.float32(ds.bounds[1]))
    if ds.feature_low is not None:
        assert np.all(out >= ds.feature_low)
    if ds.feature_high is not None:
        assert np.all(out <= ds.feature_high)
    imm = list(ds.immutable)
    assert np.array_equal(out[:, imm], x[:, imm])
    ints = list(ds.integer)
    assert np.array_equal(out[:, ints], np.round(out[:, ints]))
    # What satisfies the constraints already (mutable features) is left alone.
    inside = (adv >= low) & (adv <= high) & ~ds.integer_mask() & (ds.mutable_mask() == 1)
    assert np.array_equal(out[inside], adv[inside])


@_PROPERTY
@given(constrained_case())
def test_projection_is_idempotent_and_identity_on_clean_inputs(
    case: tuple[Dataset, np.ndarray, np.ndarray],
) -> None:
    ds, x, adv = case
    out = ds.project(adv, x)
    assert np.array_equal(ds.project(out, x), out)
    assert np.array_equal(ds.project(x, x), x)


@_PROPERTY
@given(constrained_case(), st.sampled_from([torch.float32, torch.float64]))
def test_numpy_and_torch_projections_agree(
    case: tuple[Dataset, np.ndarray, np.ndarray], dtype: torch.dtype
) -> None:
    ds, x, adv = case
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    expected = ds.project(adv.astype(np_dtype), x.astype(np_dtype))
    got = ds.project(torch.as_tensor(adv, dtype=dtype), torch.as_tensor(x, dtype=dtype))
    assert got.dtype == dtype
    assert np.array_equal(got.numpy(), expected)
    assert np.array_equal(ds.project(torch.as_tensor(adv, dtype=dtype), x).numpy(), expected)


def test_integer_features_of_a_rescaled_view_stay_whole_in_raw_units() -> None:
    # Raw ages 10..20 seen as (age - 10) / 10: whole years are the multiples of 0.1.
    scaling = FeatureScaling(data_min=np.array([10.0, 0.0]), data_max=np.array([20.0, 1.0]))
    ds = Dataset(x=np.array([[0.3, 0.5], [0.7, 0.25]]), y=np.array([0, 1]), integer=(0,), scaling=scaling)
    projected = ds.project(np.array([[0.34, 0.5], [0.76, 0.25]]), ds.x)
    assert projected[:, 0] == pytest.approx([0.3, 0.8])
    low, high = ds.integral_limits(np.array([[0.31, 0.2]]), np.array([[0.59, 0.3]]))
    assert low[0, 0] == pytest.approx(0.4)
    assert high[0, 0] == pytest.approx(0.5)
    with pytest.raises(InvalidParameterError, match="non-integral values"):
        Dataset(x=np.array([[0.35, 0.5]]), y=np.array([0]), integer=(0,), scaling=scaling)
