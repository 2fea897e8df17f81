"""Registration: NiftyReg ``reg_aladin`` (affine, or rigid) of each view to a per-view reference.

``reg_aladin`` is resolved from ``PATH`` first, then from the ``niftyreg`` Python package's
``bin_path``. The registered volume is resampled on the reference grid. A QC row per case and view
records NCC and MSE to the reference before and after, the runtime and the status:

- ``ok``: registered;
- ``worse``: registration lowered NCC by more than ``registration.ncc_margin`` (flagged);
- ``failed: ...``: reg_aladin exited non-zero or wrote no output.

With ``registration.on_failure = keep_unregistered`` a failed or worse registration keeps the
preprocessed (unregistered) volume, resampled onto nothing (it is already on a grid of the same
shape); with ``error`` the rule stops with a message naming the case and view.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputDataError, ToolNotFoundError
from .volume import read_volume, write_volume

logger = logging.getLogger("radpersona")


@lru_cache(maxsize=None)
def find_niftyreg_tool(name: str = "reg_aladin") -> Path:
    """Locate a NiftyReg executable: ``PATH`` first, then the ``niftyreg`` package's ``bin_path``.

    Raises:
        ToolNotFoundError: neither is available, with how to install it.
    """
    found = shutil.which(name)
    if found:
        return Path(found)
    try:
        import niftyreg  # type: ignore[import-untyped]

        candidate = Path(niftyreg.bin_path) / name
        if candidate.exists():
            return candidate
    except ImportError:
        pass
    raise ToolNotFoundError(
        f"NiftyReg's {name} was not found on PATH nor in the 'niftyreg' Python package. Install it with "
        "`CMAKE_POLICY_VERSION_MINIMUM=3.5 pip install niftyreg` (builds from source, ~2 min; `make` does this) "
        "or put a NiftyReg build's bin folder on PATH."
    )


def niftyreg_version(name: str = "reg_aladin") -> str:
    """Return the version string that ``reg_aladin --version`` prints."""
    out = subprocess.run([str(find_niftyreg_tool(name)), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).strip().splitlines()[-1] if (out.stdout or out.stderr) else "unknown"


def ncc(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised cross-correlation of two same-shape arrays (Pearson correlation of voxels)."""
    a = a.astype(np.float64).ravel() - a.mean()
    b = b.astype(np.float64).ravel() - b.mean()
    denom = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denom) if denom > 0 else 0.0


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two same-shape arrays."""
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def reg_aladin_command(ref: Path, flo: Path, res: Path, aff: Path, settings: Mapping[str, Any], threads: int = 1) -> list[str]:
    """The ``reg_aladin`` command line for the given ``registration`` settings."""
    cmd = [
        str(find_niftyreg_tool("reg_aladin")), "-ref", str(ref), "-flo", str(flo), "-res", str(res), "-aff", str(aff),
        "-ln", str(settings["levels"]), "-lp", str(settings["levels_to_perform"]),
        "-maxit", str(settings["max_iterations"]), "-pad", "0", "-omp", str(threads), "-voff",
    ]
    if settings["rigid_only"]:
        cmd.append("-rigOnly")
    return cmd


def register_volume(reference: str | Path, floating: str | Path, out: str | Path, affine_out: str | Path, *,
                    settings: Mapping[str, Any], case: str, view: str, threads: int = 1) -> dict[str, Any]:
    """Register ``floating`` to ``reference`` with reg_aladin; write the result and affine atomically.

    Returns the QC record (case, view, ncc_before, ncc_after, mse_before, mse_after, seconds, status).
    """
    ref_arr, ref_spacing = read_volume(reference, view=view)
    flo_arr, _ = read_volume(floating, case=case, view=view)
    if flo_arr.shape != ref_arr.shape:
        raise InputDataError(f"floating shape {flo_arr.shape} differs from the reference shape {ref_arr.shape}",
                             case=case, view=view, path=floating)
    record: dict[str, Any] = {"case": case, "view": view, "ncc_before": ncc(flo_arr, ref_arr), "mse_before": mse(flo_arr, ref_arr)}
    out, affine_out = Path(out), Path(affine_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    affine_out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reg_", dir=out.parent) as tmp:
        res_tmp, aff_tmp = Path(tmp) / "res.nii.gz", Path(tmp) / "aff.txt"
        cmd = reg_aladin_command(Path(reference), Path(floating), res_tmp, aff_tmp, settings, threads)
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        record["seconds"] = time.perf_counter() - start
        record["exit_status"] = proc.returncode
        status = "ok"
        if proc.returncode != 0 or not res_tmp.exists() or not aff_tmp.exists():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            status = f"failed: reg_aladin exit {proc.returncode}: {' | '.join(tail)}"
            result = None
        else:
            result, _ = read_volume(res_tmp, case=case, view=view)
            record["ncc_after"], record["mse_after"] = ncc(result, ref_arr), mse(result, ref_arr)
            if record["ncc_after"] < record["ncc_before"] - settings["ncc_margin"]:
                status = (f"worse: NCC {record['ncc_before']:.3f} -> {record['ncc_after']:.3f} "
                          f"(margin {settings['ncc_margin']})")
        if status != "ok":
            logger.warning("registration of case %s view %s: %s", case, view, status)
            if settings["on_failure"] == "error":
                raise InputDataError(f"registration {status}", case=case, view=view, path=floating)
            result = flo_arr
            record["ncc_after"], record["mse_after"] = record["ncc_before"], record["mse_before"]
            np.savetxt(aff_tmp, np.eye(4), fmt="%.8f")
            status += " (kept unregistered)"
        record["status"] = status
        write_volume(out, result, ref_spacing, description=f"radpersona reg {view} {status.split(':')[0]}")
        os.replace(aff_tmp, affine_out)
    return record


def read_affine(path: str | Path) -> np.ndarray:
    """Read a NiftyReg affine text file (4x4, maps reference world points to floating world points)."""
    matrix = np.loadtxt(path)
    if matrix.shape != (4, 4):
        raise InputDataError("affine file must hold a 4x4 matrix", path=path, value=matrix.shape)
    return matrix
