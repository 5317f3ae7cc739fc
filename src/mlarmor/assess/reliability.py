"""Reliability checks: signs that an evasion evaluation is weak, reported as findings.

A high robust accuracy means "these attacks failed", not "the model is robust". The usual reasons an
attack fails without the model being robust (Carlini et al., "On Evaluating Adversarial Robustness",
2019; Athalye et al., "Obfuscated Gradients Give a False Sense of Security", ICML 2018) are cheap to
detect, and :func:`check_reliability` looks for them on at most 256 samples:

=====================================  ====================================================  ========
id (``evasion.reliability.*``)          what it measures                                      severity
=====================================  ====================================================  ========
``probability-outputs``                a white-box model returns probabilities, not logits   medium
``nondeterministic``                   the same inputs twice give different outputs          medium
``zero-gradients``                     > 10% of samples have an all-zero input gradient      medium
``nan-gradients``                      any sample has a non-finite input gradient            high
``no-accuracy-drop-at-large-eps``      PGD at L∞ ε = half the input range leaves > 10%       medium
``black-box-beats-white-box``          Square beats the white-box attack by > 2 points       medium
=====================================  ====================================================  ========

Gradient checks and PGD need a :class:`~mlarmor.targets.Differentiable` target; the black-box
comparison needs an ``assessment`` from a white-box attack and a target with scores.

Example:
    >>> from mlarmor.assess import check_reliability
    >>> findings = check_reliability(target, x, y)  # doctest: +SKIP
    >>> [f.id for f in findings]  # doctest: +SKIP
    ['evasion.reliability.probability-outputs']
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from mlarmor._progress import Progress, silent
from mlarmor._validation import check_int, check_seed
from mlarmor.attacks import PGD, Square
from mlarmor.errors import invalid_parameter
from mlarmor.findings import Finding, Location, Severity
from mlarmor.risk.catalogue import RELIABILITY
from mlarmor.targets import Differentiable, Target, looks_like_probabilities

if TYPE_CHECKING:
    from mlarmor.assess.evasion import EvasionAssessment

__all__ = ["check_reliability"]

_OWNER = "check_reliability"
_MAX_SAMPLES = 256
_ATTACK_SAMPLES = 100
_DIFF_ATOL = 1e-6
_ZERO_GRAD_SHARE = 0.10
_LARGE_EPS_MAX_ACCURACY = 0.10
_BLACK_BOX_MARGIN_POINTS = 2.0
_PGD_STEPS = 20
_SQUARE_QUERIES = 1000
_STEP = "reliability checks"


def check_reliability(
    target: Target,
    x: np.ndarray,
    y: np.ndarray,
    *,
    assessment: EvasionAssessment | None = None,
    seed: int = 0,
    batch_size: int = 256,
    progress: Progress | None = None,
) -> list[Finding]:
    """Run the reliability checks on ``target`` with samples ``x``, ``y``; return what they flag.

    Each check costs a few batched model calls on at most 256 samples (drawn with ``seed``); the two
    attack-based checks (PGD with 20 steps, Square with 1000 queries) use at most 100.

    Args:
        target: The model adapter the evaluation attacked.
        x: Inputs ``(n, *input_shape)`` within ``target.bounds`` (the attacked samples).
        y: True labels ``(n,)``.
        assessment: The evaluation to cross-check; when it comes from a white-box attack, Square
            is run at its ``budget_eps`` and ``norm``. Pass it with the ``x``, ``y`` it attacked
            for a per-sample comparison.
        seed: Seed of the sample draw and of the attacks.
        batch_size: Samples per model call.
        progress: Receives ``("reliability checks", done, total, name of the check)`` before each
            check and once at the end (see :mod:`mlarmor._progress`).

    Returns:
        The findings, empty when no check fires.

    Raises:
        InvalidParameterError: If ``x`` and ``y`` do not have the same number of samples, or
            ``seed`` / ``batch_size`` are invalid.
    """
    xs, ys = np.asarray(x), np.asarray(y)
    if xs.ndim < 1 or ys.ndim != 1 or xs.shape[0] != ys.shape[0] or ys.shape[0] == 0:
        raise invalid_parameter(
            "y", _OWNER, f"labels (n,) matching x with n > 0 (x has {xs.shape})", ys.shape
        )
    seed = check_seed(seed, _OWNER)
    batch_size = check_int(batch_size, "batch_size", _OWNER)
    order = np.random.default_rng(seed).permutation(ys.shape[0])[:_MAX_SAMPLES]
    xs, ys = xs[order], ys[order]
    where = Location(path=target.name)
    checks: list[tuple[str, Callable[[], list[Finding]]]] = []
    if isinstance(target, Differentiable) and "gradients" in target.capabilities:
        checks += [
            (f"outputs of {len(ys)} samples, twice", partial(_outputs_twice, target, xs, batch_size, where)),
            ("input gradients", partial(_gradient_checks, target, xs, ys, batch_size, where)),
            (f"PGD at half the input range, {_PGD_STEPS} steps",
             partial(_large_eps, target, xs, ys, seed, batch_size, where)),
        ]  # fmt: skip
    else:
        kind = "scores" if "scores" in target.capabilities else "labels"
        outputs = (
            (lambda: _predict_proba(target, xs))
            if kind == "scores"
            else (lambda: target.predict(xs).astype(np.float64))
        )
        checks.append(
            (
                f"{kind} of {len(ys)} samples, twice",
                lambda: _nondeterministic(outputs(), outputs(), kind, where),
            )
        )
    if assessment is not None and assessment.capability == "gradients" and "scores" in target.capabilities:
        checks.append(
            (f"black-box Square, {_SQUARE_QUERIES} queries",
             partial(_black_box, target, np.asarray(x), np.asarray(y), assessment, seed, batch_size, where))
        )  # fmt: skip
    report = progress or silent
    findings: list[Finding] = []
    for done, (label, check) in enumerate(checks):
        report(_STEP, done, len(checks), label)
        findings.extend(check())
    report(_STEP, len(checks), len(checks))
    return findings


def _outputs_twice(target: Differentiable, x: np.ndarray, batch_size: int, where: Location) -> list[Finding]:
    first = _raw_outputs(target, x, batch_size)
    found = _probability_outputs(target, first, where)
    return found + _nondeterministic(first, _raw_outputs(target, x, batch_size), "logits", where)


def _finding(
    name: str,
    title: str,
    severity: Severity,
    description: str,
    evidence: dict[str, Any],
    mitigations: list[str],
    where: Location,
) -> Finding:
    return RELIABILITY.finding(
        variant=name,
        title=title,
        severity=severity,
        description=description,
        evidence=evidence,
        location=where,
        mitigations=mitigations,
    )


def _tensor(target: Differentiable, x: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(x)).to(target.device)


def _raw_outputs(target: Differentiable, x: np.ndarray, batch_size: int) -> np.ndarray:
    with torch.no_grad():
        chunks = [
            target.logits(_tensor(target, x[i : i + batch_size])).double().cpu().numpy()
            for i in range(0, x.shape[0], batch_size)
        ]
    return np.concatenate(chunks)


def _predict_proba(target: Target, x: np.ndarray) -> np.ndarray:
    return np.asarray(target.predict_proba(x), dtype=np.float64)


def _probability_outputs(target: Differentiable, outputs: np.ndarray, where: Location) -> list[Finding]:
    declared = getattr(target, "outputs_probabilities", None) is True
    if not (declared or looks_like_probabilities(outputs)):
        return []
    return [
        _finding(
            "probability-outputs",
            "The white-box model returns probabilities where logits are expected",
            Severity.MEDIUM,
            "Gradient attacks apply softmax and cross-entropy to the model's outputs. On outputs that are "
            "already probabilities the loss is nearly flat (softmax of values in [0, 1]) and its gradient "
            "almost vanishes, so white-box attacks are much weaker than they should be and the robust "
            "accuracy overstates robustness.",
            {
                "declared_probabilities": declared,
                "min_output": float(np.min(outputs)),
                "max_row_sum_error": float(np.max(np.abs(outputs.sum(axis=1) - 1.0))),
                "n_samples": int(outputs.shape[0]),
            },
            [
                "Expose the logits: remove the final softmax from the model (or wrap it to return the "
                "pre-softmax scores) and assess again.",
                "If only probabilities are available, attack log-probabilities or use the margin loss "
                "(PGD loss='margin'), and confirm with a black-box attack (square).",
            ],
            where,
        )
    ]


def _nondeterministic(first: np.ndarray, second: np.ndarray, kind: str, where: Location) -> list[Finding]:
    diff = float(np.max(np.abs(first - second))) if first.size else 0.0
    labels_first = first.argmax(axis=1) if first.ndim == 2 else first
    labels_second = second.argmax(axis=1) if second.ndim == 2 else second
    changed = int(np.sum(labels_first != labels_second))
    if not (diff > _DIFF_ATOL or changed > 0 or not np.isfinite(diff)):
        return []
    return [
        _finding(
            "nondeterministic",
            f"The model's {kind} change between identical calls (max difference {diff:.3g}, "
            f"{changed} labels changed)",
            Severity.MEDIUM,
            "The same inputs sent twice gave different outputs: the model or its serving path is "
            "randomized (dropout left in training mode, input noise, random transformations). "
            "Randomness makes single-sample gradients and scores noisy, so attacks look weaker than "
            "they are against an attacker who averages over it.",
            {
                "output": kind,
                "max_abs_difference": diff,
                "labels_changed": changed,
                "n_samples": int(first.shape[0]),
            },
            [
                "If the randomness is not meant as a defense, make inference deterministic (call "
                "model.eval(), remove test-time noise) and assess again.",
                "If it is a defense, attack it with Expectation over Transformation (average gradients "
                "over many calls) and more restarts, and confirm with a black-box attack (square).",
            ],
            where,
        )
    ]


def _gradient_checks(
    target: Differentiable, x: np.ndarray, y: np.ndarray, batch_size: int, where: Location
) -> list[Finding]:
    zero = np.zeros(x.shape[0], dtype=bool)
    nonfinite = np.zeros(x.shape[0], dtype=bool)
    for i in range(0, x.shape[0], batch_size):
        xt = _tensor(target, x[i : i + batch_size]).requires_grad_(True)
        yt = torch.as_tensor(y[i : i + batch_size], dtype=torch.int64, device=target.device)
        loss = F.cross_entropy(target.logits(xt), yt, reduction="sum")
        if loss.requires_grad:
            (grad,) = torch.autograd.grad(loss, xt, allow_unused=True)
        else:
            grad = None  # the outputs do not depend on the input through autograd at all
        flat = torch.zeros_like(xt).flatten(1) if grad is None else grad.detach().flatten(1)
        nonfinite[i : i + batch_size] = (~torch.isfinite(flat).all(dim=1)).cpu().numpy()
        zero[i : i + batch_size] = (flat == 0).all(dim=1).cpu().numpy()
    n = int(x.shape[0])
    findings: list[Finding] = []
    if nonfinite.any():
        share = float(nonfinite.mean())
        findings.append(
            _finding(
                "nan-gradients",
                f"The input gradient of the loss is NaN or infinite for {share:.1%} of the samples",
                Severity.HIGH,
                "Gradient attacks cannot step along a non-finite gradient, so they stall on these "
                "samples and the robust accuracy is not a measurement of robustness. Common causes: "
                "log of zero, division by zero, or a non-differentiable operation in the forward pass.",
                {"nonfinite_share": share, "nonfinite_samples": int(nonfinite.sum()), "n_samples": n},
                [
                    "Fix the numerics of the forward pass (e.g. log_softmax instead of log(softmax), "
                    "clamp before log or division) and assess again.",
                    "Confirm the robust accuracy with a black-box attack (square), which needs no gradients.",
                ],
                where,
            )
        )
    share = float(zero.mean())
    if share > _ZERO_GRAD_SHARE:
        findings.append(
            _finding(
                "zero-gradients",
                f"The input gradient of the loss is exactly zero for {share:.1%} of the samples",
                Severity.MEDIUM,
                "An all-zero gradient gives gradient attacks no direction to follow. This is gradient "
                "masking — non-differentiable steps such as quantisation or rounding, thresholding, "
                "saturated activations — and makes a model look robust to white-box attacks without "
                "being robust.",
                {
                    "zero_gradient_share": share,
                    "zero_gradient_samples": int(zero.sum()),
                    "threshold_share": _ZERO_GRAD_SHARE,
                    "n_samples": n,
                },
                [
                    "Attack a differentiable approximation of the non-differentiable step (BPDA: use the "
                    "identity or a smooth surrogate in the backward pass).",
                    "Confirm the robust accuracy with black-box attacks (square, hopskipjump) and a "
                    "transfer attack from a differentiable surrogate.",
                ],
                where,
            )
        )
    return findings


def _large_eps(
    target: Differentiable, x: np.ndarray, y: np.ndarray, seed: int, batch_size: int, where: Location
) -> list[Finding]:
    low, high = target.bounds
    eps = (high - low) / 2.0
    n = min(_ATTACK_SAMPLES, int(x.shape[0]))
    # From the clean input (no random start), so that only the gradient signal is measured.
    attack = PGD(norm="linf", steps=_PGD_STEPS, random_start=False, seed=seed, batch_size=batch_size)
    result = attack(target, x[:n], y[:n], eps=eps)
    robust = float(result.robust_accuracy)
    if robust <= _LARGE_EPS_MAX_ACCURACY:
        return []
    return [
        _finding(
            "no-accuracy-drop-at-large-eps",
            f"PGD leaves {robust:.1%} accuracy at L∞ ε={eps:g}, half the input range",
            Severity.MEDIUM,
            "At a budget of half the input range an attacker can move every input to the middle of the "
            "range, so a working gradient attack drives accuracy close to zero. An accuracy that stays "
            "high means the attack is not working on this model (gradient masking or obfuscation), and "
            "robust accuracies at smaller budgets are not trustworthy.",
            {
                "eps": eps,
                "norm": "linf",
                "steps": _PGD_STEPS,
                "clean_accuracy": float(result.clean_accuracy),
                "robust_accuracy": robust,
                "threshold_accuracy": _LARGE_EPS_MAX_ACCURACY,
                "n_samples": n,
            },
            [
                "Find out why the gradient attack fails (see the gradient and determinism checks) and "
                "adapt it: BPDA for non-differentiable steps, EOT for randomness, the margin loss for "
                "saturated outputs.",
                "Confirm the robust accuracy with black-box attacks (square, hopskipjump).",
            ],
            where,
        )
    ]


def _black_box(
    target: Target,
    x: np.ndarray,
    y: np.ndarray,
    assessment: EvasionAssessment,
    seed: int,
    batch_size: int,
    where: Location,
) -> list[Finding]:
    reference = assessment.result_at(assessment.budget_eps)
    # With the samples the assessment attacked, compare on the same ones; otherwise overall.
    aligned = reference.n_samples == y.shape[0] and np.array_equal(reference.y, y)
    idx = np.random.default_rng(seed).permutation(y.shape[0])[:_ATTACK_SAMPLES]
    white = (
        float(np.mean(reference.y_pred_adv[idx] == reference.y[idx]))
        if aligned
        else float(reference.robust_accuracy)
    )
    square = Square(norm=assessment.norm, n_queries=_SQUARE_QUERIES, seed=seed, batch_size=batch_size)
    result = square(target, x[idx], y[idx], eps=assessment.budget_eps)
    black = float(result.robust_accuracy)
    gap = 100.0 * (white - black)
    if gap <= _BLACK_BOX_MARGIN_POINTS:
        return []
    norm = "L∞" if assessment.norm == "linf" else "L2"
    return [
        _finding(
            "black-box-beats-white-box",
            f"Black-box Square lowers accuracy to {black:.1%} where white-box {assessment.attack} "
            f"left {white:.1%} ({norm} ε={assessment.budget_eps:g})",
            Severity.MEDIUM,
            "A black-box attack, which sees only scores, should not beat an attack that sees the "
            "gradients. When it does, the white-box attack is failing on this model (gradient masking, "
            "obfuscation or randomness) and the reported robust accuracy is too high.",
            {
                "white_box_attack": assessment.attack,
                "white_box_robust_accuracy": white,
                "square_robust_accuracy": black,
                "gap_points": round(gap, 4),
                "norm": assessment.norm,
                "eps": assessment.budget_eps,
                "n_queries": _SQUARE_QUERIES,
                "n_samples": int(idx.shape[0]),
                "same_samples": aligned,
            },
            [
                "Report the lower robust accuracy (take the minimum over attacks per sample) and "
                "re-run with attack=square at a larger n_queries.",
                "Find out why the gradient attack fails (see the other reliability checks) and adapt it "
                "(BPDA, EOT, margin loss).",
            ],
            where,
        )
    ]
