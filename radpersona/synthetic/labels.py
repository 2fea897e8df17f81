"""Labels of a synthetic case: ACL tear, meniscal tear, abnormal, and the "other" findings.

``acl ~ Bernoulli(p_acl)``, ``men ~ Bernoulli(p_men)``; ``abn = 1`` if either, otherwise
``abn ~ Bernoulli(q)`` with ``q = (p_abn - p_tear) / (1 - p_tear)`` and ``p_tear = 1 - (1 - p_acl)
(1 - p_men)``, so that ``P(abn) = p_abn``. An abnormal case without tears gets at least one of the
other findings (effusion, bone bruise, cartilage defect); a case with a tear gets other findings with
the same probability ``q``, which makes their presence independent of the ACL and meniscus labels (a
whole-volume intensity model can find effusion, but that says nothing about the ACL or menisci).

Prevalences are checked by the settings (``synthetic.prevalence``: each in [0, 1] and
``abn >= P(acl or men)``), not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

DEFAULT_PREVALENCE: Mapping[str, float] = MappingProxyType({"abn": 0.808, "acl": 0.184, "men": 0.351})
"""MRNet's training-set prevalences."""

OTHER_FINDINGS: tuple[str, ...] = ("effusion", "bone_bruise", "cartilage_defect")
"""Findings that make a case abnormal without an ACL or meniscal tear."""


@dataclass(frozen=True)
class CaseLabels:
    """Labels of one case and the "other" findings (effusion, bone bruise, cartilage defect)."""

    abn: int
    acl: int
    men: int
    other: tuple[str, ...] = field(default_factory=tuple)


def _as_floats(prevalence: Mapping[str, float]) -> dict[str, float]:
    return {key: float(prevalence[key]) for key in ("abn", "acl", "men")}


def other_finding_probability(prevalence: Mapping[str, float]) -> float:
    """``q = P(abn | no tear) = (p_abn - p_tear) / (1 - p_tear)``; also the probability of "other" findings with a tear.

    ``q = p_abn`` when ``p_tear = 1``; clipped to [0, 1].
    """
    p = _as_floats(prevalence)
    p_tear = 1.0 - (1.0 - p["acl"]) * (1.0 - p["men"])
    if p_tear >= 1.0:
        return p["abn"]
    return float(min(1.0, max(0.0, (p["abn"] - p_tear) / (1.0 - p_tear))))


def draw_labels(rng: np.random.Generator, prevalence: Mapping[str, float] = DEFAULT_PREVALENCE) -> CaseLabels:
    """Draw one case's labels and other findings.

    ``acl ~ B(p_acl)``, ``men ~ B(p_men)``, ``abn = 1`` for a tear, else ``abn ~ B(q)`` with
    ``q = P(abn | no tear)``; "other" findings are present with probability ``q`` whatever the tear
    status (always for an abnormal case without a tear), each of effusion, bone bruise and cartilage
    defect with probability 1/2, redrawn until at least one.
    """
    p = _as_floats(prevalence)
    q = other_finding_probability(p)
    acl = int(rng.random() < p["acl"])
    men = int(rng.random() < p["men"])
    u_abn = rng.random()
    u_other = rng.random()
    if acl or men:
        abn = 1
        has_other = u_other < q
    else:
        abn = int(u_abn < q)
        has_other = bool(abn)
    other: tuple[str, ...] = ()
    if has_other:
        while not other:
            other = tuple(name for name in OTHER_FINDINGS if rng.random() < 0.5)
    return CaseLabels(abn=abn, acl=acl, men=men, other=other)
