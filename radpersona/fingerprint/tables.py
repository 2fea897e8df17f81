"""Feature columns, per-case fingerprints and the population table (docs/architecture.md).

Wide-table columns are named ``{view}.{image}.p{i}{j}{k}.{family}.{feature}``; the fingerprint of
a case lists its selected features (``z_n = 1``) with their contribution ``beta_n z_n r_n`` to the
hard-selection logit (Eq. 10), so that ``intercept + sum(contribution) == logit``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from radpersona.errors import ConfigError, InputDataError
from radpersona.vocabulary import IMAGE_KINDS, LOCATION_FAMILY, RADIOMIC_FAMILIES, REPRESENTATION_IMAGES, Representation

if TYPE_CHECKING:
    from radpersona.fingerprint.trained import TrainedFingerprint

_COLUMN = re.compile(
    r"^(?P<view>[^.]+)\.(?P<image>[^.]+)\.p(?P<i>\d)(?P<j>\d)(?P<k>\d)\.(?P<family>[^.]+)\.(?P<name>.+)$"
)


class FeatureKey(NamedTuple):
    """The identity of a wide-table column."""

    view: str
    image: str
    i: int
    j: int
    k: int
    family: str
    name: str


def parse_feature_name(column: str) -> FeatureKey:
    """Split ``{view}.{image}.p{i}{j}{k}.{family}.{feature}`` into its parts.

    Raises:
        InputDataError: the name does not follow the pattern or the image is not one of
            ``original | persona | residual``.
    """
    match = _COLUMN.match(column)
    if match is None:
        raise InputDataError("feature column is not '{view}.{image}.p{i}{j}{k}.{family}.{feature}'", value=column)
    if match["image"] not in IMAGE_KINDS:
        raise InputDataError(f"feature column has image {match['image']!r}, not one of {IMAGE_KINDS}", value=column)
    return FeatureKey(
        view=match["view"],
        image=match["image"],
        i=int(match["i"]),
        j=int(match["j"]),
        k=int(match["k"]),
        family=match["family"],
        name=match["name"],
    )


def select_columns(columns: Sequence[str], representation: str, families: Sequence[str] | None = None) -> list[str]:
    """Wide-table columns that form ``r`` for ``representation``, in their original order.

    Args:
        columns: wide-table column names (the ``case`` index excluded).
        representation: ``path_persona`` (original + persona), ``residual`` or ``original``.
        families: radiomic families to keep (``fingerprint.families``; the ``location`` indices are
            always kept); ``None`` keeps every family of the table (the "all RF" rows of table 8).

    Raises:
        ConfigError: unknown representation, or a family that is not a radiomic family.
        InputDataError: a column name is malformed, a requested family has no column, or nothing
            is selected.
    """
    try:
        rep = Representation(representation)
    except ValueError:
        raise ConfigError(
            f"fingerprint.representation must be one of {[r.value for r in Representation]}, not {representation!r}"
        ) from None
    keep = REPRESENTATION_IMAGES[rep.value]
    selected = [c for c in columns if parse_feature_name(c).image in keep]
    if families is not None:
        unknown = [f for f in families if f not in RADIOMIC_FAMILIES]
        if unknown:
            raise ConfigError(f"fingerprint.families: {unknown} not among {list(RADIOMIC_FAMILIES)}")
        present = {parse_feature_name(c).family for c in selected}
        absent = [f for f in families if f not in present]
        if absent:
            raise InputDataError(
                f"fingerprint.families asks for {absent} but the wide table has no such column for representation "
                f"{rep.value!r} (families present: {sorted(present)}); add them to radiomics.families"
            )
        wanted = set(families) | {LOCATION_FAMILY}
        selected = [c for c in selected if parse_feature_name(c).family in wanted]
    if not selected:
        images = sorted({parse_feature_name(c).image for c in columns})
        raise InputDataError(
            f"representation {rep.value!r} selects no column (images present: {images}, {len(columns)} columns)"
        )
    return selected


def _identity_frame(feature_names: Sequence[str]) -> pd.DataFrame:
    keys = [parse_feature_name(c) for c in feature_names]
    frame = pd.DataFrame(keys, columns=list(FeatureKey._fields))
    frame.insert(0, "feature", list(feature_names))
    return frame


FINGERPRINT_COLUMNS: tuple[str, ...] = (
    "case", "task", "feature", "view", "image", "i", "j", "k", "family", "name",
    "u", "z", "beta", "r", "contribution", "rank",
)  # fmt: skip


def fingerprint_table(
    cases: Sequence[str],
    task: str,
    pred: Mapping[str, np.ndarray],
    model: TrainedFingerprint,
    *,
    top_k: int | None = None,
) -> pd.DataFrame:
    """Per-case radiomic fingerprints: one row per case and selected feature (``z == 1``).

    Args:
        cases: case identifiers, in the row order of ``pred``.
        task: task name (e.g. ``acl``), copied into every row.
        pred: output of :meth:`TrainedFingerprint.predict` (needs ``u``, ``z``, ``r``, ``logit``).
        model: the trained model (for ``beta``, ``intercept`` and the feature names).
        top_k: keep only the ``top_k`` selected features of largest ``|contribution|`` per case;
            ``None`` keeps all selected features (then ``intercept + sum(contribution) == logit``).

    Returns:
        Columns :data:`FINGERPRINT_COLUMNS`; ``contribution = beta * z * r``; ``rank`` 1 is the
        largest ``|contribution|`` within the case (ties broken by column order).
    """
    u, z, r = (np.asarray(pred[key], dtype=np.float64) for key in ("u", "z", "r"))
    n_cases, n_features = r.shape
    if len(cases) != n_cases or u.shape != r.shape or z.shape != r.shape:
        raise ValueError(f"fingerprint_table: {len(cases)} cases, u {u.shape}, z {z.shape}, r {r.shape} do not agree")
    if n_features != len(model.feature_names):
        raise ValueError(
            f"fingerprint_table: predictions have {n_features} features, the model {len(model.feature_names)}"
        )
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be >= 1 or None, not {top_k}")
    beta = model.beta
    contribution = beta[None, :] * z * r
    identity = _identity_frame(model.feature_names)
    frames = []
    for row, case in enumerate(cases):
        selected = np.flatnonzero(z[row] > 0)
        order = selected[np.argsort(-np.abs(contribution[row, selected]), kind="stable")]
        if top_k is not None:
            order = order[:top_k]
        frame = identity.iloc[order].reset_index(drop=True)
        frame.insert(0, "task", task)
        frame.insert(0, "case", str(case))
        frame["u"] = u[row, order]
        frame["z"] = z[row, order].astype(np.int64)
        frame["beta"] = beta[order]
        frame["r"] = r[row, order]
        frame["contribution"] = contribution[row, order]
        frame["rank"] = np.arange(1, order.size + 1, dtype=np.int64)
        frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=list(FINGERPRINT_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(FINGERPRINT_COLUMNS)]


def top_share(contribution: np.ndarray, k: int = 10) -> np.ndarray:
    """Per case (row), the share of ``sum_n |contribution_n|`` that its ``k`` largest terms carry.

    ``contribution`` is ``beta * z * r`` ``(n, N)``; a case using at most ``k`` features gets 1, a case
    using none (or whose terms are all 0) NaN.
    """
    magnitude = np.abs(np.asarray(contribution, dtype=np.float64))
    if magnitude.ndim != 2:
        raise ValueError(f"top_share: contributions must be (cases, features), got shape {magnitude.shape}")
    total = magnitude.sum(axis=1)
    k = min(int(k), magnitude.shape[1])
    top = -np.sort(-magnitude, axis=1)[:, :k].sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, top / np.where(total > 0, total, 1.0), np.nan)


def population_table(model: TrainedFingerprint) -> pd.DataFrame:
    """Population-level coefficients: feature identity, ``beta`` and ``rank`` by ``|beta|`` (1 = largest)."""
    frame = _identity_frame(model.feature_names)
    beta = model.beta
    frame["beta"] = beta
    frame["abs_beta"] = np.abs(beta)
    order = np.argsort(-np.abs(beta), kind="stable")
    rank = np.empty(beta.size, dtype=np.int64)
    rank[order] = np.arange(1, beta.size + 1)
    frame["rank"] = rank
    return frame.sort_values("rank", kind="stable").reset_index(drop=True)
