"""The synthetic truth on the model's grid: the true healthy volume and lesion occupancy of a case.

The truth folder holds, per case and view, the healthy counterpart and the lesion mask in the raw
geometry (``Layout.truth(case, view, kind)``). They are brought onto the grid a configuration's
models work on exactly as the image was: the preprocess resize (``preprocess.shape``,
``interpolation``; linear for the lesion occupancy), the original's own normalisation statistics,
and for the ``reg`` branch the case's reg_aladin affine applied with ``reg_resample`` (cubic for the
image, as reg_aladin resamples; linear for the occupancy), unless the registration QC kept the view
unregistered.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from radpersona.errors import InputDataError
from radpersona.layout import Layout
from radpersona.persona.reconstruction.configs import ReconConfig
from radpersona.settings import PreprocessSettings
from radpersona.truth import normalise_like, reg_resample

__all__ = ["truth_on_grid", "kept_unregistered", "lesion_truth"]


def truth_on_grid(
    case: str,
    view: str,
    *,
    healthy: str | Path,
    lesion: str | Path,
    raw: str | Path,
    pre: str | Path,
    preprocess: PreprocessSettings,
    affine: str | Path | None = None,
    reference: str | Path | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The true healthy volume and lesion occupancy of one case and view on the model's grid.

    Applies the preprocess crop and resize (``preprocess.crop``, ``shape``, ``interpolation``) to the truth arrays
    (``healthy``, ``lesion``: the ``.npy`` files of the truth folder, raw geometry) and the original's
    own normalisation statistics to the healthy one; checks that doing the same to the ``raw`` image
    reproduces the preprocessed file ``pre`` (else the settings differ from the run's). With
    ``affine`` and ``reference`` (the reg branch, a view the QC registered), applies the affine with
    reg_resample on the reference (cubic for the image, as reg_aladin resamples; linear for the lesion
    occupancy); without them the preprocessed grid stays as it is.

    Returns:
        ``(healthy, lesion_occupancy)``, float32 arrays of the model grid's shape.

    Raises:
        InputDataError: missing or mismatching files, naming case, view and file.
    """
    from radpersona.preprocess import normalise, to_grid
    from radpersona.volume import read_volume

    healthy_path, lesion_path = Path(healthy), Path(lesion)
    for p in (healthy_path, lesion_path):
        if not p.is_file():
            raise InputDataError("synthetic truth file not found", case=case, view=view, path=p)
    healthy_raw = np.load(healthy_path, allow_pickle=False).astype(np.float32)
    lesion_raw = (np.load(lesion_path, allow_pickle=False) > 0).astype(np.float32)
    original_raw, spacing = read_volume(raw, case=case, view=view)
    if healthy_raw.shape != original_raw.shape or lesion_raw.shape != original_raw.shape:
        raise InputDataError(
            f"truth shapes {healthy_raw.shape}/{lesion_raw.shape} differ from the raw volume {original_raw.shape}",
            case=case,
            view=view,
            path=healthy_path,
        )
    shape, interp, crop = list(preprocess.shape), preprocess.interpolation, preprocess.crop
    original, _ = to_grid(original_raw, spacing, shape, interp, crop=crop)
    healthy_grid, _ = to_grid(healthy_raw, spacing, shape, interp, crop=crop)
    occupancy, _ = to_grid(lesion_raw, spacing, shape, "linear", crop=crop)
    pre_path = Path(pre)
    pre_array, pre_spacing = read_volume(pre_path, case=case, view=view)
    check = normalise(original, preprocess.normalisation, list(preprocess.percentiles), case=case, view=view)
    if check.shape != pre_array.shape or float(np.max(np.abs(check - pre_array))) > 1e-4:
        raise InputDataError(
            "re-preprocessing the raw volume does not reproduce the preprocessed file: the preprocess settings "
            "given to the reconstruction study differ from the run's",
            case=case,
            view=view,
            path=pre_path,
            value=float(np.max(np.abs(check - pre_array))) if check.shape == pre_array.shape else check.shape,
        )
    healthy_grid = normalise_like(healthy_grid, original, preprocess)
    if (affine is None) != (reference is None):
        raise ValueError("affine and reference must both be given (reg) or both be None")
    if affine is not None and reference is not None:
        affine_path, reference_path = Path(affine), Path(reference)
        for p in (affine_path, reference_path):
            if not p.is_file():
                raise InputDataError("registration file not found", case=case, view=view, path=p)
        healthy_grid = reg_resample(
            healthy_grid, pre_spacing, reference_path, affine_path, interpolation=3, case=case, view=view
        )
        occupancy = reg_resample(
            occupancy, pre_spacing, reference_path, affine_path, interpolation=1, case=case, view=view
        )
    return healthy_grid.astype(np.float32), occupancy.astype(np.float32)


def kept_unregistered(qc_file: str | Path, case: str, view: str) -> bool:
    """True if the registration QC of ``case`` (its ``qc_case`` file) kept ``view`` unregistered."""
    path = Path(qc_file)
    if not path.is_file():
        raise InputDataError("registration QC file not found", case=case, view=view, path=path)
    qc = pd.read_parquet(path)
    rows = qc[qc["view"] == view]
    return bool(len(rows) and "kept unregistered" in str(rows["status"].iloc[0]))


def lesion_truth(
    layout: Layout, cfg: ReconConfig, case: str, preprocess: PreprocessSettings
) -> tuple[np.ndarray, np.ndarray]:
    """The true healthy volume and lesion occupancy of a synthetic case on ``cfg``'s grid, (C, D, H, W) each.

    Reads, per view of the configuration, the truth files, the raw and preprocessed volumes and, for
    the ``reg`` branch, the registration QC, the affine and the view's reference (all named by
    ``layout``).
    """
    truths, occupancies = [], []
    for view in cfg.views:
        registered = cfg.reg == "reg" and not kept_unregistered(layout.qc_case(case), case, view)
        healthy, occupancy = truth_on_grid(
            case,
            view,
            healthy=layout.truth(case, view, "healthy"),
            lesion=layout.truth(case, view, "lesion"),
            raw=layout.raw(case, view),
            pre=layout.pre(case, view),
            preprocess=preprocess,
            affine=layout.affine(case, view) if registered else None,
            reference=layout.reference(view) if registered else None,
        )
        truths.append(healthy)
        occupancies.append(occupancy)
    return np.stack(truths), np.stack(occupancies)
