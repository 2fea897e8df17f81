"""Speed of the batched radiomics engine against PyRadiomics 3.1 for one patient's 162 patches.

One patient = 3 views x 2 images (e.g. the scan and its residual), each a 32x128x128 volume; features
are computed on a 3x3x3 grid of patches over the central box (50% depth x 30% height x 50% width,
16x38x64 voxels, patches about 5x12x21): intensity and texture families over every patch voxel, the
shape family over the patch's Otsu tissue mask. Prints one JSON object.

    python benchmarks/radiomics.py [--device cuda] [--repeats 3] [--skip-pyradiomics]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# This file is named like PyRadiomics' package; keep its folder off the import path.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.ndimage import gaussian_filter  # noqa: E402
from skimage.filters import threshold_otsu  # noqa: E402

from radpersona.radiomics import extract_features  # noqa: E402

TEXTURE_FAMILIES = ("firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")


def synthetic_volume(rng: np.random.Generator, shape=(32, 128, 128)) -> np.ndarray:
    """An MRI-like volume: smooth tissue blobs on a dark background with Rician-like noise."""
    base = gaussian_filter(rng.random(shape), sigma=(2, 6, 6))
    base = (base - base.min()) / (base.max() - base.min())
    tissue = np.where(base > 0.45, 300 + 900 * base, 40 * base)
    noisy = np.abs(tissue + rng.normal(0, 25, shape) + 1j * rng.normal(0, 25, shape))
    return noisy.round()


def patches(volume: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
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


def run(imgs, masks, backend: str, device: str, dtype: str) -> tuple[float, float]:
    """(wall, process CPU) seconds for one patient: texture + intensity on whole patches, shape on tissue masks.

    The CPU time is less sensitive than the wall time to other jobs competing for the cores (with one
    torch thread both measure the same single-threaded work on an idle machine).
    """
    full = [np.ones(m.shape, bool) for m in masks]
    start, cpu = time.perf_counter(), time.process_time()
    extract_features(imgs, full, families=TEXTURE_FAMILIES, backend=backend, device=device, dtype=dtype)
    extract_features(imgs, masks, families=("shape",), backend=backend, device=device, dtype=dtype)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default=None, help="float64 on CPU, float32 on CUDA by default")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-pyradiomics", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dtype = args.dtype or ("float32" if args.device.startswith("cuda") else "float64")
    rng = np.random.default_rng(7)
    imgs, masks = [], []
    for _ in range(6):  # 3 views x 2 images
        i, m = patches(synthetic_volume(rng))
        imgs += i
        masks += m
    run(imgs[:4], masks[:4], "torch", args.device, dtype)  # warm-up
    runs = [run(imgs, masks, "torch", args.device, dtype) for _ in range(args.repeats)]
    ours = min(r[0] for r in runs)
    ours_cpu = min(r[1] for r in runs)
    result = {
        "patches": len(imgs),
        "patch_shape_example": list(imgs[0].shape),
        "families": ["firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm"],
        "device": args.device,
        "dtype": dtype,
        "torch_threads": torch.get_num_threads(),
        "ours_s_per_patient": round(ours, 4),
        "ours_patients_per_s": round(1.0 / ours, 3),
        "ours_cpu_s_per_patient": round(ours_cpu, 4),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "cpu": platform.processor() or platform.machine(),
    }
    if args.device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    if not args.skip_pyradiomics:
        ref, ref_cpu = run(imgs, masks, "pyradiomics", "cpu", "float64")
        result["pyradiomics_s_per_patient"] = round(ref, 4)
        result["pyradiomics_cpu_s_per_patient"] = round(ref_cpu, 4)
        result["speedup"] = round(ref / ours, 2)
        result["speedup_cpu"] = round(ref_cpu / ours_cpu, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
