"""Speed and parity of the batched radiomics engine against PyRadiomics 3.1, fastrad and flash-radiomics.

One patient = 3 views x 2 images (e.g. the scan and its residual), each a 32x128x128 volume; features
are computed on a 3x3x3 grid of patches over the central box (50% depth x 30% height x 50% width,
16x38x64 voxels, patches about 5x12x21): intensity and texture families over every patch voxel, the
shape family over the patch's Otsu tissue mask. Every engine gets the same 162 patches and masks, one
thread each, and is timed per patient (wall and process CPU time, minimum over repeats; the engines take
turns round by round, so that changes in the machine's load reach them alike); its features are compared
with PyRadiomics' feature by feature (the deviation measure is stated in the output). Prints one JSON
object. It measures the ``radpersona`` of the checkout that holds it (a worktree's own, not the installed one).

    python benchmarks/radiomics.py [--engines ours,pyradiomics,fastrad,flash_radiomics] [--repeats 7]
        [--reference-repeats 5] [--peer-repeats 1] [--threads 1] [--per-family] [--device cuda --patients 64]
        [--extrapolate-to 1370]

The peers are optional installs for this benchmark only (``pip install fastrad flash-radiomics``;
flash-radiomics also imports h5py at run time); an engine that is not installed is reported as skipped.
``--patients N`` times this engine on N patients' patches at once (a throughput measurement, e.g. on a
GPU; at most 4 distinct synthetic patients, repeated); the other engines always run on one patient.
``--extrapolate-to N`` adds this engine's time for N patients at the measured rate (e.g. the cohort on a GPU:
``--engines ours --device cuda --patients 64 --extrapolate-to 1370``; ``benchmarks/gpu.sh`` runs that).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def _early_threads(argv: list[str]) -> int:
    """The ``--threads`` value, read before numpy and torch are imported (their pools size themselves then)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--threads", type=int, default=1)
    return max(1, parser.parse_known_args(argv)[0].threads)


THREADS = _early_threads(sys.argv[1:])
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

# This file is named like PyRadiomics' package; keep its folder off the import path. The checkout that holds this
# file comes first, so that a worktree measures its own radpersona, not the one the environment was installed from.
sys.path = [str(Path(__file__).resolve().parent.parent)] + [
    p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent
]

import importlib.metadata  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402
from skimage.filters import threshold_otsu  # noqa: E402

import radpersona  # noqa: E402
from radpersona.radiomics import ALL_FAMILIES, extract_features, feature_names  # noqa: E402

TEXTURE_FAMILIES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
ENGINES = ("ours", "pyradiomics", "fastrad", "flash_radiomics")
#: Relative deviation |a - b| / (|b| + DEV_FLOOR): relative for |b| >> 1e-3; <= 1e-6 exactly when
#: |a - b| <= 1e-6 |b| + 1e-9, the parity tests' criterion.
DEV_FLOOR = 1e-3

Patches = tuple[list[np.ndarray], list[np.ndarray]]


def synthetic_volume(rng: np.random.Generator, shape=(32, 128, 128)) -> np.ndarray:
    """An MRI-like volume: smooth tissue blobs on a dark background with Rician-like noise."""
    base = gaussian_filter(rng.random(shape), sigma=(2, 6, 6))
    base = (base - base.min()) / (base.max() - base.min())
    tissue = np.where(base > 0.45, 300 + 900 * base, 40 * base)
    noisy = np.abs(tissue + rng.normal(0, 25, shape) + 1j * rng.normal(0, 25, shape))
    return noisy.round()


