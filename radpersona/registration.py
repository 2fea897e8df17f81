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

Per-view reference (``registration.reference``):

- ``case``: the preprocessed view of ``registration.reference_case`` (or, when null, of the first
  healthy training case in case order);
- ``template``: a group-wise mean of healthy training cases (at most ``registration.template_cases``,
  drawn with ``registration.seed``), built by iterating ``registration.template_iterations`` times:
  ``reg_aladin`` of every member to the current template, the voxel-wise mean of the registered
  volumes, then de-biasing: the mean is resampled with the inverse of the members' log-Euclidean
  mean affine (``reg_average -avg`` of the affines, ``reg_transform -invAff``, ``reg_resample``), so
  the template sits in the group's mean pose rather than the initial reference's. (The voxel mean is
  computed with numpy: ``reg_average -avg`` of images, NiftyReg 1.5.70, did not return the voxel mean
  of same-grid inputs in our check.) The template stays
  on the initial reference's grid. The members, seed and per-iteration mean NCC are written to a
  JSON sidecar beside the reference (``reference_{view}.json``).

"Healthy" is ``abn == 0``; for a source without ``abn`` (KneeMRI) it is every known label == 0.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import InputDataError, RadpersonaError, ToolNotFoundError
from .settings import RegistrationSettings, fail
from .volume import read_volume, write_volume

logger = logging.getLogger("radpersona")


@cache
def find_niftyreg_tool(name: str = "reg_aladin") -> Path:
    """Locate a NiftyReg executable: ``PATH`` first, then the ``niftyreg`` package's ``bin_path``.

    Raises:
        ToolNotFoundError: neither is available, with how to install it.
    """
    found = shutil.which(name)
    if found:
        return Path(found)
    try:
        import niftyreg

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
    out = subprocess.run(
        [str(find_niftyreg_tool(name)), "--version"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
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


def reg_aladin_command(
    ref: Path, flo: Path, res: Path, aff: Path, settings: RegistrationSettings, threads: int = 1
) -> list[str]:
    """The ``reg_aladin`` command line for the given ``registration`` settings."""
    cmd = [
        str(find_niftyreg_tool("reg_aladin")),
        "-ref",
        str(ref),
        "-flo",
        str(flo),
        "-res",
        str(res),
        "-aff",
        str(aff),
        "-ln",
        str(settings.levels),
        "-lp",
        str(settings.levels_to_perform),
        "-maxit",
        str(settings.max_iterations),
        "-pad",
        "0",
        "-omp",
        str(threads),
        "-voff",
    ]
    if settings.rigid_only:
        cmd.append("-rigOnly")
    return cmd


def register_volume(
    reference: str | Path,
    floating: str | Path,
    out: str | Path,
    affine_out: str | Path,
    *,
    settings: RegistrationSettings,
    case: str,
    view: str,
    threads: int = 1,
) -> dict[str, Any]:
    """Register ``floating`` to ``reference`` with reg_aladin; write the result and affine atomically.

    Returns the QC record (case, view, ncc_before, ncc_after, mse_before, mse_after, seconds, status).
    """
    ref_arr, ref_spacing = read_volume(reference, view=view)
    flo_arr, _ = read_volume(floating, case=case, view=view)
    if flo_arr.shape != ref_arr.shape:
        raise InputDataError(
            f"floating shape {flo_arr.shape} differs from the reference shape {ref_arr.shape}",
            case=case,
            view=view,
            path=floating,
        )
    record: dict[str, Any] = {
        "case": case,
        "view": view,
        "ncc_before": ncc(flo_arr, ref_arr),
        "mse_before": mse(flo_arr, ref_arr),
    }
    out, affine_out = Path(out), Path(affine_out)
    out.parent.mkdir(parents=True, exist_ok=True)
    affine_out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="reg_", dir=out.parent) as tmp:
        res_tmp, aff_tmp = Path(tmp) / "res.nii.gz", Path(tmp) / "aff.txt"
        cmd = reg_aladin_command(Path(reference), Path(floating), res_tmp, aff_tmp, settings, threads)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=False)
            returncode, text = proc.returncode, (proc.stderr or proc.stdout)
        except OSError as exc:  # the executable vanished or cannot run
            returncode, text = -1, f"cannot run {cmd[0]}: {exc}"
        record["seconds"] = time.perf_counter() - start
        record["exit_status"] = returncode
        status = "ok"
        if returncode != 0 or not res_tmp.exists() or not aff_tmp.exists():
            tail = text.strip().splitlines()[-3:]
            status = f"failed: reg_aladin exit {returncode}: {' | '.join(tail)}"
            result = None
        else:
            result, _ = read_volume(res_tmp, case=case, view=view)
            record["ncc_after"], record["mse_after"] = ncc(result, ref_arr), mse(result, ref_arr)
            if record["ncc_after"] < record["ncc_before"] - settings.ncc_margin:
                status = (
                    f"worse: NCC {record['ncc_before']:.3f} -> {record['ncc_after']:.3f} (margin {settings.ncc_margin})"
                )
        if status != "ok":
            logger.warning("registration of case %s view %s: %s", case, view, status)
            if settings.on_failure == "error":
                raise InputDataError(f"registration {status}", case=case, view=view, path=floating)
            result = flo_arr
            record["ncc_after"], record["mse_after"] = record["ncc_before"], record["mse_before"]
            np.savetxt(aff_tmp, np.eye(4), fmt="%.8f")
            status += " (kept unregistered)"
        record["status"] = status
        record["flagged"] = not status.startswith("ok")
        assert result is not None  # a failed registration kept the floating volume above
        write_volume(out, result, ref_spacing, description=f"radpersona reg {view} {status.split(':')[0]}")
        os.replace(aff_tmp, affine_out)
    return record


