"""Seconds per volume for NiftyReg ``reg_aladin`` at the paper's grid (32x128x128) and at full
MRNet in-plane size (24x256x256 by default), on synthetic knees with a known pose difference.

Each pair is two simulated cases (:func:`radpersona.synthetic.simulate_case`, own pose each: their
rotation and translation differences are printed) whose view is resized
(:func:`radpersona.preprocess.resize`, trilinear) and percentile-normalised as the pipeline does,
then registered with :func:`radpersona.registration.register_volume` using the ``registration``
flags of ``config.yaml`` (override with the options). Prints JSON: per shape the median and mean
seconds per volume, NCC before/after, and the flags, threads and reg_aladin version.

Usage::

    python benchmarks/registration.py --pairs 3 --view sagittal --threads 1 --shapes 32x128x128 24x256x256
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np

from radpersona.preprocess import normalise, resize
from radpersona.registration import niftyreg_version, register_volume
from radpersona.settings import load_settings
from radpersona.settings.base import REPO_ROOT
from radpersona.synthetic import simulate_case
from radpersona.volume import write_volume


def _shape(text: str) -> tuple[int, int, int]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"shape must be SxRxC, not {text!r}")
    return parts  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=3, help="registrations per shape")
    parser.add_argument("--shapes", type=_shape, nargs="+", default=[(32, 128, 128), (24, 256, 256)])
    parser.add_argument("--view", default="sagittal", choices=["sagittal", "coronal", "axial"])
    parser.add_argument("--threads", type=int, default=1, help="reg_aladin -omp")
    parser.add_argument("--seed", type=int, default=0, help="synthetic cohort seed")
    parser.add_argument("--max-iterations", type=int, default=None, help="override registration.max_iterations")
    parser.add_argument("--levels-to-perform", type=int, default=None, help="override registration.levels_to_perform")
    args = parser.parse_args()

    settings = load_settings(REPO_ROOT / "config.yaml").registration
    if args.max_iterations is not None:
        settings = settings.replace(max_iterations=args.max_iterations)
    if args.levels_to_perform is not None:
        settings = settings.replace(levels_to_perform=args.levels_to_perform)
    settings = settings.replace(on_failure="keep_unregistered")
    cases = {}
    for index in range(args.pairs + 1):  # case 0 is the reference of every pair
        sim = simulate_case(index, seed=args.seed, matrix=256, slices=(24, 32))
        cases[index] = (sim.views[args.view].image.astype(np.float32), sim.pose)
    per_shape: dict[str, object] = {}  # filled below, per shape
    out: dict[str, object] = {
        "view": args.view,
        "pairs": args.pairs,
        "threads": args.threads,
        "seed": args.seed,
        "reg_aladin": niftyreg_version(),
        "flags": {k: getattr(settings, k) for k in ("rigid_only", "levels", "levels_to_perform", "max_iterations")},
        "results": per_shape,
    }
    ref_pose = cases[0][1]
    out["pose_differences"] = [
        {
            "rotation_deg": np.round(np.subtract(cases[i][1]["rotation_deg"], ref_pose["rotation_deg"]), 2).tolist(),
            "translation_mm": np.round(
                np.subtract(cases[i][1]["translation_mm"], ref_pose["translation_mm"]), 2
            ).tolist(),
            "scale_ratio": round(cases[i][1]["scale"] / ref_pose["scale"], 3),
        }
        for i in range(1, args.pairs + 1)
    ]
    with tempfile.TemporaryDirectory(prefix="bench_reg_") as tmp_name:
        tmp = Path(tmp_name)
        for shape in args.shapes:
            paths = {}
            for index, (image, _) in cases.items():
                resized, spacing = resize(image, (1.0, 1.0, 1.0), shape, "linear")
                paths[index] = tmp / f"{index}_{'x'.join(map(str, shape))}.nii.gz"
                write_volume(paths[index], normalise(resized, "percentile", (0.5, 99.5)), spacing)
            records = [
                register_volume(
                    paths[0],
                    paths[i],
                    tmp / f"res_{i}.nii.gz",
                    tmp / f"aff_{i}.txt",
                    settings=settings,
                    case=f"{i:04d}",
                    view=args.view,
                    threads=args.threads,
                )
                for i in range(1, args.pairs + 1)
            ]
            seconds = [r["seconds"] for r in records]
            per_shape["x".join(map(str, shape))] = {
                "seconds_per_volume_median": float(np.median(seconds)),
                "seconds_per_volume_mean": float(np.mean(seconds)),
                "seconds": [round(s, 3) for s in seconds],
                "ncc_before": [round(r["ncc_before"], 4) for r in records],
                "ncc_after": [round(r["ncc_after"], 4) for r in records],
                "status": [r["status"] for r in records],
            }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
