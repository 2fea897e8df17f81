"""Does a fingerprint point at the lesion? (synthetic cohorts, where the lesion is known)

For each reported case with the task's lesion (ACL tear: label 1; meniscal tear: label 2; abnormal:
any label), take the case's top-k fingerprint features by |contribution| and count how many lie in a
patch that overlaps the true lesion in that feature's view. The chance level is the same share for
features drawn at random from all candidate features of the model (computed exactly: the fraction of
candidate features whose patch overlaps the lesion).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from radpersona.features import patch_grid
from radpersona.layout import Layout
from radpersona.persona.masks import box_slices
from radpersona.settings import PreprocessSettings
from radpersona.truth import TASK_LESION_CODES, lesion_on_grid

LOCALISATION_COLUMNS: tuple[str, ...] = ("case", "task", "n_top", "top_share", "chance_share", "lesion_patches")


def lesion_patches(lesion: np.ndarray, box: Sequence[float], grid: int) -> set[tuple[int, int, int]]:
    """Patches (i, j, k) of the box grid that contain at least one lesion voxel (boolean mask)."""
    return {ijk for ijk, sl in patch_grid(box_slices(lesion.shape, box), grid) if lesion[sl].any()}


def localisation_table(
    fingerprints: pd.DataFrame,
    population: pd.DataFrame,
    cohort: pd.DataFrame,
    *,
    task: str,
    layout: Layout,
    preprocess: PreprocessSettings,
    reg: str,
    box: Sequence[float],
    grid: int,
    top_k: int = 10,
) -> pd.DataFrame:
    """One row per lesion case: top-k share in lesion patches and the chance share.

    Reads each lesion case's true lesion mask (``layout.truth(case, view, "lesion")``) and raw volume,
    and for ``reg == "reg"`` its registered volume and affine, for every view of ``population``.
    """
    rows = []
    codes = TASK_LESION_CODES[task]
    indexed = cohort.set_index("case")
    for case, fp in fingerprints.groupby("case"):
        if indexed.loc[case, task] != 1:
            continue
        hits: dict[str, set[tuple[int, int, int]]] = {}
        for view in sorted(set(population["view"])):
            lesion = lesion_on_grid(layout, str(case), view, preprocess=preprocess, reg=reg, codes=codes)
            hits[view] = lesion_patches(lesion, box, grid)
        if not any(hits.values()):
            continue  # the lesion is too small to survive resampling onto the grid
        top = fp.sort_values("rank").head(top_k)
        in_lesion = [(r.i, r.j, r.k) in hits[r.view] for r in top.itertuples()]
        chance = np.mean([(r.i, r.j, r.k) in hits[r.view] for r in population.itertuples()])
        rows.append(
            {
                "case": case,
                "task": task,
                "n_top": len(top),
                "top_share": float(np.mean(in_lesion)) if len(top) else np.nan,
                "chance_share": float(chance),
                "lesion_patches": int(sum(len(v) for v in hits.values())),
            }
        )
    return pd.DataFrame(rows, columns=list(LOCALISATION_COLUMNS))