def read_affine(path: str | Path) -> np.ndarray:
    """Read a NiftyReg affine text file (4x4, maps reference world points to floating world points)."""
    matrix = np.loadtxt(path)
    if matrix.shape != (4, 4):
        raise InputDataError("affine file must hold a 4x4 matrix", path=path, value=matrix.shape)
    return matrix


# ---------------------------------------------------------------------------------- references
def healthy_training_cases(cohort: pd.DataFrame) -> list[str]:
    """Healthy training cases in case order: ``abn == 0``, or every known label 0 where abn is absent."""
    train = cohort[cohort["split"] == "train"]
    if train["abn"].notna().any():
        healthy = train[train["abn"] == 0]
    else:
        labels = train[["acl", "men"]]
        healthy = train[labels.notna().any(axis=1) & (labels.fillna(0) == 0).all(axis=1)]
    return sorted(healthy["case"].astype(str).tolist())


def reference_case(cohort: pd.DataFrame, configured: str | None) -> str:
    """The reference case: the configured one, else the first healthy training case (else the first training case).

    The workflow refuses a configured case outside the cohort when it is parsed
    (:meth:`radpersona.settings.Settings.check_cohort`); the same refusal here covers a direct call.
    """
    if configured is not None:
        if configured not in set(cohort["case"]):
            raise fail("registration.reference_case", f"case {configured!r} is not in the cohort")
        return configured
    healthy = healthy_training_cases(cohort)
    if healthy:
        return healthy[0]
    train = sorted(cohort.loc[cohort["split"] == "train", "case"].astype(str))
    if not train:
        raise RadpersonaError("the cohort has no training case to take as registration reference")
    return train[0]


def template_members(cohort: pd.DataFrame, settings: RegistrationSettings) -> list[str]:
    """Members of a group-wise template: at most ``template_cases`` healthy training cases, drawn with ``seed``.

    Raises:
        RadpersonaError: fewer than two healthy training cases.
    """
    healthy = healthy_training_cases(cohort)
    if len(healthy) < 2:
        raise RadpersonaError(
            f"registration.reference 'template' needs at least 2 healthy training cases, found {len(healthy)}"
        )
    rng = np.random.default_rng(settings.seed)
    n = min(settings.template_cases, len(healthy))
    return sorted(np.array(healthy)[rng.choice(len(healthy), size=n, replace=False)].tolist())


def _run_tool(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=False)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise RadpersonaError(f"{what}: {Path(cmd[0]).name} exited {proc.returncode}: {tail}")


