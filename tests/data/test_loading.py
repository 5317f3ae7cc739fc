"""load_dataset: every supported source, and a clear error for every bad input."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from mlarmor.data import DEMO_DATASETS, Dataset, _tables, load_dataset
from mlarmor.errors import InputError, InvalidParameterError, MlarmorWarning

pd = pytest.importorskip("pandas")


def _npz(path: Path, **arrays: object) -> Path:
    np.savez(path, **arrays)  # type: ignore[arg-type]
    return path


def _csv(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------- demo sets


def test_demo_digits_are_8x8_images_in_the_unit_range() -> None:
    ds = load_dataset("demo:digits")
    assert isinstance(ds, Dataset)
    assert (ds.name, ds.n, ds.input_shape, ds.num_classes) == ("digits", 1797, (1, 8, 8), 10)
    assert ds.x.dtype == np.float32
    assert ds.bounds == (0.0, 1.0)
    assert float(ds.x.min()) == 0.0
    assert float(ds.x.max()) == 1.0
    assert ds.class_names == tuple("0123456789")
    assert not ds.constrained


def test_demo_breast_cancer_is_scaled_and_keeps_the_raw_ranges() -> None:
    from sklearn.datasets import load_breast_cancer

    ds = load_dataset("demo:breast-cancer", immutable=["mean radius"], integer=())
    raw = load_breast_cancer().data
    assert (ds.name, ds.n, ds.input_shape, ds.num_classes) == ("breast-cancer", 569, (30,), 2)
    assert ds.class_names == ("malignant", "benign")
    assert ds.feature_names is not None
    assert ds.feature_names[0] == "mean radius"
    assert ds.immutable == (0,)
    assert float(ds.x.min()) == 0.0
    assert float(ds.x.max()) == 1.0
    assert ds.scaling is not None
    assert np.allclose(ds.scaling.data_min, raw.min(axis=0))
    assert np.allclose(ds.scaling.to_original(ds.x), raw, rtol=1e-5, atol=1e-4)


def test_unknown_demo_lists_the_known_ones() -> None:
    assert DEMO_DATASETS == ("demo:breast-cancer", "demo:digits")
    with pytest.raises(InputError, match="Known demo sets: demo:breast-cancer, demo:digits"):
        load_dataset("demo:mnist")


def test_demo_with_table_options_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'label_column' parameter of load_dataset"):
        load_dataset("demo:digits", label_column="y")


def test_demo_with_declared_bounds_keeps_them() -> None:
    assert load_dataset("demo:digits", bounds=(-1, 1)).bounds == (-1.0, 1.0)


# ---------------------------------------------------------------- .npz and .npy


def test_npz_round_trip_with_names(tmp_path: Path) -> None:
    x = np.random.default_rng(0).random((5, 3))
    path = _npz(
        tmp_path / "d.npz",
        x=x,
        y=np.array([0, 1, 2, 1, 0]),
        feature_names=np.array(["a", "b", "c"]),
        class_names=np.array(["cat", "dog", "eel"]),
    )
    ds = load_dataset(path, immutable=["b"], integer=[])
    assert ds.name == "d.npz"
    assert ds.x.tolist() == x.astype(np.float32).tolist()
    assert ds.class_names == ("cat", "dog", "eel")
    assert ds.feature_names == ("a", "b", "c")
    assert ds.immutable == (1,)
    # Flat features get one range per column, from the data, inside the global bounds.
    x32 = x.astype(np.float32)
    assert ds.feature_low is not None
    assert ds.feature_high is not None
    assert ds.feature_low.tolist() == x32.min(axis=0).tolist()
    assert ds.feature_high.tolist() == x32.max(axis=0).tolist()
    assert ds.bounds == (0.0, 1.0)
    assert load_dataset(str(path)).n == 5


def test_npz_string_labels_map_to_sorted_classes(tmp_path: Path) -> None:
    path = _npz(tmp_path / "s.npz", x=np.zeros((3, 2)), y=np.array(["dog", "cat", "dog"]))
    ds = load_dataset(path)
    assert ds.y.tolist() == [1, 0, 1]
    assert ds.class_names == ("cat", "dog")


def test_default_bounds_hold_both_the_unit_range_and_the_data(tmp_path: Path) -> None:
    pixels = _npz(tmp_path / "p.npz", x=np.array([[[[0.0, 255.0]]], [[[3.0, 7.0]]]]), y=np.array([0, 1]))
    assert load_dataset(pixels).bounds == (0.0, 255.0)
    centred = _npz(tmp_path / "c.npz", x=np.array([[[-0.5, 0.25]]]), y=np.array([0]))
    assert load_dataset(centred).bounds == (-0.5, 1.0)


def test_flat_features_get_one_range_each_and_a_reference_widens_them(tmp_path: Path) -> None:
    data = tmp_path / "test.csv"
    data.write_text("age,income,label\n11,20000,yes\n15,55000,no\n13,31000,yes\n")
    ds = load_dataset(data, label_column="label")
    assert ds.feature_low is not None
    assert ds.feature_high is not None
    assert ds.feature_low.tolist() == [11.0, 20000.0]
    assert ds.feature_high.tolist() == [15.0, 55000.0]
    assert ds.bounds == (0.0, 55000.0)
    train = tmp_path / "train.csv"
    train.write_text("income,age,label\n10000,12,no\n90000,14,yes\n")
    widened = load_dataset(data, label_column="label", feature_bounds=train)
    assert widened.feature_low.tolist() == [11.0, 10000.0]  # type: ignore[union-attr]
    assert widened.feature_high.tolist() == [15.0, 90000.0]  # type: ignore[union-attr]
    narrow = tmp_path / "narrow.csv"
    narrow.write_text("age,income\n12,20000\n14,50000\n")
    with pytest.warns(MlarmorWarning, match="'age' spans \\[11, 15\\] against \\[12, 14\\]"):
        load_dataset(data, label_column="label", feature_bounds=narrow)
    lacking = tmp_path / "lacking.csv"
    lacking.write_text("age\n1\n")
    with pytest.raises(InputError, match=r"lacks 1 feature column.*'income'"):
        load_dataset(data, label_column="label", feature_bounds=lacking)
    with pytest.raises(InvalidParameterError, match="applies to flat features"):
        load_dataset("demo:digits", feature_bounds=train)


def test_values_outside_declared_bounds_report_count_and_extremes(tmp_path: Path) -> None:
    path = _npz(tmp_path / "p.npz", x=np.array([[0.0, 255.0], [3.0, 0.5]]), y=np.array([0, 1]))
    with pytest.raises(InvalidParameterError) as info:
        load_dataset(path, bounds=(0, 1))
    message = str(info.value)
    assert "'p.npz' has 2 value(s) outside the declared bounds (0.0, 1.0)" in message
    assert "smallest is 0 and the largest 255" in message


def test_integer_features_by_index(tmp_path: Path) -> None:
    path = _npz(tmp_path / "i.npz", x=np.array([[1.0, 0.5], [3.0, 0.25]]), y=np.array([0, 1]))
    ds = load_dataset(path, bounds=(0, 10), integer=[0])
    assert ds.integer == (0,)
    with pytest.raises(InvalidParameterError, match=r"non-integral values, e.g. feature 1"):
        load_dataset(path, bounds=(0, 10), integer=[1])
    with pytest.raises(InvalidParameterError, match="'immutable' parameter of load_dataset"):
        load_dataset(path, immutable=["age"])


def test_object_arrays_are_refused_never_unpickled(tmp_path: Path, canary: Path) -> None:
    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.mkdir, (str(canary / "executed"),))

    path = tmp_path / "evil.npz"
    np.savez(path, x=np.array([Payload()], dtype=object), y=np.array([0]))
    with pytest.raises(InputError, match=r"'x' in .*evil.npz holds Python objects .* never unpickles"):
        load_dataset(path)
    npy = tmp_path / "evil.npy"
    np.save(npy, np.array([Payload()], dtype=object), allow_pickle=True)
    np.save(tmp_path / "y.npy", np.array([0]))
    with pytest.raises(InputError, match=r"evil.npy holds Python objects"):
        load_dataset(f"{npy},{tmp_path / 'y.npy'}")


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"inputs": np.zeros((2, 2)), "y": np.zeros(2)}, r"no array named 'x'; it holds 'inputs', 'y'"),
        ({"x": np.zeros((2, 2))}, r"no array named 'y'; it holds 'x'.*numpy.savez"),
        ({"x": np.zeros((3, 2)), "y": np.zeros(2)}, "3 input.* and 2 label"),
        ({"x": np.zeros((2, 2)), "y": np.array([0.0, 1.5])}, "must be integers .* 1.5 at index 1"),
        ({"x": np.zeros((2, 2)), "y": np.array([0, -1])}, "1 negative label"),
        ({"x": np.array([[0.0, np.nan], [0.1, 0.2]]), "y": np.zeros(2)}, "must be finite. Found 1 NaN"),
        ({"x": np.array([[np.inf, 0.0]]), "y": np.zeros(1)}, "0 NaN and 1 infinite"),
        ({"x": np.zeros((0, 4)), "y": np.zeros(0)}, "is empty"),
        ({"x": np.zeros(3), "y": np.zeros(3)}, "at least 2 dimensions"),
        ({"x": np.array([["a"]]), "y": np.zeros(1)}, "must be numbers"),
        ({"x": np.zeros((1, 2)), "y": np.zeros(1), "class_names": np.array([1, 2])}, "1-D array of strings"),
        (
            {"x": np.zeros((1, 2)), "y": np.zeros(1), "feature_names": np.array(["a"])},
            "1 feature_names for 2",
        ),
        ({"x": np.zeros((1, 2)), "y": np.array([3]), "class_names": np.array(["a"])}, "labels up to 3"),
        (
            {"x": np.zeros((1, 2)), "y": np.array(["a"]), "class_names": np.array(["a"])},
            "string labels and a class_names array",
        ),
    ],
)
def test_bad_npz_content_is_an_input_error(tmp_path: Path, arrays: dict[str, object], message: str) -> None:
    path = _npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(InputError, match=message):
        load_dataset(path)


def test_npz_that_is_not_a_zip_says_what_it_looks_like(tmp_path: Path) -> None:
    npy = tmp_path / "fake.npz"
    np.save(tmp_path / "real.npy", np.zeros(2))
    npy.write_bytes((tmp_path / "real.npy").read_bytes())
    with pytest.raises(InputError, match=r"not a NumPy .npz archive \(it looks like a NumPy .npy array\)"):
        load_dataset(npy)
    pickled = tmp_path / "p.npz"
    pickled.write_bytes(b"\x80\x04\x95")
    with pytest.raises(InputError, match="it looks like a Python pickle"):
        load_dataset(pickled)
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    with pytest.raises(InputError, match=r"Cannot read .*broken.npz"):
        load_dataset(broken)


def test_npz_with_label_column_is_refused(tmp_path: Path) -> None:
    path = _npz(tmp_path / "d.npz", x=np.zeros((1, 2)), y=np.zeros(1))
    with pytest.raises(InvalidParameterError, match="applies to CSV, TSV and Parquet tables only"):
        load_dataset(path, label_column="label")


def test_npy_pair(tmp_path: Path) -> None:
    np.save(tmp_path / "x.npy", np.full((4, 1, 2, 2), 0.5))
    np.save(tmp_path / "y.npy", np.array([0, 1, 1, 0]))
    ds = load_dataset(f"{tmp_path / 'x.npy'}, {tmp_path / 'y.npy'}")
    assert (ds.name, ds.input_shape, ds.num_classes) == ("x.npy", (1, 2, 2), 2)


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("{d}/x.npy,{d}/y.npy,{d}/z.npy", InputError, "must be two .npy files"),
        ("{d}/x.npy,{d}/y.csv", InputError, "must be two .npy files"),
        ("{d}/x.npy,{d}/missing.npy", InputError, "No such file: .*missing.npy"),
        ("{d}/x.npy", InputError, r"single .npy array.*'.*x.npy,labels.npy'"),
        ("{d}/text.npy,{d}/x.npy", InputError, r"not a NumPy .npy array \(it looks like text\)"),
    ],
)
def test_bad_npy_sources(tmp_path: Path, source: str, error: type[Exception], message: str) -> None:
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    (tmp_path / "text.npy").write_text("1,2,3")
    with pytest.raises(error, match=message):
        load_dataset(source.format(d=tmp_path))


# ---------------------------------------------------------------- paths and extensions


def test_missing_file_directory_and_unknown_extension(tmp_path: Path) -> None:
    with pytest.raises(
        InputError, match=r"No such file: .*nope.npz. Check the path; mlarmor reads .*demo:digits"
    ):
        load_dataset(tmp_path / "nope.npz")
    with pytest.raises(InputError, match="is not a file"):
        load_dataset(tmp_path)
    (tmp_path / "data.txt").write_text("hello")
    with pytest.raises(
        InputError, match=r"unknown extension '.txt' \(it looks like text\). Expected .*\.npz"
    ):
        load_dataset(tmp_path / "data.txt")
    (tmp_path / "model").write_bytes(b"\x00\x01")
    with pytest.raises(InputError, match=r"unknown extension '\(none\)' \(it looks like binary data\)"):
        load_dataset(tmp_path / "model")
    with pytest.raises(InvalidParameterError, match="'source' parameter of load_dataset"):
        load_dataset(3)  # type: ignore[arg-type]


# ---------------------------------------------------------------- CSV, TSV and Parquet


def test_csv_with_string_labels_and_names(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "age,score,visits,label\n30,0.5,2,yes\n40,0.25,0,no\n50,1.0,1,yes\n")
    ds = load_dataset(path, label_column="label", bounds=(0, 100), immutable=["age"], integer=["visits"])
    assert ds.feature_names == ("age", "score", "visits")
    assert ds.class_names == ("no", "yes")
    assert ds.y.tolist() == [1, 0, 1]
    assert ds.immutable == (0,)
    assert ds.integer == (2,)
    assert ds.x[:, 0].tolist() == [30.0, 40.0, 50.0]


def test_csv_feature_columns_select_and_order(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.csv", "id,a,b,target\nx1,0.1,0.2,1\nx2,0.3,0.4,0\n")
    ds = load_dataset(path, label_column="target", feature_columns=["b", "a"])
    assert ds.feature_names == ("b", "a")
    assert ds.x[0].tolist() == pytest.approx([0.2, 0.1])
    assert ds.y.tolist() == [1, 0]
    assert ds.class_names == ("0", "1")


def test_tsv_and_integral_float_labels(tmp_path: Path) -> None:
    path = _csv(tmp_path / "t.tsv", "a\tb\ty\n0.1\t0.2\t1.0\n0.3\t0.4\t0.0\n")
    assert load_dataset(path, label_column="y").y.tolist() == [1, 0]


@pytest.mark.parametrize(
    ("text", "kwargs", "error", "message"),
    [
        ("a,b\n1,0\n", {}, InvalidParameterError, r"needs label_column \(--label-column\).*'a', 'b'"),
        ("a,b\n1,0\n", {"label_column": "y"}, InvalidParameterError, r"columns of t.csv \('a', 'b'\)"),
        (
            "a,b,y\n1,0,1\n",
            {"label_column": "y", "feature_columns": ["a", "c"]},
            InvalidParameterError,
            "'c'",
        ),
        (
            "a,b,y\n1,0,1\n",
            {"label_column": "y", "feature_columns": ["a", "y"]},
            InvalidParameterError,
            "distinct",
        ),
        (
            "a,b,y\n1,0,1\n",
            {"label_column": "y", "feature_columns": "a"},
            InvalidParameterError,
            "non-empty list",
        ),
        (
            "a,colour,b,kind,y\n1,red,0,x,1\n",
            {"label_column": "y"},
            InputError,
            r"must be numeric; these are not: 'colour' \(.*\), 'kind' \(.*\). Encode",
        ),
        (
            "a,b,y\n1,,1\n2,3,0\n,1,1\n",
            {"label_column": "y"},
            InputError,
            r"2 missing .* 2 column\(s\): 'a' \(1\)",
        ),
        ("a,y\ninf,1\n", {"label_column": "y"}, InputError, "missing or infinite"),
        ("a,y\n1,1\n2,\n", {"label_column": "y"}, InputError, "1 missing label.* row index 1"),
        ("a,y\n1,-1\n2,1\n", {"label_column": "y"}, InputError, r"label column 'y'.*1 negative label"),
        ("a,y\n1,0.5\n", {"label_column": "y"}, InputError, "non-integral label"),
        ("a,y\n", {"label_column": "y"}, InputError, "is empty: .* has a header but no rows"),
        ("", {"label_column": "y"}, InputError, "is empty"),
        ("y\n1\n", {"label_column": "y"}, InputError, "only the label column"),
        (
            "a,y\n5,1\n",
            {"label_column": "y", "bounds": (0, 1)},
            InvalidParameterError,
            "outside the declared",
        ),
        ('a,y\n"1,1\n', {"label_column": "y"}, InputError, "Cannot parse .* as a CSV table"),
    ],
)
def test_bad_tables_get_clear_errors(
    tmp_path: Path, text: str, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    path = _csv(tmp_path / "t.csv", text)
    with pytest.raises(error, match=message):
        load_dataset(path, **kwargs)  # type: ignore[arg-type]


def test_binary_file_named_csv(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(b"PK\x03\x04\x00\x00")
    with pytest.raises(InputError, match="not a CSV text file"):
        load_dataset(path, label_column="y")


def test_parquet_without_an_engine_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec

    def no_engines(name: str, *args: object) -> object:
        return None if name in {"pyarrow", "fastparquet"} else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(_tables.importlib.util, "find_spec", no_engines)
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1")
    with pytest.raises(InputError, match=r"needs pyarrow or fastparquet.*pip install pyarrow"):
        load_dataset(path, label_column="y")


def test_tables_without_pandas_say_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        _tables.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "pandas" else real(name, *a),
    )
    with pytest.raises(InputError, match=r"needs pandas.*pip install pandas"):
        load_dataset(_csv(tmp_path / "t.csv", "a,y\n1,0\n"), label_column="y")


def test_parquet_round_trip(tmp_path: Path) -> None:
    if not any(importlib.util.find_spec(m) for m in ("pyarrow", "fastparquet")):
        pytest.skip("needs pyarrow or fastparquet")
    path = tmp_path / "t.parquet"
    pd.DataFrame({"a": [0.1, 0.2], "b": [1, 0], "label": ["x", "y"]}).to_parquet(path)
    ds = load_dataset(path, label_column="label", integer=["b"])
    assert ds.feature_names == ("a", "b")
    assert ds.class_names == ("x", "y")
    assert ds.integer == (1,)


def test_a_missing_label_column_lists_every_column(tmp_path: Path) -> None:
    wide = tmp_path / "wide.csv"
    names = [f"feature_{i}" for i in range(30)] + ["outcome"]
    wide.write_text(",".join(names) + "\n" + ",".join(["1"] * 31) + "\n")
    for label in (None, "label"):
        with pytest.raises(InvalidParameterError) as info:
            load_dataset(wide, label_column=label)
        assert all(repr(name) in str(info.value) for name in names)
        assert "more" not in str(info.value)
