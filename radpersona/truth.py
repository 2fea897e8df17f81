"""Synthetic ground truth brought onto the pipeline's grids.

The synthetic cohort's truth folder holds, per case and view, the healthy counterpart and the lesion
label mask in the *raw* MRNet geometry (``{case}_{view}_healthy.npy``, ``{case}_{view}_lesion.npy``).
Comparisons with personas and patches need them on the preprocessed grid (``pre``) or on the
registered grid (``reg``). This module applies exactly the pipeline's own steps: the preprocess
resize (nearest neighbour for labels, the configured interpolation and normalisation for intensities
— normalised with the *original* case's statistics so intensities stay comparable), then NiftyReg's
``reg_resample`` with the case's affine for the ``reg`` branch.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputDataError
from .preprocess import resize
from .registration import find_niftyreg_tool
from .volume import read_volume, write_volume


def truth_array(truth_dir: str | Path, case: str, view: str, kind: str) -> np.ndarray:
    """Load ``{case}_{view}_{kind}.npy`` (kind: healthy | lesion) from the truth folder (no pickles)."""
    path = Path(truth_dir) / f"{case}_{view}_{kind}.npy"
    if not path.exists():
        raise InputDataError(f"truth file for {kind!r} is missing", case=case, view=view, path=path)
    return np.load(path, allow_pickle=False)


def _normalise_like(raw: np.ndarray, reference_raw: np.ndarray, preprocess: Mapping[str, Any]) -> np.ndarray:
    """Normalise ``raw`` with the statistics ``preprocess`` would take from ``reference_raw``."""
    method = preprocess["normalisation"]
    if method == "none":
        return raw.astype(np.float32)
    if method == "zscore":
        return ((raw - reference_raw.mean()) / reference_raw.std()).astype(np.float32)
    if method == "minmax":
        lo, hi = float(reference_raw.min()), float(reference_raw.max())
    else:
        lo, hi = (float(v) for v in np.percentile(reference_raw, list(preprocess["percentiles"])))
    return ((np.clip(raw, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def to_grid(array: np.ndarray, *, case: str, view: str, results: str | Path, preprocess: Mapping[str, Any], reg: str,
            label: bool, reference_raw: np.ndarray | None = None) -> np.ndarray:
    """Bring a raw-geometry array onto the ``pre`` (noreg) or ``reg`` grid of ``case``/``view``.

    Labels are resampled with nearest neighbour; intensities with the configured interpolation and
    the normalisation statistics of ``reference_raw`` (the case's own raw volume).
    """
    results = Path(results)
    interpolation = "nearest" if label else preprocess["interpolation"]
    resized, spacing = resize(array.astype(np.float32), (1.0, 1.0, 1.0), preprocess["shape"], interpolation)
    if not label:
        ref_resized, _ = resize(np.asarray(reference_raw, np.float32), (1.0, 1.0, 1.0), preprocess["shape"],
                                preprocess["interpolation"])
        # statistics of the resized original, exactly as preprocess computes them
        resized = _normalise_like(resized, ref_resized, preprocess)
    if reg == "noreg":
        return resized
    affine = results / "volumes" / "reg" / f"{case}_{view}.aff.txt"
    reference = results / "registration" / f"reference_{view}.nii.gz"
    with tempfile.TemporaryDirectory(prefix="truth_") as tmp:
        flo, out = Path(tmp) / "flo.nii.gz", Path(tmp) / "out.nii.gz"
        write_volume(flo, resized, spacing)
        cmd = [str(find_niftyreg_tool("reg_resample")), "-ref", str(reference), "-flo", str(flo), "-trans", str(affine),
               "-res", str(out), "-inter", "0" if label else "1", "-pad", "0", "-voff"]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not out.exists():
            raise InputDataError(f"reg_resample failed ({proc.returncode}): {proc.stderr.strip()[-300:]}",
                                 case=case, view=view, path=affine)
        moved, _ = read_volume(out, case=case, view=view)
    return np.rint(moved).astype(np.int16) if label else moved


def lesion_on_grid(truth_dir: str | Path, case: str, view: str, *, results: str | Path, preprocess: Mapping[str, Any],
                   reg: str) -> np.ndarray:
    """The lesion label mask (0 none, 1 ACL tear, 2 meniscal tear, 3 effusion, 4 bone bruise,
    5 cartilage defect) on the grid of the ``reg`` branch."""
    return to_grid(truth_array(truth_dir, case, view, "lesion"), case=case, view=view, results=results,
                   preprocess=preprocess, reg=reg, label=True)


def healthy_on_grid(truth_dir: str | Path, raw_volume: np.ndarray, case: str, view: str, *, results: str | Path,
                    preprocess: Mapping[str, Any], reg: str) -> np.ndarray:
    """The true healthy counterpart on the grid of the ``reg`` branch, on the original's intensity scale."""
    return to_grid(truth_array(truth_dir, case, view, "healthy"), case=case, view=view, results=results,
                   preprocess=preprocess, reg=reg, label=False, reference_raw=raw_volume)
