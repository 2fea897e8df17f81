"""Speed and memory of the healthy-persona DDPM: training volumes/s and DDIM sampling s/case.

Prints one JSON object. Trains ``--steps`` optimizer steps with ``train_ddpm`` (EMA, clipping, bf16
autocast on CUDA) on random smooth volumes, then samples ``--sample-batch`` cases with DDIM
(``--sample-steps``, default 50) in one batch. Peak memory: ``torch.cuda.max_memory_allocated`` on
GPU, the process's max RSS (``resource.getrusage``) on CPU. Not a test: numbers depend on the machine
and its load.

Example::

    python benchmarks/persona.py --shape 16 64 64 --channels 16 32 64 --batch 4 --device cpu --steps 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import gaussian_filter

from radpersona.persona.sample import sample_personas
from radpersona.persona.train import train_ddpm
from radpersona.progress import configure_logging
from radpersona.settings import PersonaModelSettings, PersonaSampleSettings
from radpersona.vocabulary import PredictionType


def smooth_volumes(n: int, views: int, shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Random smooth volumes in [0, 1] (Gaussian-filtered noise), float32 (n, views, *shape)."""
    rng = np.random.default_rng(seed)
    vols = gaussian_filter(rng.normal(size=(n, views, *shape)), sigma=(0, 0, 1.5, 3, 3))
    vols = (vols - vols.min()) / (vols.max() - vols.min())
    return vols.astype(np.float32)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", type=int, nargs=3, default=[16, 64, 64], metavar=("D", "H", "W"))
    parser.add_argument("--channels", type=int, nargs="+", default=[16, 32, 64])
    parser.add_argument("--norm-groups", type=int, default=8)
    parser.add_argument("--views", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4, help="training batch size")
    parser.add_argument("--steps", type=int, default=10, help="training steps to time")
    parser.add_argument("--sample-steps", type=int, default=50, help="DDIM steps")
    parser.add_argument("--sample-batch", type=int, default=8, help="cases sampled, in one batch")
    parser.add_argument(
        "--prediction-type",
        default="sample",
        choices=[p.value for p in PredictionType],
        help="what the U-Net predicts (config persona.prediction_type; does not change the cost)",
    )
    parser.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args(argv)
    configure_logging()  # progress lines to stderr
    if args.threads:
        torch.set_num_threads(args.threads)
    shape = tuple(args.shape)
    config = {
        "box": [0.5, 0.3, 0.5],
        "train_masks": "mixed",
        "prediction_type": args.prediction_type,
        "num_train_timesteps": 1000,
        "beta_start": 1.0e-4,
        "beta_end": 2.0e-2,
        "intensity_range": [0.0, 1.0],
        "unet": {
            "channels": args.channels,
            "attention_levels": [False] * len(args.channels),
            "num_res_blocks": 1,
            "norm_num_groups": args.norm_groups,
        },
        "train": {
            "steps": args.steps,
            "batch_size": args.batch,
            "learning_rate": 2.0e-4,
            "weight_decay": 0.0,
            "ema_decay": 0.995,
            "grad_clip": 1.0,
            "checkpoint_every": 10**9,
            "seed": 1,
        },
        "device": args.device,
    }
    volumes = smooth_volumes(max(args.batch, args.sample_batch), args.views, shape, seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = Path(tmp) / "bench.pt"
        # one warm-up step (allocator, kernel selection, lazy imports) is not timed
        warm_up = PersonaModelSettings.from_config({**config, "train": {**config["train"], "steps": 1}})
        train_ddpm(volumes, settings=warm_up, checkpoint=checkpoint)
        checkpoint.unlink()
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        summary = train_ddpm(volumes, settings=PersonaModelSettings.from_config(config), checkpoint=checkpoint)
        sample = PersonaSampleSettings.from_config(
            {"sampler": "ddim", "steps": args.sample_steps, "batch_size": args.sample_batch, "seed": 0}
        )
        start = time.perf_counter()
        sample_personas(
            volumes[: args.sample_batch],
            checkpoint=checkpoint,
            sample=sample,
            box=config["box"],
            seeds=list(range(args.sample_batch)),
            device=args.device,
        )
        sample_seconds = time.perf_counter() - start
    on_gpu = summary["device"].startswith("cuda")
    result = {
        "device": summary["device"],
        "gpu": torch.cuda.get_device_name() if on_gpu else None,
        "cpu": platform.processor() or platform.machine(),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
        "shape": list(shape),
        "views": args.views,
        "channels": args.channels,
        "prediction_type": args.prediction_type,
        "train_batch": args.batch,
        "train_steps": args.steps,
        "train_seconds_per_step": summary["seconds"] / args.steps,
        "train_steps_per_second": summary["steps_per_second"],
        "train_volumes_per_second": summary["steps_per_second"] * args.batch,
        "sample_steps": args.sample_steps,
        "sample_batch": args.sample_batch,
        "sample_seconds_per_case": sample_seconds / args.sample_batch,
        "peak_memory_mib": (
            torch.cuda.max_memory_allocated() / 2**20
            if on_gpu
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        ),
        "peak_memory_kind": "cuda.max_memory_allocated" if on_gpu else "max_rss",
        "autocast": "bf16" if on_gpu else None,
    }
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return result


if __name__ == "__main__":
    main()