def build_template(
    initial: str | Path,
    members: dict[str, Path],
    out: str | Path,
    *,
    settings: RegistrationSettings,
    view: str,
    iterations: int,
    threads: int = 1,
) -> dict[str, Any]:
    """Group-wise mean template of ``members`` (case -> preprocessed volume) starting from ``initial``.

    Each iteration registers every member to the current template with reg_aladin (the
    ``registration`` flags), averages the registered volumes voxel-wise and de-biases the mean with
    the inverse mean affine (see the module docstring). A member whose registration fails (non-zero
    exit, no output) or lowers its NCC to the template by more than ``registration.ncc_margin`` is
    left out of that iteration's mean and listed in the returned provenance.

    Returns:
        provenance: members, per-iteration mean NCC of the members to the template before and
        after registration, members left out per iteration.

    Raises:
        RadpersonaError: fewer than two usable members, or a NiftyReg tool failing on the mean.
        ToolNotFoundError: reg_aladin, reg_average, reg_transform or reg_resample is missing.
    """
    if len(members) < 2:
        raise RadpersonaError(f"registration template for view {view!r} needs at least 2 members, got {len(members)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    ref_arr, ref_spacing = read_volume(initial, view=view)
    history: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix=f"template_{view}_", dir=out.parent) as tmp_name:
        tmp = Path(tmp_name)
        current = tmp / "template_0.nii.gz"
        write_volume(current, ref_arr, ref_spacing, description=f"radpersona template {view} iteration 0")
        for it in range(1, iterations + 1):
            results, affines, left_out, before, after = [], [], [], [], []
            template_arr, _ = read_volume(current, view=view)
            for case, path in members.items():
                res, aff = tmp / f"res_{it}_{case}.nii.gz", tmp / f"aff_{it}_{case}.txt"
                cmd = reg_aladin_command(current, Path(path), res, aff, settings, threads)
                proc = subprocess.run(
                    cmd, capture_output=True, text=True, encoding="utf-8", errors="replace", check=False
                )
                if proc.returncode != 0 or not res.exists() or not aff.exists():
                    left_out.append({"case": case, "why": f"reg_aladin exit {proc.returncode}"})
                    continue
                flo_arr, _ = read_volume(path, case=case, view=view)
                res_arr, _ = read_volume(res, case=case, view=view)
                if flo_arr.shape != template_arr.shape:
                    raise InputDataError(
                        f"shape {flo_arr.shape} differs from the template shape {template_arr.shape}",
                        case=case,
                        view=view,
                        path=path,
                    )
                n0, n1 = ncc(flo_arr, template_arr), ncc(res_arr, template_arr)
                if n1 < n0 - settings.ncc_margin:
                    left_out.append({"case": case, "why": f"NCC {n0:.3f} -> {n1:.3f}"})
                    continue
                before.append(n0)
                after.append(n1)
                results.append(res)
                affines.append(aff)
            if len(results) < 2:
                raise RadpersonaError(
                    f"registration template for view {view!r}, iteration {it}: only {len(results)} "
                    f"members registered ({left_out})"
                )
            mean_img, mean_aff, inv_aff = tmp / f"mean_{it}.nii.gz", tmp / f"mean_{it}.txt", tmp / f"inv_{it}.txt"
            nxt = tmp / f"template_{it}.nii.gz"
            # voxel-wise mean of the registered members (all on the template grid); computed here because
            # reg_average -avg of images (NiftyReg 1.5.70) did not return the voxel mean of same-grid inputs
            stack = np.mean([read_volume(r, view=view)[0] for r in results], axis=0)
            write_volume(mean_img, stack, ref_spacing, description=f"radpersona template mean {view} it {it}")
            _run_tool(
                [str(find_niftyreg_tool("reg_average")), str(mean_aff), "-avg", *map(str, affines)], "averaging affines"
            )
            _run_tool(
                [
                    str(find_niftyreg_tool("reg_transform")),
                    "-ref",
                    str(mean_img),
                    "-invAff",
                    str(mean_aff),
                    str(inv_aff),
                ],
                "inverting the mean affine",
            )
            _run_tool(
                [
                    str(find_niftyreg_tool("reg_resample")),
                    "-ref",
                    str(mean_img),
                    "-flo",
                    str(mean_img),
                    "-trans",
                    str(inv_aff),
                    "-res",
                    str(nxt),
                    "-inter",
                    "1",
                    "-pad",
                    "0",
                    "-voff",
                ],
                "de-biasing the template",
            )
            history.append(
                {
                    "iteration": it,
                    "members_used": len(results),
                    "mean_ncc_before": float(np.mean(before)),
                    "mean_ncc_after": float(np.mean(after)),
                    "left_out": left_out,
                    "mean_affine": np.loadtxt(mean_aff).tolist(),
                }
            )
            logger.info(
                "template %s iteration %d: %d members, mean NCC to template %.3f -> %.3f",
                view,
                it,
                len(results),
                np.mean(before),
                np.mean(after),
            )
            current = nxt
        final, _ = read_volume(current, view=view)
        write_volume(out, final, ref_spacing, description=f"radpersona template {view} {iterations} it")
    return {"iterations": history}


QC_COLUMNS = [
    "case",
    "view",
    "ncc_before",
    "ncc_after",
    "mse_before",
    "mse_after",
    "seconds",
    "status",
    "exit_status",
    "flagged",
]