def patches(volume: np.ndarray) -> Patches:
    """27 patches of the central box and their Otsu tissue masks (threshold of the whole volume)."""
    z, y, x = volume.shape
    box = (
        slice(z // 4, z // 4 + z // 2),
        slice(int(y * 0.35), int(y * 0.35) + int(round(y * 0.3))),
        slice(x // 4, x // 4 + x // 2),
    )
    sub = volume[box]
    tissue = sub > threshold_otsu(volume)
    edges = [np.linspace(0, n, 4).round().astype(int) for n in sub.shape]
    imgs, masks = [], []
    for i in range(3):
        for j in range(3):
            for k in range(3):
                sl = tuple(slice(e[a], e[a + 1]) for e, a in zip(edges, (i, j, k)))
                imgs.append(sub[sl])
                masks.append(tissue[sl])
    return imgs, masks


def patient(rng: np.random.Generator) -> Patches:
    """The 162 patches (3 views x 2 images x 27) of one synthetic patient."""
    imgs, masks = [], []
    for _ in range(6):
        i, m = patches(synthetic_volume(rng))
        imgs += i
        masks += m
    return imgs, masks


# --- engines: each computes texture + intensity on whole patches and shape on tissue masks ---------------------------
# and returns a DataFrame with this project's column names ({family}_{Feature}, NaN where the engine gives nothing).


def _split(families: Sequence[str]) -> tuple[list[str], bool]:
    """The texture/intensity families among ``families`` and whether shape is one of them."""
    return [f for f in families if f != "shape"], "shape" in families


def run_ours(
    imgs, masks, families=ALL_FAMILIES, *, device: str = "cpu", dtype: str = "float64", backend: str = "torch"
) -> pd.DataFrame:
    """This engine (or, with ``backend="pyradiomics"``, PyRadiomics 3.1 through the same interface)."""
    texture_fams, with_shape = _split(families)
    parts = []
    if texture_fams:
        full = [np.ones(m.shape, bool) for m in masks]
        parts.append(extract_features(imgs, full, families=texture_fams, backend=backend, device=device, dtype=dtype))
    if with_shape:
        parts.append(extract_features(imgs, masks, families=("shape",), backend=backend, device=device, dtype=dtype))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return pd.DataFrame(np.hstack([p.to_numpy() for p in parts]), columns=[c for p in parts for c in p.columns])


def _normalised(name: str) -> str:
    """Feature name without case, underscores and ordinal suffixes: 10th_percentile == 10Percentile."""
    return name.lower().replace("_", "").replace("10th", "10").replace("90th", "90")


def _by_normalised_name() -> dict[tuple[str, str], str]:
    return {(col.split("_", 1)[0], _normalised(col.split("_", 1)[1])): col for col in feature_names(ALL_FAMILIES)}


def run_fastrad(imgs, masks, families=ALL_FAMILIES) -> pd.DataFrame:
    """fastrad 1.x (torch, one ROI per call): ``FeatureExtractor(FeatureSettings(...)).extract(image, mask)``."""
    from fastrad import FeatureExtractor, FeatureSettings, Mask, MedicalImage

    logging.getLogger("fastrad").setLevel(logging.ERROR)
    texture_fams, with_shape = _split(families)
    jobs = []  # (extractor, use the tissue mask)
    if texture_fams:
        jobs.append(
            (FeatureExtractor(FeatureSettings(feature_classes=texture_fams, bin_width=25.0, device="cpu")), False)
        )
    if with_shape:
        jobs.append((FeatureExtractor(FeatureSettings(feature_classes=["shape"], bin_width=25.0, device="cpu")), True))
    ours = _by_normalised_name()
    rows = []
    for img, mask in zip(imgs, masks):
        image = MedicalImage(torch.from_numpy(np.asarray(img, dtype=np.float64)), spacing=(1.0, 1.0, 1.0))
        row: dict[str, float] = {}
        for extractor, tissue in jobs:
            roi = mask if tissue else np.ones(mask.shape, bool)
            try:
                out = extractor.extract(image, Mask(torch.from_numpy(roi.astype(np.float32)), spacing=(1.0, 1.0, 1.0)))
            except (ValueError, RuntimeError):  # empty mask
                continue
            for key, value in out.items():
                family, name = key.split(":", 1)
                col = ours.get((family, _normalised(name)))
                if col is not None:
                    row[col] = float(value)
        rows.append(row)
    return pd.DataFrame(rows, dtype="float64")


def run_flash_radiomics(imgs, masks, families=ALL_FAMILIES, *, hdf5_dir: str) -> pd.DataFrame:
    """flash-radiomics 1.x (C library behind a PyRadiomics-like extractor, one ROI per call, writes HDF5 per call)."""
    import SimpleITK as sitk
    from flash_radiomics.featureextractor import RadiomicsFeatureExtractor

    logging.getLogger("flash_radiomics").setLevel(logging.ERROR)
    settings = dict(
        binWidth=25.0,
        voxelArrayShift=0.0,
        distances=[1],
        symmetricalGLCM=True,
        gldm_a=0,
        label=1,
        minimumROIDimensions=1,
        additionalInfo=False,
        segmentClassWorkers=1,
        hdf5OutputDirectory=hdf5_dir,
    )
    texture_fams, with_shape = _split(families)
    extractors = {}  # {use the tissue mask: extractor}
    for tissue, fams in ((False, texture_fams), (True, ["shape"] if with_shape else [])):
        if fams:
            ex = RadiomicsFeatureExtractor(backend="cpu", num_threads=THREADS, **settings)
            ex.disableAllFeatures()
            ex.enableFeaturesByName(**{f: [c.split("_", 1)[1] for c in feature_names((f,))] for f in fams})
            extractors[tissue] = ex
    keep = []  # its preprocessing cache is keyed by id(image): keep every image alive so ids stay unique
    rows = []
    for img, mask in zip(imgs, masks):
        image = sitk.GetImageFromArray(np.asarray(img, dtype=np.float64))
        row: dict[str, float] = {}
        for tissue, extractor in extractors.items():
            roi = mask if tissue else np.ones(mask.shape, bool)
            label = sitk.GetImageFromArray(roi.astype(np.uint8))
            keep += [image, label]
            try:
                out = extractor.execute(image, label)
            except (ValueError, RuntimeError):  # empty mask or single voxel
                continue
            row.update({k[len("original_") :]: float(v) for k, v in out.items() if k.startswith("original_")})
        rows.append(row)
    return pd.DataFrame(rows, dtype="float64")


# --- timing and parity ------------------------------------------------------------------------------------------------


def time_once(fn: Callable[[], pd.DataFrame]) -> tuple[float, float, pd.DataFrame]:
    """(wall, process CPU) seconds of one call, and its result.

    CPU time is less sensitive than wall time to other jobs competing for the cores; with one thread both
    measure the same single-threaded work on an idle machine.
    """
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - start, time.process_time() - cpu, result


def deviation(values: pd.DataFrame, reference: pd.DataFrame) -> dict[str, object]:
    """Largest deviation |a - b| / (|b| + DEV_FLOOR) from PyRadiomics (b) over the features both compute."""
    cols = [c for c in reference.columns if c in values.columns and values[c].notna().any()]
    a = values[cols].to_numpy(dtype=np.float64)
    b = reference[cols].to_numpy(dtype=np.float64)
    both = np.isfinite(a) & np.isfinite(b)
    dev = np.where(both, np.abs(a - b) / (np.abs(b) + DEV_FLOOR), 0.0)
    rel = np.where(both, np.abs(a - b) / np.maximum(np.abs(b), 1e-12), 0.0)
    k, c = np.unravel_index(int(np.argmax(dev)), dev.shape)
    kr, cr = np.unravel_index(int(np.argmax(rel)), rel.shape)
    worst = dev.max(0)  # per feature
    return {
        "features_compared": len(cols),
        "features_within_1e-6": int((worst <= 1e-6).sum()),
        "features_beyond_1e-3": sorted(col for col, w in zip(cols, worst) if w > 1e-3),
        "max_rel_dev": float(f"{dev[k, c]:.3g}"),
        "max_rel_dev_at": f"{cols[c]} (patch {k}: {float(a[k, c])!r} vs {float(b[k, c])!r})",
        "max_pure_rel_dev": float(f"{rel[kr, cr]:.3g}"),
        "max_pure_rel_dev_at": f"{cols[cr]} (patch {kr}: {float(a[kr, cr])!r} vs {float(b[kr, cr])!r})",
        "cells_nan_here_not_in_pyradiomics": int((~np.isfinite(a) & np.isfinite(b)).sum()),
        "cells_nan_in_pyradiomics_not_here": int((np.isfinite(a) & ~np.isfinite(b)).sum()),
    }


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def _engine_version(engine: str, dist: str) -> str | None:
    """The installed version; this engine's own when run from a source tree that is not installed (PYTHONPATH)."""
    if engine == "ours":
        return _version(dist) or radpersona.__version__
    return _version(dist)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _per_family(fn: Callable[[Sequence[str]], object], repeats: int) -> dict[str, float]:
    """CPU seconds per patient of each family alone."""
    out = {}
    for fam in ("firstorder", "shape", *TEXTURE_FAMILIES[1:]):
        cpus = []
        for _ in range(repeats):
            cpu = time.process_time()
            fn((fam,))
            cpus.append(time.process_time() - cpu)
        out[fam] = round(min(cpus), 4)
    return out


@dataclass
class Setup:
    """What a worker needs to build its engine's call (picklable, for worker processes)."""

    engine: str
    patients: int
    device: str
    dtype: str
    threads: int
    repeats: int  # of the per-family timings
    hdf5_dir: str


def _engine_calls(setup: Setup) -> tuple[Callable[[], pd.DataFrame], Callable[[Sequence[str]], pd.DataFrame]]:
    """(the timed call, families -> DataFrame on one patient) of one engine, with its data built here."""
    rng = np.random.default_rng(7)
    pool = [patient(rng) for _ in range(min(setup.patients, 4))]
    imgs, masks = pool[0]
    if setup.engine == "ours":
        big_imgs = [im for k in range(setup.patients) for im in pool[k % len(pool)][0]]
        big_masks = [m for k in range(setup.patients) for m in pool[k % len(pool)][1]]
        run_ours(imgs[:4], masks[:4], device=setup.device, dtype=setup.dtype)  # warm-up
        return (
            lambda: run_ours(big_imgs, big_masks, device=setup.device, dtype=setup.dtype),
            lambda f: run_ours(imgs, masks, f, device=setup.device, dtype=setup.dtype),
        )
    if setup.engine == "pyradiomics":
        import SimpleITK as sitk

        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(setup.threads)  # PyRadiomics crops and checks with ITK

    def one_patient(families: Sequence[str]) -> pd.DataFrame:
        if setup.engine == "pyradiomics":
            return run_ours(imgs, masks, families, backend="pyradiomics")
        if setup.engine == "fastrad":
            return run_fastrad(imgs, masks, families)
        return run_flash_radiomics(imgs, masks, families, hdf5_dir=setup.hdf5_dir)

    return (lambda: one_patient(ALL_FAMILIES)), one_patient


def worker(conn: Connection, setup: Setup) -> None:
    """One engine in its own process (as in real use, and so that no engine's memory use, e.g. a C library's
    allocations, slows another): answers "run" with (wall, CPU) seconds of one timed call, "frame" with the last
    result, "families" with per-family CPU seconds, and "stop"."""
    torch.set_num_threads(setup.threads)
    warnings.filterwarnings("ignore", category=UserWarning)  # fastrad warns about anisotropy, flash about sizes
    try:
        call, per_family = _engine_calls(setup)
    except ImportError as err:
        conn.send(("error", f"not importable: {err}"))
        return
    conn.send(("ready", None))
    frame = pd.DataFrame()
    while True:
        message = conn.recv()
        if message == "run":
            wall, cpu, frame = time_once(call)
            conn.send((wall, cpu))
        elif message == "frame":
            conn.send(frame)
        elif message == "families":
            conn.send(_per_family(per_family, setup.repeats))
        else:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default=",".join(ENGINES), help=f"comma-separated, any of {ENGINES}")
    parser.add_argument("--device", default="cpu", help="this engine's torch device (the others run on the CPU)")
    parser.add_argument("--dtype", default=None, help="float64 on CPU, float32 on CUDA by default")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of this engine (minimum reported)")
    parser.add_argument("--reference-repeats", type=int, default=5, help="timed runs of PyRadiomics (minimum reported)")
    parser.add_argument("--peer-repeats", type=int, default=1, help="timed runs of fastrad and flash-radiomics")
    parser.add_argument("--threads", type=int, default=1, help="threads of every engine (torch, BLAS, OpenMP, ITK)")
    parser.add_argument("--patients", type=int, default=1, help="patients in this engine's batch (throughput)")
    parser.add_argument("--per-family", action="store_true", help="also time each family alone (CPU s/patient)")
    parser.add_argument("--skip-pyradiomics", action="store_true", help="same as leaving pyradiomics out of --engines")
    parser.add_argument(
        "--extrapolate-to",
        type=int,
        default=None,
        metavar="N",
        help="also report this engine's seconds for N patients (x 162 patches) at the measured rate",
    )
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = sorted(set(engines) - set(ENGINES))
    if unknown:
        parser.error(f"unknown engines {unknown}; known: {list(ENGINES)}")
    if args.skip_pyradiomics and "pyradiomics" in engines:
        engines.remove("pyradiomics")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error(f"--device {args.device}: CUDA is not available here (torch {torch.__version__})")
    if min(args.patients, args.repeats, args.reference_repeats, args.peer_repeats) < 1:
        parser.error("--patients and the repeat counts must be positive")
    if args.extrapolate_to is not None and args.extrapolate_to < 1:
        parser.error("--extrapolate-to must be positive")
    dtype = args.dtype or ("float32" if args.device.startswith("cuda") else "float64")
    dists = {"ours": "radpersona", "pyradiomics": "pyradiomics-bhklab", "fastrad": "fastrad"}
    dists["flash_radiomics"] = "flash-radiomics"
    repeats = {"ours": args.repeats, "pyradiomics": args.reference_repeats}

    load_start = [round(v, 2) for v in os.getloadavg()]
    hdf5_dir = tempfile.TemporaryDirectory(prefix="flashrad_")
    context = multiprocessing.get_context("spawn")
    report: dict[str, dict[str, object]] = {}
    workers: dict[str, tuple[object, Connection]] = {}
    for name in [e for e in ENGINES if e in engines]:
        if _engine_version(name, dists[name]) is None:
            report[name] = {"skipped": "not installed"}
            continue
        setup = Setup(
            engine=name,
            patients=args.patients if name == "ours" else 1,
            device=args.device if name == "ours" else "cpu",
            dtype=dtype if name == "ours" else "float64",
            threads=args.threads,
            repeats=repeats.get(name, 1),
            hdf5_dir=hdf5_dir.name,
        )
        parent, child = context.Pipe()
        process = context.Process(target=worker, args=(child, setup), daemon=True)
        process.start()
        status, detail = parent.recv()
        if status != "ready":
            report[name] = {"skipped": detail}
            process.join()
            continue
        workers[name] = (process, parent)
        report[name] = {"version": _engine_version(name, dists[name]), "threads": args.threads}
    # the engines take turns, so that changes in the machine's load reach them alike; minima over the rounds
    walls: dict[str, list[float]] = {name: [] for name in workers}
    cpus: dict[str, list[float]] = {name: [] for name in workers}
    for round_ in range(max([repeats.get(n, args.peer_repeats) for n in workers], default=0)):
        for name, (_, conn) in workers.items():
            if round_ < repeats.get(name, args.peer_repeats):
                conn.send("run")
                wall, cpu = conn.recv()
                walls[name].append(wall)
                cpus[name].append(cpu)
    frames: dict[str, pd.DataFrame] = {}
    for name, (process, conn) in workers.items():
        entry = report[name]
        scale = args.patients if name == "ours" else 1
        wall, cpu = min(walls[name]) / scale, min(cpus[name]) / scale
        conn.send("frame")
        frames[name] = conn.recv().iloc[:162].reset_index(drop=True)
        if name == "ours":
            entry.update(device=args.device, dtype=dtype, patients_per_s=round(1.0 / wall, 3))
            if args.device.startswith("cuda"):
                entry["gpu"] = torch.cuda.get_device_name()
            if args.extrapolate_to is not None:
                entry["extrapolated"] = {
                    "patients": args.extrapolate_to,
                    "patches": args.extrapolate_to * len(frames[name]),
                    "seconds": round(wall * args.extrapolate_to, 2),
                    "from": f"the minimum over {len(walls[name])} timed runs of {args.patients} patients at once",
                }
        entry.update(s_per_patient=round(wall, 4), cpu_s_per_patient=round(cpu, 4), timed_runs=len(cpus[name]))
        if args.per_family:
            conn.send("families")
            entry["per_family_cpu_s"] = conn.recv()
        conn.send("stop")
        process.join()
    hdf5_dir.cleanup()

    ref = report.get("pyradiomics", {})
    for name, entry in report.items():
        if "skipped" in entry or "skipped" in ref or not ref:
            continue
        entry["speedup_vs_pyradiomics"] = round(float(ref["s_per_patient"]) / float(entry["s_per_patient"]), 2)
        entry["speedup_cpu_vs_pyradiomics"] = round(
            float(ref["cpu_s_per_patient"]) / float(entry["cpu_s_per_patient"]), 2
        )
        if name != "pyradiomics":
            entry.update(deviation(frames[name], frames["pyradiomics"]))
    timed_peers = [report[p] for p in ("fastrad", "flash_radiomics") if p in report and "skipped" not in report[p]]
    if "ours" in report and "skipped" not in report["ours"] and timed_peers:
        ours_cpu = float(report["ours"]["cpu_s_per_patient"])
        result_ahead = all(ours_cpu < float(p["cpu_s_per_patient"]) for p in timed_peers)
    else:
        result_ahead = None
    imgs, _ = patient(np.random.default_rng(7))
    result = {
        "patients": args.patients,
        "patches_per_patient": len(imgs),
        "patch_shape_example": list(imgs[0].shape),
        "families": ["firstorder", "shape", *TEXTURE_FAMILIES[1:]],
        "threads": args.threads,
        "cpu": _cpu_model(),
        "load_average": {"start": load_start, "end": [round(v, 2) for v in os.getloadavg()]},
        "ours_ahead_of_timed_peers_cpu": result_ahead,
        "deviation_definition": (
            f"max over patches and shared features of |a - b| / (|b| + {DEV_FLOOR:g}), b = PyRadiomics: relative "
            "for |b| >> 1e-3, <= 1e-6 exactly when |a - b| <= 1e-6 |b| + 1e-9 (the parity tests' criterion); "
            "max_pure_rel_dev uses |a - b| / max(|b|, 1e-12)"
        ),
        "engines": report,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
