"""Feature squeezing on real models: a small CNN on digits (images) and scikit-learn on breast cancer (flat).

Digits are split three ways, as a user should: the model trains on one part, the detector is fitted on
a second and evaluated on the third. 8x8 digits lose their content to a 2x2 median filter, so the
detection tests on them use bit-depth reduction alone (the fit logs a warning for the median).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import median_filter
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.multiclass import OutputCodeClassifier
from torch import nn

from mlarmor._stats import clopper_pearson
from mlarmor.attacks import create
from mlarmor.data import load_dataset
from mlarmor.defenses import DetectionReport, FeatureSqueezing, median_smooth, reduce_bit_depth
from mlarmor.defenses._validate import mann_whitney_auc as _auc
from mlarmor.errors import InvalidParameterError, NotFittedError, UnsupportedModelError
from mlarmor.targets import SklearnTarget, TorchTarget

DOC = Path(__file__).resolve().parents[2] / "docs" / "detection.md"
N_TRAIN, N_FIT = 1000, 400


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models run fastest on one thread; two threads spin against each other on a busy CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    data = load_dataset("demo:digits")
    order = np.random.default_rng(0).permutation(data.n)
    x = np.array(data.x, dtype=np.float32)[order]
    y = np.array(data.y, dtype=np.int64)[order]
    cut = N_TRAIN + N_FIT
    return {
        "x_train": x[:N_TRAIN],
        "y_train": y[:N_TRAIN],
        "x_fit": x[N_TRAIN:cut],
        "y_fit": y[N_TRAIN:cut],
        "x_eval": x[cut:],
        "y_eval": y[cut:],
    }


@pytest.fixture(scope="module")
def cnn(digits) -> TorchTarget:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 4 * 4, 10),
    )
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.from_numpy(digits["x_train"]), torch.from_numpy(digits["y_train"])
    for _ in range(10):
        for rows in torch.randperm(len(x)).split(128):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[rows]), y[rows]).backward()
            opt.step()
    return TorchTarget(model.eval(), bounds=(0.0, 1.0), input_shape=(1, 8, 8), name="digits-cnn")


@pytest.fixture(scope="module")
def pgd(cnn, digits):
    return create("pgd", eps=0.2, steps=20)(cnn, digits["x_eval"], digits["y_eval"])


@pytest.fixture(scope="module")
def bit_depth_detector(cnn, digits) -> FeatureSqueezing:
    return FeatureSqueezing(["bit-depth"]).fit(cnn, digits["x_fit"], digits["y_fit"])


@pytest.fixture(scope="module")
def cancer() -> dict[str, object]:
    train, rest = load_dataset("demo:breast-cancer").split(0.6, seed=0)
    fit, held_out = rest.split(0.5, seed=0)
    model = LogisticRegression(max_iter=1000).fit(train.x, train.y)
    return {
        "target": SklearnTarget(model, bounds=(0.0, 1.0), name="cancer-logreg"),
        "x_fit": np.asarray(fit.x),
        "y_fit": np.asarray(fit.y, dtype=np.int64),
        "x_eval": np.asarray(held_out.x),
        "y_eval": np.asarray(held_out.y, dtype=np.int64),
    }


# -- the squeezers, by hand ----------------------------------------------------------------------


def test_bit_depth_by_hand() -> None:
    x = np.array([0.0, 0.2, 0.49, 0.51, 0.9, 1.0], dtype=np.float32)
    out = reduce_bit_depth(x, 1)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [0, 0, 0, 1, 1, 1])
    np.testing.assert_allclose(reduce_bit_depth(x, 2), [0, 1 / 3, 1 / 3, 2 / 3, 1, 1], rtol=1e-6)
    # bounds (-1, 1): -0.2 scales to 0.4, which rounds to level 0 of one bit, so -1
    np.testing.assert_array_equal(reduce_bit_depth(np.array([-0.2, 0.2]), 1, (-1.0, 1.0)), [-1.0, 1.0])
    # 8 bits on [0, 255] keeps every integer value, as float64
    ints = np.arange(256)
    np.testing.assert_array_equal(reduce_bit_depth(ints, 8, (0.0, 255.0)), ints.astype(np.float64))


def test_median_window_covers_the_pixel_and_those_below_and_right() -> None:
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    # (0, 0): {1, 2, 4, 5}; (0, 2): column 2 reflected, {3, 3, 6, 6}; (2, 2): {9, 9, 9, 9}
    expected = [[3.0, 4.0, 4.5], [6.0, 7.0, 7.5], [7.5, 8.5, 9.0]]
    np.testing.assert_array_equal(median_smooth(x, 2), expected)


def test_median_is_vectorised_over_batch_and_channels() -> None:
    x = np.random.default_rng(0).random((3, 2, 6, 5)).astype(np.float32)
    out = median_smooth(x, 2)
    assert out.shape == x.shape
    assert out.dtype == np.float32
    for i in range(3):
        for c in range(2):
            np.testing.assert_array_equal(out[i, c], median_smooth(x[i, c], 2))


@pytest.mark.parametrize("size", [3, 5])
def test_odd_median_matches_scipy(size: int) -> None:
    # odd windows are centred in both conventions; scipy's "reflect" is numpy's "symmetric"
    x = np.random.default_rng(1).random((4, 3, 7, 9))
    expected = median_filter(x, size=(1, 1, size, size), mode="reflect")
    np.testing.assert_allclose(median_smooth(x, size), expected)


def test_auc_is_rank_based_with_ties() -> None:
    rng = np.random.default_rng(0)
    clean = rng.integers(0, 5, 50).astype(float)  # many ties, within and across the groups
    adv = rng.integers(2, 8, 40).astype(float)
    labels = np.r_[np.zeros(50), np.ones(40)]
    assert _auc(clean, adv) == pytest.approx(roc_auc_score(labels, np.r_[clean, adv]))
    assert _auc(np.zeros(3), np.zeros(4)) == 0.5
    assert _auc(np.zeros(3), np.ones(4)) == 1.0


# -- fitting and scoring on images ---------------------------------------------------------------


def test_score_is_max_l1_over_squeezers(cnn, digits) -> None:
    det = FeatureSqueezing(["bit-depth", "median"], bits=4).fit(cnn, digits["x_fit"])
    assert det.squeezers_ == ("bit-depth", "median")
    assert det.bits_ == 4
    x = digits["x_eval"][:20]
    p = cnn.predict_proba(x)
    by_hand = np.maximum(
        np.abs(p - cnn.predict_proba(reduce_bit_depth(x, 4))).sum(1),
        np.abs(p - cnn.predict_proba(median_smooth(x, 2))).sum(1),
    )
    scores = det.score(x)
    assert scores.dtype == np.float64
    assert scores.shape == (20,)
    np.testing.assert_allclose(scores, by_hand, atol=1e-12)
    np.testing.assert_array_equal(det.detect(x), scores > det.threshold_)
    small_batches = FeatureSqueezing(["bit-depth", "median"], bits=4, batch_size=7).fit(cnn, digits["x_fit"])
    # float32 convolutions differ in the last bits between batch sizes
    np.testing.assert_allclose(small_batches.score(x), scores, atol=1e-5)


def test_threshold_is_the_clean_quantile(bit_depth_detector, digits) -> None:
    det = bit_depth_detector
    scores = det.fit_scores_
    assert det.threshold_ == np.quantile(scores, 0.95)
    flagged = float(np.mean(det.detect(digits["x_fit"])))
    # strictly above the 95% quantile of N_FIT distinct scores: at most 5%, at least 5% - 1/N_FIT
    assert 0.05 - 1 / N_FIT <= flagged <= 0.05


@pytest.mark.parametrize("squeezers", [None, ["bit-depth"], ["bit-depth", "median"]])
def test_false_alarm_rate_on_held_out_clean_data(cnn, digits, squeezers, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="mlarmor.defenses.runtime.squeezing"):
        det = FeatureSqueezing(squeezers).fit(cnn, digits["x_fit"], digits["y_fit"])
    # The median filter wipes out 8x8 digits: the default leaves it out, an explicit request keeps
    # it with a warning; either way the fit says so.
    assert ("median squeezer" in caplog.text) == (squeezers != ["bit-depth"])
    assert det.squeezers_ == (
        ("bit-depth", "median") if squeezers and "median" in squeezers else ("bit-depth",)
    )
    rate = float(np.mean(det.detect(digits["x_eval"])))
    # Two samples of ~400 (the threshold's and this one) each add a binomial sd of about
    # sqrt(0.05 * 0.95 / 400) = 0.011, so about 0.015 together: [0.01, 0.10] is beyond 2.5 sd.
    assert 0.01 <= rate <= 0.10


def test_detects_pgd_examples(bit_depth_detector, cnn, digits, pgd) -> None:
    assert pgd.success.mean() > 0.9
    report = bit_depth_detector.evaluate(digits["x_eval"], pgd.x_adv, adversarial=pgd.success)
    assert isinstance(report, DetectionReport)
    assert report.n_clean == len(digits["x_eval"])
    assert report.n_adversarial == int(pgd.success.sum())
    assert report.threshold == bit_depth_detector.threshold_
    assert report.false_alarm_rate <= 0.10
    assert report.detection_rate > 0.6
    assert report.detection_rate > 5 * report.false_alarm_rate
    assert report.auc > 0.9
    adv_only = pgd.x_adv[pgd.success]
    assert report.detection_rate == pytest.approx(bit_depth_detector.detect(adv_only).mean())
    clean_scores = bit_depth_detector.score(digits["x_eval"])
    labels = np.r_[np.zeros(len(clean_scores)), np.ones(len(adv_only))]
    expected_auc = roc_auc_score(labels, np.r_[clean_scores, bit_depth_detector.score(adv_only)])
    assert report.auc == pytest.approx(expected_auc)
    assert json.loads(json.dumps(report.to_dict())) == report.to_dict()
    # Each rate comes with its 95% Clopper-Pearson interval over its own count.
    flagged = int(bit_depth_detector.detect(adv_only).sum())
    assert report.detection_rate_ci == clopper_pearson(flagged, report.n_adversarial)
    alarms = int(bit_depth_detector.detect(digits["x_eval"]).sum())
    assert report.false_alarm_rate_ci == clopper_pearson(alarms, report.n_clean)
    assert report.to_dict()["false_alarm_rate_ci"] == list(report.false_alarm_rate_ci)


@pytest.mark.parametrize("with_labels", [True, False])
def test_auto_bit_depth_is_the_smallest_within_one_point(cnn, digits, with_labels) -> None:
    x, y = digits["x_fit"], digits["y_fit"]
    det = FeatureSqueezing(["bit-depth"]).fit(cnn, x, y if with_labels else None)
    reference = y if with_labels else cnn.predict(x)
    baseline = float(np.mean(cnn.predict(x) == reference))
    assert det.clean_accuracy_ == (baseline if with_labels else None)

    def accuracy(bits: int) -> float:
        return float(np.mean(cnn.predict(reduce_bit_depth(x, bits)) == reference))

    chosen = det.bits_
    assert chosen is not None
    assert 1 < chosen <= 8
    assert accuracy(chosen) >= baseline - 0.01
    assert all(accuracy(b) < baseline - 0.01 for b in range(1, chosen))
    assert sorted(det.bit_accuracies_) == list(range(1, chosen + 1))
    assert det.bit_accuracies_[chosen] == pytest.approx(accuracy(chosen))


def test_explicit_bits_are_used(cnn, digits) -> None:
    det = FeatureSqueezing("bit-depth", bits=5).fit(cnn, digits["x_fit"])
    assert det.bits_ == 5
    assert list(det.bit_accuracies_) == [5]
    median_only = FeatureSqueezing("median", bits=5).fit(cnn, digits["x_fit"])
    assert median_only.squeezers_ == ("median",)
    assert median_only.bits_ is None


# -- flat inputs: scikit-learn -------------------------------------------------------------------


def test_flat_inputs_use_bit_depth_only(cancer) -> None:
    target = cancer["target"]
    det = FeatureSqueezing().fit(target, cancer["x_fit"], cancer["y_fit"])
    assert det.squeezers_ == ("bit-depth",)
    assert det.input_shape_ == (30,)
    assert det.bits_ is not None
    assert det.clean_accuracy_ is not None
    # ~170 held-out rows: binomial sd 0.017 on top of the threshold's own, so 0.10 is a loose bound
    assert float(np.mean(det.detect(cancer["x_eval"]))) <= 0.10
    with pytest.raises(InvalidParameterError, match=r"'median' squeezer .*flat.*squeezers=\['bit-depth'\]"):
        FeatureSqueezing(["bit-depth", "median"]).fit(target, cancer["x_fit"])


def test_flat_detector_flags_black_box_examples(cancer) -> None:
    target = cancer["target"]
    det = FeatureSqueezing().fit(target, cancer["x_fit"])
    result = create("square", eps=0.1, n_queries=300)(target, cancer["x_eval"], cancer["y_eval"])
    report = det.evaluate(cancer["x_eval"], result.x_adv, adversarial=result.success)
    # a linear model's score-based examples sit near its boundary: weaker but clear separation
    assert report.n_adversarial >= 30
    assert report.auc > 0.65
    assert report.detection_rate > 2 * report.false_alarm_rate


def test_label_only_target_is_refused(cancer) -> None:
    x_fit, y_fit = cancer["x_fit"], cancer["y_fit"]
    labels_only = SklearnTarget(
        OutputCodeClassifier(LogisticRegression(max_iter=1000), random_state=0).fit(x_fit, y_fit),
        bounds=(0.0, 1.0),
        name="ecoc",
    )
    assert labels_only.capabilities == {"labels"}
    with pytest.raises(UnsupportedModelError, match=r"needs the 'scores' capability .* offers only: labels"):
        FeatureSqueezing().fit(labels_only, x_fit)
    with pytest.raises(InvalidParameterError, match=r"mlarmor\.targets\.Target"):
        FeatureSqueezing().fit(LogisticRegression(), x_fit)


# -- serialisation --------------------------------------------------------------------------------


def test_to_dict_from_dict_round_trip(bit_depth_detector, cnn, digits, cancer) -> None:
    data = json.loads(json.dumps(bit_depth_detector.to_dict()))
    restored = FeatureSqueezing.from_dict(data, cnn)
    assert restored.threshold_ == bit_depth_detector.threshold_
    assert restored.bits_ == bit_depth_detector.bits_
    assert restored.squeezers_ == ("bit-depth",)
    assert restored.to_dict() == data
    x = digits["x_eval"][:50]
    np.testing.assert_array_equal(restored.score(x), bit_depth_detector.score(x))

    unfitted = FeatureSqueezing(["median"], median_size=3, false_alarm_rate=0.1)
    again = FeatureSqueezing.from_dict(json.loads(json.dumps(unfitted.to_dict())))
    assert repr(again) == repr(unfitted)
    with pytest.raises(NotFittedError):
        again.score(x)

    with pytest.raises(InvalidParameterError, match="needs the target"):
        FeatureSqueezing.from_dict(data)
    with pytest.raises(InvalidParameterError, match="fitted on a model with bounds"):
        FeatureSqueezing.from_dict(data, cancer["target"])


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: {**d, "detector": "Other"},
        lambda d: {**d, "version": 99},
        lambda d: {**d, "params": {**d["params"], "extra": 1}},
        lambda d: {**d, "params": {**d["params"], "false_alarm_rate": 2.0}},
        lambda d: {**d, "fitted": {**d["fitted"], "threshold": "high"}},
        lambda d: {**d, "fitted": {**d["fitted"], "threshold": -1.0}},
        lambda d: {**d, "fitted": {**d["fitted"], "squeezers": ["blur"]}},
        lambda d: {**d, "fitted": {**d["fitted"], "bits": None}},
        lambda d: {k: v for k, v in d.items() if k != "fitted"} | {"fitted": {"threshold": 0.1}},
        lambda d: [],
    ],
)
def test_from_dict_rejects_malformed_data(bit_depth_detector, cnn, edit) -> None:
    with pytest.raises(InvalidParameterError):
        FeatureSqueezing.from_dict(edit(bit_depth_detector.to_dict()), cnn)


# -- errors ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"false_alarm_rate": 0.0}, "false_alarm_rate"),
        ({"false_alarm_rate": 1.0}, "false_alarm_rate"),
        ({"false_alarm_rate": -0.1}, "false_alarm_rate"),
        ({"false_alarm_rate": True}, "false_alarm_rate"),
        ({"false_alarm_rate": "5%"}, "false_alarm_rate"),
        ({"bits": 0}, "bits"),
        ({"bits": 17}, "bits"),
        ({"bits": 2.0}, "bits"),
        ({"bits": True}, "bits"),
        ({"median_size": 1}, "median_size"),
        ({"median_size": 2.5}, "median_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"squeezers": "blur"}, "squeezers"),
        ({"squeezers": []}, "squeezers"),
        ({"squeezers": ["median", "median"]}, "squeezers"),
    ],
)
def test_bad_parameters_are_refused_at_construction(params, name) -> None:
    with pytest.raises(InvalidParameterError, match=rf"^The '{name}' parameter of FeatureSqueezing must be"):
        FeatureSqueezing(**params)


def _bad_inputs() -> list[tuple[object, str]]:
    good = np.full((4, 1, 8, 8), 0.5, dtype=np.float32)
    nan, inf, high = good.copy(), good.copy(), good.copy()
    nan[0, 0, 0, 0] = np.nan
    inf[1, 0, 2, 2] = np.inf
    high[2, 0, 3, 3] = 1.5
    return [
        (good[:, 0], r"shape \(n, 1, 8, 8\).* Got shape \(4, 8, 8\)"),
        (good.reshape(4, 64), r"shape \(n, 1, 8, 8\)"),
        (good[0, 0, 0], r"non-empty batch"),
        (good[:0], r"non-empty batch .* Got shape \(0, 1, 8, 8\)"),
        (nan, r"finite \(no NaN or inf\)"),
        (inf, r"finite"),
        (high, r"within the target's bounds \[0, 1\].* values in \[0.5, 1.5\]"),
        (-good, r"within the target's bounds"),
        (good.astype(str), r"numeric"),
    ]


@pytest.mark.parametrize(("x", "message"), _bad_inputs())
def test_bad_inputs_are_refused(bit_depth_detector, cnn, x, message) -> None:
    with pytest.raises(InvalidParameterError, match=message):
        FeatureSqueezing().fit(cnn, x)
    with pytest.raises(InvalidParameterError, match=message):
        bit_depth_detector.score(x)
    with pytest.raises(InvalidParameterError, match=message):
        bit_depth_detector.evaluate(np.full((2, 1, 8, 8), 0.5, dtype=np.float32), x)


def test_bad_labels_masks_and_windows_are_refused(bit_depth_detector, cnn, digits) -> None:
    x = digits["x_fit"]
    with pytest.raises(InvalidParameterError, match=r"'y' .* shape \(400,\)"):
        FeatureSqueezing().fit(cnn, x, digits["y_fit"][:10])
    with pytest.raises(InvalidParameterError, match=r"labels in \[0, 10\)"):
        FeatureSqueezing().fit(cnn, x, digits["y_fit"] + 5)
    with pytest.raises(InvalidParameterError, match=r"'median_size' .* height and width"):
        FeatureSqueezing(median_size=9).fit(cnn, x)
    x_eval = digits["x_eval"][:10]
    with pytest.raises(InvalidParameterError, match=r"'adversarial' .* bool array of shape \(10,\)"):
        bit_depth_detector.evaluate(x_eval, x_eval, adversarial=np.ones(10, dtype=np.int64))
    with pytest.raises(InvalidParameterError, match="selects no row"):
        bit_depth_detector.evaluate(x_eval, x_eval, adversarial=np.zeros(10, dtype=bool))


def test_not_fitted(digits) -> None:
    det = FeatureSqueezing()
    x = digits["x_eval"][:5]
    for use in (lambda: det.score(x), lambda: det.detect(x), lambda: det.evaluate(x, x)):
        with pytest.raises(NotFittedError, match=r"not fitted yet: call fit\(target, x_clean\)"):
            use()
    for name in ("threshold_", "bits_", "squeezers_", "clean_accuracy_", "fit_scores_", "target_"):
        with pytest.raises(NotFittedError):
            getattr(det, name)
        assert not hasattr(det, name)  # NotFittedError is an AttributeError, as in scikit-learn
    assert det.to_dict()["fitted"] is None


# -- the documentation ----------------------------------------------------------------------------


def test_doc_example_runs(capsys) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for i, block in enumerate(blocks):  # the page's blocks build on one another
        exec(compile(block, f"{DOC.name}[{i}]", "exec"), namespace)
    out = capsys.readouterr().out
    assert "detection rate" in out
    assert "false alarms" in out
