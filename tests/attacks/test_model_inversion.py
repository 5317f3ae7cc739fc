"""Model inversion on a real digits model, the similarity score, and the SVG image grid it is shown with."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
from torch import nn

from mlarmor.attacks.inference import InversionResult, class_mean_similarity, invert_classes
from mlarmor.data import Dataset, load_dataset
from mlarmor.errors import InvalidParameterError, UnsupportedModelError
from mlarmor.models import digits_mlp, fit_classifier, tabular_mlp
from mlarmor.report import image_grid_svg
from mlarmor.targets import ObfuscatedTarget, TorchTarget

SVG = "{http://www.w3.org/2000/svg}"
STEPS = 100  # measured: similarity and confidence no longer change past about 100 steps on digits


@pytest.fixture(scope="module")
def digits() -> tuple[Dataset, Dataset]:
    return load_dataset("demo:digits").split(0.25, seed=0)


@pytest.fixture(scope="module")
def trained(digits: tuple[Dataset, Dataset]) -> nn.Module:
    train, _ = digits
    return fit_classifier(digits_mlp(seed=0), train.x, train.y, epochs=20, lr=1e-2, batch_size=128)


def wrap(module: nn.Module) -> TorchTarget:
    return TorchTarget(module, bounds=(0.0, 1.0), input_shape=(1, 8, 8), name="digits-mlp")


@pytest.fixture(scope="module")
def result(trained: nn.Module, digits: tuple[Dataset, Dataset]) -> InversionResult:
    return invert_classes(wrap(trained), steps=STEPS, reference=digits[1])


# -- the attack on a trained model -------------------------------------------------------------------


def test_reconstructions_stay_in_bounds_and_convince_the_model(result: InversionResult, trained) -> None:
    assert result.images.shape == (10, 1, 8, 8)
    assert result.images.dtype == np.float32
    assert result.images.min() >= 0.0
    assert result.images.max() <= 1.0
    assert result.classes.tolist() == list(range(10))
    assert (result.confidence > 0.9).sum() >= 8
    # The reported confidence is the target's own probability for the reconstruction.
    probs = wrap(trained).predict_proba(result.images)
    np.testing.assert_allclose(result.confidence, probs[np.arange(10), np.arange(10)], rtol=1e-5)
    assert result.steps == STEPS
    assert result.queries == 10 * (STEPS + 1)
    assert not result.images.flags.writeable


def test_reconstructions_resemble_their_class_far_above_the_baseline(result: InversionResult) -> None:
    # Measured on this model: about 0.52 against a baseline of about -0.01, all 10 identifiable.
    assert abs(result.baseline_similarity) < 0.1
    assert result.mean_similarity > result.baseline_similarity + 0.25
    assert result.similarity_gain == pytest.approx(result.mean_similarity - result.baseline_similarity)
    assert result.identifiable.sum() >= 7
    assert result.identifiable_rate == pytest.approx(result.identifiable.mean())
    assert np.isfinite(result.similarity).all()


def test_an_untrained_model_reveals_nothing(digits: tuple[Dataset, Dataset]) -> None:
    # Negative control: the priors alone do not make digits; the similarity measures the model.
    untrained = invert_classes(wrap(digits_mlp(seed=0).eval()), steps=STEPS, reference=digits[1])
    assert untrained.mean_similarity < untrained.baseline_similarity + 0.1
    assert untrained.identifiable.sum() <= 4


def test_deterministic_under_a_seed_and_independent_of_batching(trained, digits) -> None:
    target = wrap(trained)
    first = invert_classes(target, classes=[0, 3, 8], steps=20, seed=5)
    again = invert_classes(target, classes=[0, 3, 8], steps=20, seed=5)
    other = invert_classes(target, classes=[0, 3, 8], steps=20, seed=6)
    chunked = invert_classes(target, classes=[0, 3, 8], steps=20, seed=5, batch_size=2)
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.confidence, again.confidence)
    assert not np.array_equal(first.images, other.images)
    np.testing.assert_allclose(first.images, chunked.images, atol=1e-4)


def test_global_random_state_and_model_gradients_are_left_alone(trained) -> None:
    state = torch.get_rng_state()
    grads = [None if p.grad is None else p.grad.clone() for p in trained.parameters()]
    invert_classes(wrap(trained), steps=3)
    assert torch.equal(state, torch.get_rng_state())
    for before, p in zip(grads, trained.parameters(), strict=True):
        assert (before is None and p.grad is None) or torch.equal(before, p.grad)


def test_a_subset_of_classes(trained, digits) -> None:
    sub = invert_classes(wrap(trained), classes=[7, 2], steps=STEPS, reference=digits[1])
    assert sub.classes.tolist() == [7, 2]
    assert sub.images.shape == (2, 1, 8, 8)
    assert sub.queries == 2 * (STEPS + 1)
    assert sub.identifiable.tolist() == [True, True]


def test_reference_without_a_class_gives_nan_for_it(trained, digits) -> None:
    test = digits[1]
    keep = test.y != 4
    sub = invert_classes(wrap(trained), classes=[4, 5], steps=10, reference=(test.x[keep], test.y[keep]))
    assert math.isnan(sub.similarity[0])
    assert not math.isnan(sub.similarity[1])
    assert not sub.identifiable[0]
    assert sub.mean_similarity == pytest.approx(sub.similarity[1])


def test_log_prob_objective_saturates_and_shows_less(trained, digits, result: InversionResult) -> None:
    # log p stops growing once the class wins, so the priors must be light; even then the image stays
    # nearer its neutral start than with the logit (measured: about 0.30 against 0.49).
    log_prob = invert_classes(
        wrap(trained), steps=STEPS, objective="log-prob", tv_weight=1.0, l2_weight=0.1, reference=digits[1]
    )
    assert log_prob.objective == "log-prob"
    assert (log_prob.confidence > 0.9).sum() >= 8
    assert log_prob.mean_similarity > log_prob.baseline_similarity + 0.1
    assert log_prob.mean_similarity < result.mean_similarity


def test_a_model_that_outputs_probabilities(trained, digits) -> None:
    softmaxed = wrap(nn.Sequential(trained, nn.Softmax(dim=1)))
    assert softmaxed.outputs_probabilities
    probs = invert_classes(softmaxed, steps=STEPS, reference=digits[1])
    assert (probs.confidence > 0.9).sum() >= 8
    assert probs.mean_similarity > probs.baseline_similarity + 0.25
    assert probs.identifiable.sum() >= 7


def test_tabular_inputs_and_other_bounds() -> None:
    module = tabular_mlp(5, 3, hidden=8, seed=0).eval()
    target = TorchTarget(module, bounds=(-2.0, 3.0), input_shape=(5,))
    res = invert_classes(target, steps=30, tv_weight=100.0)  # no spatial axes: TV does not apply
    assert res.images.shape == (3, 5)
    assert res.images.min() >= -2.0
    assert res.images.max() <= 3.0
    assert math.isnan(res.mean_similarity)
    assert math.isnan(res.baseline_similarity)


def test_input_shape_from_the_reference(trained, digits) -> None:
    target = TorchTarget(trained, bounds=(0.0, 1.0), num_classes=10)
    with pytest.raises(InvalidParameterError, match="shape of one input"):
        invert_classes(target, steps=2)
    res = invert_classes(target, steps=2, reference=digits[1])
    assert res.images.shape == (10, 1, 8, 8)


def test_to_dict_is_json_ready(result: InversionResult, trained) -> None:
    full = result.to_dict()
    assert json.loads(json.dumps(full, allow_nan=False)) == full
    assert full["images_omitted"] is False
    assert np.asarray(full["images"]).shape == (10, 1, 8, 8)
    assert full["images"][0][0][3][4] == round(float(result.images[0, 0, 3, 4]), 4)
    assert full["identifiable"] == result.identifiable.tolist()
    short = result.to_dict(images=False)
    assert short["images_omitted"] is True
    assert "images" not in short
    assert short["image_shape"] == [1, 8, 8]
    bare = invert_classes(wrap(trained), classes=[1], steps=2).to_dict()
    json.dumps(bare, allow_nan=False)
    assert bare["similarity"] == [None]
    assert bare["most_similar"] == [None]
    assert bare["mean_similarity"] is None


# -- refusals and validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "offered"), [({"labels_only": True}, "labels"), ({"top_k": 3}, "labels, scores")]
)
def test_black_box_targets_are_refused(trained, options, offered) -> None:
    guarded = ObfuscatedTarget(wrap(trained), **options)
    with pytest.raises(UnsupportedModelError, match="'gradients' capability") as info:
        invert_classes(guarded)
    assert f"offers only: {offered}." in str(info.value)
    assert "TorchTarget" in str(info.value)


def test_a_non_target_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="'target' parameter of invert_classes"):
        invert_classes(object())  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"steps": 0}, "steps"),
        ({"lr": 0.0}, "lr"),
        ({"tv_weight": -1.0}, "tv_weight"),
        ({"l2_weight": math.nan}, "l2_weight"),
        ({"objective": "prob"}, "objective"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"classes": [10]}, "classes"),
        ({"classes": [1, 1]}, "classes"),
        ({"classes": []}, "classes"),
        ({"classes": "01"}, "classes"),
        ({"reference": "digits"}, "reference"),
        ({"reference": (np.zeros((3, 64), np.float32), np.zeros(3, np.int64))}, "x"),
    ],
)
def test_parameters_are_validated(trained, options, name) -> None:
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of invert_classes"):
        invert_classes(wrap(trained), **options)


# -- the similarity score ----------------------------------------------------------------------------


def test_similarity_matches_a_slow_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((60, 2, 3, 3))
    y = rng.integers(0, 4, 60)
    images = rng.random((4, 2, 3, 3))
    classes = np.array([0, 1, 2, 3])
    fast, closest = class_mean_similarity(images, classes, x, y)
    m = x.reshape(60, -1).mean(axis=0)
    for i, c in enumerate(classes):
        a = images[i].ravel() - m
        scores = []
        for k in range(4):
            b = x[y == k].reshape(-1, 18).mean(axis=0) - m
            scores.append(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)))
        assert fast[i] == pytest.approx(scores[c])
        assert closest[i] == int(np.argmax(scores))


def test_similarity_of_class_means_and_of_the_overall_mean() -> None:
    rng = np.random.default_rng(1)
    x = rng.random((40, 5))
    y = np.repeat([0, 1], 20)
    means = np.stack([x[y == 0].mean(0), x[y == 1].mean(0), x.mean(0)])
    sim, closest = class_mean_similarity(means, np.array([0, 1, 2]), x, y)
    assert sim[:2] == pytest.approx([1.0, 1.0])
    assert math.isnan(sim[2])  # class 2 has no data
    assert closest[:2].tolist() == [0, 1]
    # The overall mean centres to zero: similar to nothing.
    sim_mean, _ = class_mean_similarity(means[2:], np.array([0]), x, y)
    assert sim_mean[0] == 0.0


# -- the image grid ----------------------------------------------------------------------------------


def pixel_groups(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(SVG + "g") if g.get("class") == "image"]


def test_image_grid_draws_one_rect_per_pixel(result: InversionResult) -> None:
    svg = image_grid_svg(result.images, labels=[f"class {c}" for c in result.classes], title="Inversion")
    root = ET.fromstring(svg)
    assert svg.startswith('<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg"')
    groups = pixel_groups(root)
    assert len(groups) == 10
    assert sum(len(g.findall(SVG + "rect")) for g in groups) == 10 * 8 * 8
    assert root.find(SVG + "title").text == "Inversion"
    assert [t.text for t in root.iter(SVG + "text") if t.get("class") == "label"][3] == "class 3"
    # Grey levels: pixel (0, 2, 5) of image 4.
    level = round(float(result.images[4, 0, 2, 5]) * 255)
    (rect,) = [r for r in groups[4].findall(SVG + "rect") if (r.get("x"), r.get("y")) == ("5", "2")]
    assert rect.get("fill") == f"#{level:02x}{level:02x}{level:02x}"
    for element in root.iter():
        assert element.tag not in (SVG + "script", SVG + "image", SVG + "foreignObject")
        assert not any("href" in name or name.startswith("on") for name in element.attrib)
    assert svg == image_grid_svg(
        result.images, labels=[f"class {c}" for c in result.classes], title="Inversion"
    )


def test_image_grid_colours_wraps_rows_and_escapes_labels() -> None:
    rgb = np.zeros((12, 3, 2, 3))
    rgb[0, :, 1, 2] = [1.0, 0.5, 0.0]
    labels = [f"<b>&{i}</b>" for i in range(12)]
    svg = image_grid_svg(rgb, labels=labels, cell=30)
    root = ET.fromstring(svg)
    groups = pixel_groups(root)
    assert sum(len(g.findall(SVG + "rect")) for g in groups) == 12 * 2 * 3
    (rect,) = [r for r in groups[0].findall(SVG + "rect") if (r.get("x"), r.get("y")) == ("2", "1")]
    assert rect.get("fill") == "#ff8000"
    assert "<b>" not in svg
    assert "&lt;b&gt;&amp;0&lt;/b&gt;" in svg
    assert next(t.text for t in root.iter(SVG + "text")) == "<b>&0</b>"
    rows = {g.get("transform", "").split()[1] for g in groups}
    assert len(rows) == 2  # ten per row, then a second row


@pytest.mark.parametrize(
    ("images", "options", "name"),
    [
        (np.zeros((2, 2, 4, 4)), {}, "images"),
        (np.zeros((4, 4)), {}, "images"),
        (np.zeros((0, 4, 4)), {}, "images"),
        (np.full((1, 4, 4), 1.5), {}, "images"),
        (np.full((1, 4, 4), np.nan), {}, "images"),
        (np.zeros((2, 4, 4)), {"labels": ["one"]}, "labels"),
        (np.zeros((2, 4, 4)), {"cell": 4}, "cell"),
    ],
)
def test_image_grid_validates(images, options, name) -> None:
    with pytest.raises(InvalidParameterError, match=f"The '{name}' parameter of image_grid_svg"):
        image_grid_svg(images, **options)
