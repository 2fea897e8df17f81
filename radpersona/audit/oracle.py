"""The oracle ceiling of patch radiomics: the best single feature of the patch that holds the lesion.

Definition (non-circular, so that "the proposed model reaches >= 0.9 of the ceiling" is fair):

1. **The lesion patch of a view** is the *modal main patch of the training positives*: for each
   training case with the lesion, the patch of the ``n x n x n`` grid holding the largest share of
   its lesion in that view (:func:`radpersona.audit.lesion.box_share`); the most frequent of these
   (ties: first in ``(i, j, k)`` order). Only training truth is used; a model could learn the same
   location from the labels.
2. **Candidates**: every column ``{view}.{image}.p{i}{j}{k}.{family}.{feature}`` of the wide feature
   table at that view's lesion patch, over the views that have one (optionally restricted to some
   image types and families; ``location`` features are constant per column and left out). Missing
   values are replaced by the training mean of the column (the fingerprint's rule); a column without
   any training value is dropped.
3. **Selection on train**: the column with the largest ``|AUC_train - 1/2|``; its orientation
   ``s = sign(AUC_train - 1/2)`` (``+1`` on a tie) is fixed on train.
4. **Ceiling** = AUC on valid of ``s x`` (signed: it can fall below 1/2 if the choice does not
   generalise), with a percentile-bootstrap 95 % CI (:func:`radpersona.evaluation.bootstrap_auc_ci`).

For context the optimistic ceiling is reported as well: ``max(AUC_valid, 1 - AUC_valid)`` of the best
candidate picked *on valid* — an upper bound of what any single patch feature shows on those cases,
biased upwards by the selection (more so with many candidates and few cases).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from radpersona.evaluation import bootstrap_auc_ci

Patch = tuple[int, int, int]

__all__ = ["OracleCeiling", "modal_patch", "oracle_patch_auc", "patch_columns", "single_feature_aucs"]


def single_feature_aucs(values: pd.DataFrame, labels: Sequence[int] | np.ndarray) -> pd.Series:
    """Signed ROC AUC of every column used as a score on its own (higher value = positive).

    ``AUC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)`` with ``R_+`` the sum of the positives' average
    ranks (the Mann-Whitney statistic; ties count one half). A constant column gives 1/2.
    ``1 - AUC`` is the AUC of the negated column.

    Raises:
        ValueError: labels not 0/1, a single class, a length mismatch, or non-finite values (names
            the first offending column).
    """
    y = np.asarray(labels)
    if len(y) != len(values):
        raise ValueError(f"{len(y)} labels for {len(values)} rows")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels must be 0 or 1, got {sorted(set(np.asarray(y).tolist()))}")
    pos = y == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes ({n_pos} positives, {n_neg} negatives)")
    x = values.to_numpy(dtype=np.float64)
    finite = np.isfinite(x).all(axis=0)
    if not finite.all():
        raise ValueError(f"column {values.columns[int(np.argmin(finite))]!r} has missing or infinite values")
    ranks = rankdata(x, axis=0)
    auc = (ranks[pos].sum(axis=0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return pd.Series(auc, index=values.columns, name="auc")


def patch_columns(
    columns: Iterable[str],
    *,
    view: str,
    patch: Patch,
    images: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
) -> list[str]:
    """Wide-table columns ``{view}.{image}.p{i}{j}{k}.{family}.{feature}`` of one view and patch.

    ``images`` / ``families``: keep only these (``None``: all); ``location`` is always left out.
    """
    token = "p" + "".join(str(int(c)) for c in patch)
    out = []
    for col in columns:
        parts = str(col).split(".", 4)
        if len(parts) != 5:
            continue
        v, image, p, family, _ = parts
        if v != view or p != token or family == "location":
            continue
        if images is not None and image not in images:
            continue
        if families is not None and family not in families:
            continue
        out.append(str(col))
    return out


def modal_patch(patches: Iterable[Patch | None]) -> Patch | None:
    """Most frequent patch (``None`` entries ignored); ties go to the first in ``(i, j, k)`` order."""
    counts = Counter(tuple(int(c) for c in p) for p in patches if p is not None)
    if not counts:
        return None
    best = max(counts.values())
    return min(p for p, c in counts.items() if c == best)  # type: ignore[return-value]


@dataclass(frozen=True)
class OracleCeiling:
    """The oracle ceiling of patch radiomics for one task (see the module docstring).

    Attributes:
        lesion_patches: the lesion patch per view (modal main patch of the training positives).
        n_candidates: candidate columns.
        feature: the column selected on train; ``sign`` its orientation (+1 or -1).
        auc_train: its oriented training AUC (>= 1/2).
        auc_valid, ci_low, ci_high: its oriented validation AUC and bootstrap 95 % CI (the ceiling).
        optimistic_feature, optimistic_auc_valid: the best candidate picked on valid and its
            ``max(AUC, 1 - AUC)``.
        n_train, n_train_pos, n_valid, n_valid_pos: cases and positives.
    """

    lesion_patches: dict[str, Patch]
    n_candidates: int
    feature: str
    sign: int
    auc_train: float
    auc_valid: float
    ci_low: float
    ci_high: float
    optimistic_feature: str
    optimistic_auc_valid: float
    n_train: int
    n_train_pos: int
    n_valid: int
    n_valid_pos: int


def oracle_patch_auc(
    table: pd.DataFrame,
    labels: pd.Series,
    train: pd.Series,
    main_patches: Mapping[str, Mapping[str, Patch | None]],
    *,
    images: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> OracleCeiling:
    """Best single-feature AUC of the lesion patch: selected on train, measured on valid.

    Args:
        table: wide feature table, index ``case``.
        labels: the task's 0/1 label per case (index ``case``; cases of ``table`` only).
        train: True for training cases, False for validation cases (index ``case``).
        main_patches: ``main_patches[case][view]``, the main lesion patch of each *training positive*
            in each view (``None`` where the view shows none); other cases are ignored.
        images, families: restrict the candidates (``None``: all).
        n_boot, seed: bootstrap resamples and seed of the CI.

    Raises:
        ValueError: a split without both classes, no training positive with a lesion patch, or no
            candidate column (each message says which).
    """
    cases = table.index
    y = labels.reindex(cases)
    is_train = train.reindex(cases)
    if y.isna().any() or is_train.isna().any():
        missing = list(cases[(y.isna() | is_train.isna()).to_numpy()])[:5]
        raise ValueError(f"labels or split missing for cases {missing}")
    y_arr, tr = y.to_numpy(dtype=int), is_train.to_numpy(dtype=bool)
    for name, sel in (("train", tr), ("valid", ~tr)):
        if len(np.unique(y_arr[sel])) < 2:
            raise ValueError(f"the {name} split needs positives and negatives (labels {np.unique(y_arr[sel])})")
    train_pos = set(cases[tr & (y_arr == 1)])
    views = sorted({v for c, per in main_patches.items() if c in train_pos for v in per})
    lesion_patches: dict[str, Patch] = {}
    for view in views:
        modal = modal_patch(main_patches[c].get(view) for c in train_pos if c in main_patches)
        if modal is not None:
            lesion_patches[view] = modal
    if not lesion_patches:
        raise ValueError("no training positive has a lesion patch in any view")
    candidates = [
        col
        for view, patch in lesion_patches.items()
        for col in patch_columns(table.columns, view=view, patch=patch, images=images, families=families)
    ]
    x = table[candidates]
    means = x[tr].mean(axis=0)
    keep = [c for c in candidates if np.isfinite(means[c])]
    if not keep:
        raise ValueError(f"no candidate column with training values at lesion patches {lesion_patches}")
    x = x[keep].fillna(means[keep])
    auc_tr = single_feature_aucs(x[tr], y_arr[tr])
    strength = (auc_tr - 0.5).abs()
    feature = str(strength.idxmax())  # first maximum in column order
    sign = 1 if auc_tr[feature] >= 0.5 else -1
    score_valid = sign * x.loc[~tr, feature].to_numpy()
    y_valid = y_arr[~tr]
    auc_valid = float(single_feature_aucs(pd.DataFrame({feature: score_valid}), y_valid).iloc[0])
    lo, hi = bootstrap_auc_ci(y_valid, score_valid, n_boot=n_boot, seed=seed)
    auc_va = single_feature_aucs(x[~tr], y_valid)
    best_va = np.maximum(auc_va, 1 - auc_va)
    opt = str(best_va.idxmax())
    return OracleCeiling(
        lesion_patches=lesion_patches,
        n_candidates=len(keep),
        feature=feature,
        sign=sign,
        auc_train=float(max(auc_tr[feature], 1 - auc_tr[feature])),
        auc_valid=auc_valid,
        ci_low=lo,
        ci_high=hi,
        optimistic_feature=opt,
        optimistic_auc_valid=float(best_va[opt]),
        n_train=int(tr.sum()),
        n_train_pos=int((y_arr[tr] == 1).sum()),
        n_valid=int((~tr).sum()),
        n_valid_pos=int((y_valid == 1).sum()),
    )
