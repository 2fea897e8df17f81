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
3. **Selection on train**: each column gives two oriented candidates, ``x`` and ``-x``; the one
   with the largest training AUC is selected (first in column order on ties; ``+x`` before ``-x``),
   which fixes its orientation ``s`` on train.
4. **Ceiling** = AUC on valid of ``s x`` (signed: it can fall below 1/2 if the choice does not
   generalise), with a percentile-bootstrap 95 % CI (:func:`radpersona.evaluation.bootstrap_auc_ci`).

For context the optimistic ceiling is reported as well: the best validation AUC of any candidate,
i.e. ``max(AUC_valid, 1 - AUC_valid)`` over the columns, picked *on valid* — an upper bound of what
any single patch feature shows on those cases, biased upwards by the selection (more so with many
candidates and few cases).

A lesion whose location varies between cases is split over several patches and a single column
sees only the cases of its patch; ``pooling="max"`` of :func:`oracle_patch_auc` then pools one
feature over all the lesion's usual patches (see there). The ceiling is of *one* feature: a model
combining features may exceed it.
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

__all__ = [
    "OracleCeiling",
    "lesion_patch_sets",
    "modal_patch",
    "oracle_patch_auc",
    "patch_columns",
    "single_feature_aucs",
]


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


def lesion_patch_sets(
    main_patches: Mapping[str, Mapping[str, Patch | None]], cases: Iterable[str], *, min_share: float
) -> dict[str, tuple[Patch, ...]]:
    """Per view, the patches that are the main lesion patch of at least ``min_share`` of ``cases``.

    The share is over the cases with a main patch in that view; sorted by ``(i, j, k)``. Views where
    no case has a main patch are left out.
    """
    out: dict[str, tuple[Patch, ...]] = {}
    cases = [c for c in cases if c in main_patches]
    views = sorted({v for c in cases for v in main_patches[c]})
    for view in views:
        counts: Counter[Patch] = Counter(
            (int(p[0]), int(p[1]), int(p[2])) for c in cases if (p := main_patches[c].get(view)) is not None
        )
        total = sum(counts.values())
        chosen = sorted(p for p, n in counts.items() if total and n / total >= min_share)
        if chosen:
            out[view] = tuple(chosen)
    return out


@dataclass(frozen=True)
class OracleCeiling:
    """The oracle ceiling of patch radiomics for one task (see the module docstring).

    Attributes:
        pooling: ``modal`` (one column of the modal lesion patch) or ``max`` (one feature pooled by
            the maximum over the lesion patches of its view).
        lesion_patches: per view, the lesion patch(es) the candidates were taken from.
        n_candidates: oriented candidates (two per column or pooled feature).
        feature: the candidate selected on train (a column name; pooled: patches written ``p010|p011``).
        sign: its orientation: the score is ``sign * x`` (pooled: ``max_p sign * x_p``).
        auc_train: its training AUC (>= 1/2 up to ties).
        auc_valid, ci_low, ci_high: its validation AUC and bootstrap 95 % CI (the ceiling).
        optimistic_feature, optimistic_auc_valid: the candidate with the best validation AUC.
        n_train, n_train_pos, n_valid, n_valid_pos: cases and positives.
    """

    pooling: str
    lesion_patches: dict[str, tuple[Patch, ...]]
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


def _oriented_candidates(
    table: pd.DataFrame,
    lesion_patches: Mapping[str, tuple[Patch, ...]],
    pooling: str,
    tr: np.ndarray,
    images: Sequence[str] | None,
    families: Sequence[str] | None,
) -> tuple[pd.DataFrame, list[int]]:
    """Scores of every oriented candidate (columns) per case, and each candidate's sign."""
    scores: dict[str, np.ndarray] = {}
    signs: list[int] = []
    for view, patches in lesion_patches.items():
        per_patch = {
            p: patch_columns(table.columns, view=view, patch=p, images=images, families=families) for p in patches
        }
        # feature key (image, family, feature) -> column per patch; only keys every patch has
        keyed: dict[tuple[str, ...], list[str]] = {}
        for p in patches:
            for col in per_patch[p]:
                _, image, _, family, feature = col.split(".", 4)
                keyed.setdefault((image, family, feature), []).append(col)
        for (image, family, feature), cols in keyed.items():
            if len(cols) != len(patches):
                continue
            block = table[cols]
            means = block[tr].mean(axis=0)
            if not np.all(np.isfinite(means.to_numpy())):
                continue  # a column without training values
            values = block.fillna(means).to_numpy(dtype=np.float64)
            if pooling == "modal":
                name = cols[0]
            else:
                tokens = "|".join("p" + "".join(str(c) for c in p) for p in patches)
                name = f"{view}.{image}.{tokens}.{family}.{feature}"
            for sign in (1, -1):
                scores[f"{name}#{sign:+d}"] = (sign * values).max(axis=1)
                signs.append(sign)
    return pd.DataFrame(scores, index=table.index), signs


