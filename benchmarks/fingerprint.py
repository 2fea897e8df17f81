"""Seconds per training epoch of the radiomic fingerprint model on random data; prints JSON.

Examples::

    # paper scale on a GPU (MRNet-sized training set, 2x2x2 patches x 3 views x 2 images x 38 ...)
    python benchmarks/fingerprint.py --device cuda
    # CPU demo scale (config.yaml's fold: about 27 cases, 16x48x48, 1,824 features), both memory layouts
    python benchmarks/fingerprint.py --device cpu --n-cases 27 --shape 16 48 48 --widths 8 16 32 64 \
        --n-features 1824 --epochs 6 --threads 2 --layouts default contiguous

``--layouts``: ``default`` is the pipeline's layout (:func:`radpersona.device.memory_format`: channels_last_3d on
the CPU, contiguous on CUDA); ``contiguous`` forces PyTorch's default layout, as a user's plain training loop
has it. Each layout trains the same seeded model on the same data, one after the other in this run, after a
one-epoch warm-up in that layout.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import numpy as np
import torch

import radpersona.device
from radpersona.fingerprint import fit_fingerprint
from radpersona.settings import FingerprintSettings


def _names(n: int) -> list[str]:
    views = ("sagittal", "coronal", "axial")
    return [f"{views[i % 3]}.original.p000.firstorder.F{i}" for i in range(n)]


def main() -> None:
    """Parse arguments, train for ``--epochs`` epochs on random data and print timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-cases", type=int, default=1130)
    parser.add_argument("--shape", type=int, nargs=3, default=[32, 128, 128], metavar=("D", "H", "W"))
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--n-features", type=int, default=6156)
    parser.add_argument("--widths", type=int, nargs=4, default=[64, 128, 256, 512])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=2, help="the first epoch includes warm-up")
    parser.add_argument("--device", default="auto", help="cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch default)")
    parser.add_argument(
        "--layouts", nargs="+", choices=("default", "contiguous"), default=["default"], help="memory layouts to time"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    images = rng.standard_normal((args.n_cases, args.views, *args.shape), dtype=np.float32)
    X = rng.standard_normal((args.n_cases, args.n_features))
    y = (np.arange(args.n_cases) % 3 == 0).astype(np.int64)
    data_seconds = time.perf_counter() - start
    settings = FingerprintSettings.from_config(
        {
            "representation": "path_persona",
            "usage_predictor": True,
            "usage_threshold": 0.4,
            "lambda_u": 1.0e-3,
            "lambda_beta": 1.0e-3,
            "beta_penalty": "l2",
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "learning_rate": 1.0e-3,
            "dropout": 0.2,
            "resnet_widths": list(args.widths),
            "init_weights": None,
            "folds": 3,
            "inner_validation": 0.2,
            "threshold_every": args.epochs,
            "threshold_protocol": "inner",
            "seed": 3,
            "device": args.device,
            "families": None,
        }
    )
    cuda = args.device != "cpu" and torch.cuda.is_available()
    runs = {}
    pipeline_layout = radpersona.device.memory_format
    for layout in args.layouts:
        if layout == "contiguous":
            radpersona.device.memory_format = lambda dev: torch.contiguous_format  # type: ignore[assignment]
        try:
            # warm-up in this layout (oneDNN / cuDNN build their kernels on first use), then the timed run
            _fit_and_predict(images[:12], X[:12], y[:12], settings.replace(epochs=1, threshold_every=1), cuda)
            runs[layout] = _fit_and_predict(images, X, y, settings, cuda)
        finally:
            radpersona.device.memory_format = pipeline_layout
    shared = {key: runs[args.layouts[0]][key] for key in ("device", "n_inner_train")}  # the same in every layout
    for run in runs.values():
        for key in shared:
            del run[key]
    print(
        json.dumps(
            {
                "benchmark": "fingerprint_training",
                "device": shared["device"],
                "gpu": torch.cuda.get_device_name() if cuda else None,
                "cpu_threads": torch.get_num_threads(),
                "n_cases": args.n_cases,
                "n_inner_train": shared["n_inner_train"],
                "shape": args.shape,
                "views": args.views,
                "n_features": args.n_features,
                "resnet_widths": args.widths,
                "batch_size": args.batch_size,
                "epochs": args.epochs,
                "last_epoch_includes_inner_validation": True,
                "data_generation_seconds": data_seconds,
                "layouts": runs,
                "python": platform.python_version(),
                "torch": torch.__version__,
            },
            indent=1,
        )
    )


def _fit_and_predict(
    images: np.ndarray, X: np.ndarray, y: np.ndarray, settings: FingerprintSettings, cuda: bool
) -> dict[str, object]:
    """Train and predict once; timings, peak GPU memory and features used."""
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    model = fit_fingerprint(images, X, y, feature_names=_names(X.shape[1]), settings=settings)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    pred = model.predict(images, X)
    predict_seconds = time.perf_counter() - start
    epochs = [h["seconds"] for h in model.history]
    return {
        "device": str(model.device),
        "n_inner_train": int(model.train_index.size),
        "memory_format": str(radpersona.device.memory_format(model.device)),
        "seconds_per_epoch": epochs,
        "seconds_per_epoch_after_first": statistics.median(epochs[1:]) if len(epochs) > 1 else None,
        "fit_seconds": fit_seconds,
        "predict_seconds_all_cases": predict_seconds,
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "mean_n_used": float(pred["n_used"].mean()),
    }


if __name__ == "__main__":
    main()
