"""Does a lesion survive a stage? The audit's rule, per case and per cohort.

A lesion *survives* a stage in one view when, on that stage's grid,

- it covers at least :data:`MIN_VOXELS` (4) voxels with lesion fraction >= ``LESION_FRACTION``, and
- its lesion-vs-healthy contrast-to-noise ratio satisfies ``|CNR| >= MIN_CNR`` (1).

Why these numbers: a matched filter over ``n`` lesion voxels of per-voxel contrast-to-noise ``c``
detects the lesion with ``z = c sqrt(n)``; ``n >= 4`` and ``c >= 1`` guarantee ``z >= 2`` from the
noise alone. Four voxels is also the smallest lesion that has a 2x2 face, hence neighbour pairs
inside it (texture matrices) and a mesh (shape features); radiomics refuses single-voxel regions,
and one or two voxels are within the resampling jitter of disappearing. Patch radiomics has to
beat the anatomical variation between cases as well, so surviving is necessary, not sufficient.

A case's lesion survives when it survives in *at least one* view (the fingerprint reads all views).
A task's lesion survives at a stage when it survives in at least :data:`MIN_CASE_SHARE` (90 %) of the
cases that have it: the statement "every task's lesion survives preprocessing" of issue #14 then
holds for nine lesions in ten, and the rest are the smallest draws of the generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

__all__ = ["MIN_CASE_SHARE", "MIN_CNR", "MIN_VOXELS", "case_survival", "cohort_survival", "survives"]

MIN_VOXELS = 4
MIN_CNR = 1.0
MIN_CASE_SHARE = 0.9


def survives(n_voxels: int, cnr: float, *, min_voxels: int = MIN_VOXELS, min_cnr: float = MIN_CNR) -> bool:
    """``n_voxels >= min_voxels and |cnr| >= min_cnr`` (a NaN CNR never survives)."""
    if cnr is None or (isinstance(cnr, float) and math.isnan(cnr)):
        return False
    return int(n_voxels) >= int(min_voxels) and abs(float(cnr)) >= float(min_cnr)


def case_survival(
    frame: pd.DataFrame,
    *,
    keys: Sequence[str] = ("case",),
    n_column: str = "n_voxels",
    cnr_column: str = "cnr",
    min_voxels: int = MIN_VOXELS,
    min_cnr: float = MIN_CNR,
) -> pd.Series:
    """Per group of ``keys`` (e.g. lesion type, stage, case), whether the lesion survives in any row.

    Args:
        frame: one row per case and view (and whatever else ``keys`` holds) with columns
            ``n_column`` (lesion voxels) and ``cnr_column`` (signed CNR).

    Returns:
        Boolean Series indexed by ``keys``.

    Raises:
        KeyError: a column is missing (names it).
    """
    missing = [c for c in (*keys, n_column, cnr_column) if c not in frame.columns]
    if missing:
        raise KeyError(f"survival table lacks columns {missing}; it has {list(frame.columns)}")
    ok = [survives(n, c, min_voxels=min_voxels, min_cnr=min_cnr) for n, c in zip(frame[n_column], frame[cnr_column])]
    return pd.Series(ok, index=frame.index).groupby([frame[k] for k in keys]).any().rename("survives")


def cohort_survival(per_case: pd.Series, *, min_share: float = MIN_CASE_SHARE) -> dict[str, float | int | bool]:
    """Share of cases whose lesion survives and whether it reaches ``min_share``.

    Returns:
        ``{"n_cases", "n_survive", "share", "survives"}``; with no case the share is NaN and
        ``survives`` is False.
    """
    n = int(len(per_case))
    k = int(per_case.astype(bool).sum())
    share = k / n if n else float("nan")
    return {"n_cases": n, "n_survive": k, "share": share, "survives": bool(n and share >= min_share)}
