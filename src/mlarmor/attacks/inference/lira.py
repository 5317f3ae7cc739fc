"""The likelihood-ratio attack, LiRA, online or offline (``"lira"``)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from mlarmor.attacks.inference.membership import MembershipAttack, MembershipEvidence, _pooled
from mlarmor.attacks.inference.signals import logit_confidence
from mlarmor.attacks.registry import register

__all__ = ["GLOBAL_VARIANCE_BELOW", "LiRA"]

# Below this many reference models (IN and OUT together) LiRA's per-example variance is too noisy and
# a variance pooled over all examples does better (Carlini et al. 2022, whose code and LeakPro switch
# at 32 IN + 32 OUT models).
GLOBAL_VARIANCE_BELOW = 64
_MIN_STD = 1e-6


@register("lira")
@dataclass(frozen=True)
class LiRA(MembershipAttack):
    """The likelihood-ratio attack: is the target's confidence on ``x`` typical of models trained on it?

    For each example the logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` of the reference
    models that trained on it (IN) and of those that did not (OUT) are each fitted with a Gaussian
    (median and standard deviation, as in the authors' code). **Online**: the score is the log
    likelihood ratio ``log N(phi; IN) - log N(phi; OUT)`` of the target's ``phi``. **Offline** (OUT
    models only, which can be trained once for many targets): the one-sided test
    ``(phi - mu_out) / sigma_out`` (monotone in the paper's ``Pr[Z < phi]``). With few reference
    models one variance pooled over all examples (``global_variance``) beats per-example variances;
    the default switches at 64 models.

    Reference:
        Carlini, Chien, Nasr, Song, Terzis and Tramèr, "Membership Inference Attacks From First
        Principles", IEEE S&P 2022. https://arxiv.org/abs/2112.03570

    Threat model:
        Membership inference (MITRE ATLAS AML.T0024.000, OWASP ML04) by an attacker who can train
        models like the target (its recipe, data from the same distribution) and sees its scores.

    Attributes:
        online: Use the IN models too (needs at least one IN and one OUT model per example).
        global_variance: Pool the variance over examples; ``None`` chooses by the number of models.
        augment: Use the augmented queries when the evidence has them (``audit_membership(...,
            augmentations=k)``): one Gaussian test per query, averaged.
    """

    min_reference: ClassVar[int] = 2

    online: bool = True
    global_variance: bool | None = None
    augment: bool = True

    @property
    def label(self) -> str:  # noqa: D102 - documented on the base class
        return f"lira-{'online' if self.online else 'offline'}"

    def _score(self, evidence: MembershipEvidence) -> np.ndarray:
        y, logits = evidence.y, evidence.logits
        targets = [evidence.target]
        references = [evidence.reference]
        if self.augment and evidence.target_views is not None and evidence.reference_views is not None:
            targets += list(evidence.target_views)
            references += [evidence.reference_views[:, a] for a in range(evidence.reference_views.shape[1])]
        scores = [
            self._score_view(
                logit_confidence(t, y, logits=logits),
                np.stack([logit_confidence(o, y, logits=logits) for o in ref]),
                evidence.keep,
            )
            for t, ref in zip(targets, references, strict=True)
        ]
        # The authors' code averages the per-query statistics, treating the queries as independent.
        out: np.ndarray = np.mean(scores, axis=0)
        return out

    def _score_view(self, phi_target: np.ndarray, phi: np.ndarray, keep: np.ndarray) -> np.ndarray:
        pooled = (
            phi.shape[0] < GLOBAL_VARIANCE_BELOW if self.global_variance is None else self.global_variance
        )
        out = _pooled(phi, ~keep)
        mu_out = np.nanmedian(out, axis=0)
        sd_out = _spread(out, mu_out, pooled)
        if not self.online:
            z: np.ndarray = (phi_target - mu_out) / sd_out
            return z
        inside = _pooled(phi, keep)
        mu_in = np.nanmedian(inside, axis=0)
        sd_in = _spread(inside, mu_in, pooled)
        ratio: np.ndarray = _log_normal(phi_target, mu_in, sd_in) - _log_normal(phi_target, mu_out, sd_out)
        return ratio


def _spread(values: np.ndarray, centre: np.ndarray, pooled: bool) -> np.ndarray:
    """Per-example standard deviation around ``centre``, or one pooled over all examples."""
    residual = values - centre
    if pooled:
        common = float(np.sqrt(np.nanmean(residual**2)))
        return np.full(values.shape[1], max(common, _MIN_STD))
    count = np.sum(~np.isnan(values), axis=0)
    var = np.nansum(residual**2, axis=0) / np.maximum(count - 1, 1)
    sd: np.ndarray = np.maximum(np.sqrt(var), _MIN_STD)
    return sd


def _log_normal(x: np.ndarray, mu: np.ndarray, sd: np.ndarray) -> np.ndarray:
    out: np.ndarray = -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * math.log(2 * math.pi)
    return out