def oracle_patch_auc(
    table: pd.DataFrame,
    labels: pd.Series,
    train: pd.Series,
    main_patches: Mapping[str, Mapping[str, Patch | None]],
    *,
    pooling: str = "modal",
    min_share: float = 0.1,
    images: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
) -> OracleCeiling:
    """Best single-feature AUC of the lesion patch(es): selected on train, measured on valid.

    ``pooling="modal"`` is the module docstring's definition. ``pooling="max"`` serves lesions whose
    location varies between cases (a meniscal tear lies medial or lateral, in a posterior or anterior
    horn): the lesion patches of a view are all patches that are the main patch of at least
    ``min_share`` of the training positives (:func:`lesion_patch_sets`), and a candidate is one
    radiomic feature (view, image, family, feature) pooled over them, ``max_p s x_p`` for ``s = +1``
    and ``s = -1``; selection and scoring as for ``modal``. Both use only training truth.

    Args:
        table: wide feature table, index ``case``.
        labels: the task's 0/1 label per case (index ``case``; cases of ``table`` only).
        train: True for training cases, False for validation cases (index ``case``).
        main_patches: ``main_patches[case][view]``, the main lesion patch of each *training positive*
            in each view (``None`` where the view shows none); other cases are ignored.
        pooling: ``modal`` or ``max``.
        min_share: for ``max``, the share of training positives that makes a patch a lesion patch.
        images, families: restrict the candidates (``None``: all).
        n_boot, seed: bootstrap resamples and seed of the CI.

    Raises:
        ValueError: an unknown pooling, a split without both classes, no training positive with a
            lesion patch, or no candidate (each message says which).
    """
    if pooling not in ("modal", "max"):
        raise ValueError(f"pooling must be 'modal' or 'max', not {pooling!r}")
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
    train_pos = [c for c in cases[tr & (y_arr == 1)]]
    if pooling == "modal":
        lesion_patches: dict[str, tuple[Patch, ...]] = {}
        views = sorted({v for c in train_pos if c in main_patches for v in main_patches[c]})
        for view in views:
            modal = modal_patch(main_patches[c].get(view) for c in train_pos if c in main_patches)
            if modal is not None:
                lesion_patches[view] = (modal,)
    else:
        lesion_patches = lesion_patch_sets(main_patches, train_pos, min_share=min_share)
    if not lesion_patches:
        raise ValueError("no training positive has a lesion patch in any view")
    scores, signs = _oriented_candidates(table, lesion_patches, pooling, tr, images, families)
    if scores.shape[1] == 0:
        raise ValueError(f"no candidate feature with training values at lesion patches {lesion_patches}")
    auc_tr = single_feature_aucs(scores[tr], y_arr[tr])
    best = int(np.argmax(auc_tr.to_numpy()))  # first maximum in candidate order
    chosen = scores.columns[best]
    y_valid = y_arr[~tr]
    score_valid = scores.loc[~tr, chosen].to_numpy()
    auc_va = single_feature_aucs(scores[~tr], y_valid)
    lo, hi = bootstrap_auc_ci(y_valid, score_valid, n_boot=n_boot, seed=seed)
    opt = int(np.argmax(auc_va.to_numpy()))
    return OracleCeiling(
        pooling=pooling,
        lesion_patches=lesion_patches,
        n_candidates=int(scores.shape[1]),
        feature=str(chosen).rsplit("#", 1)[0],
        sign=signs[best],
        auc_train=float(auc_tr.iloc[best]),
        auc_valid=float(auc_va.iloc[best]),
        ci_low=lo,
        ci_high=hi,
        optimistic_feature=str(scores.columns[opt]).rsplit("#", 1)[0],
        optimistic_auc_valid=float(auc_va.iloc[opt]),
        n_train=int(tr.sum()),
        n_train_pos=int((y_arr[tr] == 1).sum()),
        n_valid=int((~tr).sum()),
        n_valid_pos=int((y_valid == 1).sum()),
    )
