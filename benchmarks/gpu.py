"""GPU measurements of the pipeline's networks, and the one JSON of ``benchmarks/gpu.sh``.

``measure`` times, through the code paths the pipeline runs (``train_ddpm``, ``sample_personas`` and the
fingerprint's training epoch), with the settings of ``config.yaml`` + ``presets/paper.yaml``:

* DDPM training: volumes/s (a volume is one case, its views as channels) over ``--train-steps`` optimizer
  steps of ``train_ddpm`` after a separate warm-up run of ``--warmup-steps``; bf16 autocast on CUDA as in
  training; the loop's own timer (it synchronises every step, reading the loss);
* DDIM sampling: volumes/s of ``sample_personas`` on one batch of ``persona.sample.batch_size`` cases with
  ``persona.sample.steps`` (50) steps, after a 2-step warm-up call on the same batch;
* the usage predictor's training epoch: seconds per Adam step of the fingerprint network (ResNet-18 at
  ``fingerprint.resnet_widths``, the views as channels) over ``--fp-steps`` steps on a small pool of random
  cases, extrapolated to one epoch over the inner-training part of ``--fp-cases`` (1,130, MRNet's training
  exams); the inner validation run every ``threshold_every`` epochs is not included.

Peak memory: ``torch.cuda.max_memory_allocated`` per measurement (reset before it) on CUDA, the process's
max RSS on the CPU. ``--device cpu --tiny`` runs every measurement on a tiny shape for a couple of steps,
to check the code runs without a GPU. Prints one JSON object.

``combine`` merges the parts that ``gpu.sh`` ran (CUDA tests, radiomics on CUDA, ``measure``) into one JSON
with the goals checked.

    # from the repository root, with the package importable (gpu.sh sets PYTHONPATH to the repository)
    python benchmarks/gpu.py measure [--device cuda] [--tiny] [--config config.yaml presets/paper.yaml]
    python benchmarks/gpu.py combine WORKDIR --out gpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: Goals on one H200 (issue 15): (part, key path, comparison, value).
GOALS: dict[str, tuple[str, tuple[str, ...], str, float]] = {
    "radiomics_1370_patients_seconds": ("radiomics", ("engines", "ours", "extrapolated", "seconds"), "<", 60.0),
    "ddpm_train_volumes_per_second": ("models", ("ddpm_train", "volumes_per_second"), ">=", 60.0),
    "ddim_sample_volumes_per_second": ("models", ("ddim_sample", "volumes_per_second"), ">=", 4.6),
}

#: The parts gpu.sh runs, in order; each leaves NAME.rc, NAME.log and (radiomics, models) NAME.json.
PARTS = ("tests", "radiomics", "models")


# --- measure ----------------------------------------------------------------------------------------------------------


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> dict[str, Any]:
    import torch

    if device.startswith("cuda"):
        return {"peak_memory_mib": round(torch.cuda.max_memory_allocated() / 2**20, 1), "peak_memory_kind": "cuda"}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"peak_memory_mib": round(rss, 1), "peak_memory_kind": "max_rss of the process (CPU)"}


def smooth_volumes(n: int, views: int, shape: tuple[int, int, int], seed: int):
    """Random smooth volumes in [0, 1] (Gaussian-filtered noise), float32 (n, views, *shape)."""
    import numpy as np
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    vols = gaussian_filter(rng.normal(size=(n, views, *shape)).astype(np.float32), sigma=(0, 0, 1.5, 3, 3))
    vols = (vols - vols.min()) / (vols.max() - vols.min())
    return vols.astype(np.float32)


def measure_ddpm(persona: Any, shape: tuple[int, int, int], views: int, device: str, args: argparse.Namespace):
    """DDPM training and DDIM sampling volumes/s and peak memory (two entries of the JSON)."""
    from radpersona.persona.sample import sample_personas
    from radpersona.persona.train import train_ddpm
    from radpersona.settings import PersonaModelSettings, PersonaSampleSettings

    model_cfg = persona.model.to_config()
    train_cfg = dict(model_cfg["train"])
    train_cfg["checkpoint_every"] = 10**9  # no resume file inside the timed loop
    batch = int(train_cfg["batch_size"])
    sample_cfg = persona.sample.to_config()
    sample_batch = int(sample_cfg["batch_size"])
    if sample_cfg["sampler"] != "ddim":
        raise SystemExit(f"benchmarks/gpu.py: persona.sample.sampler is {sample_cfg['sampler']!r}; this times ddim")
    volumes = smooth_volumes(max(batch, sample_batch), views, shape, seed=0)

    def settings(steps: int) -> PersonaModelSettings:
        return PersonaModelSettings.from_config({**model_cfg, "train": {**train_cfg, "steps": steps}, "device": device})

    with tempfile.TemporaryDirectory() as tmp:
        train_ddpm(volumes, settings=settings(args.warmup_steps), checkpoint=Path(tmp) / "warm.pt")
        _reset_peak(device)
        start = time.perf_counter()
        summary = train_ddpm(volumes, settings=settings(args.train_steps), checkpoint=Path(tmp) / "bench.pt")
        _sync(device)
        call_seconds = time.perf_counter() - start
        train = {
            "batch_size": batch,
            "timed_steps": args.train_steps,
            "warmup_steps": args.warmup_steps,
            "seconds": round(summary["seconds"], 4),
            "seconds_per_step": round(summary["seconds"] / args.train_steps, 5),
            "volumes_per_second": round(args.train_steps * batch / summary["seconds"], 3),
            "seconds_whole_call": round(call_seconds, 3),
            "timer": "train_ddpm's loop (reads the loss every step, which synchronises)",
            **_peak_mib(device),
        }

        def sample(steps: int) -> float:
            settings_ = PersonaSampleSettings.from_config({**sample_cfg, "steps": steps})
            _sync(device)
            begin = time.perf_counter()
            sample_personas(
                volumes[:sample_batch],
                checkpoint=Path(tmp) / "bench.pt",
                sample=settings_,
                box=list(persona.box),
                seeds=list(range(sample_batch)),
                device=device,
            )
            _sync(device)
            return time.perf_counter() - begin

        sample(2)  # warm-up: the same batch, 2 steps
        _reset_peak(device)
        steps = int(sample_cfg["steps"])
        seconds = sample(steps)
        ddim = {
            "sampler": "ddim",
            "steps": steps,
            "batch_size": sample_batch,
            "seconds": round(seconds, 3),
            "seconds_per_case": round(seconds / sample_batch, 4),
            "volumes_per_second": round(sample_batch / seconds, 3),
            "timer": "one sample_personas call (loading the checkpoint included), synchronised",
            **_peak_mib(device),
        }
    return train, ddim


def _feature_names(n: int) -> list[str]:
    views = ("sagittal", "coronal", "axial")
    return [f"{views[i % 3]}.original.p000.firstorder.F{i}" for i in range(n)]


def measure_fingerprint(cfg: Any, shape: tuple[int, int, int], views: int, device: str, args: argparse.Namespace):
    """Seconds per Adam step of the fingerprint network, extrapolated to one epoch of ``--fp-cases`` cases."""
    import numpy as np
    import torch

    from radpersona.fingerprint.splits import batches, inner_validation_split
    from radpersona.fingerprint.train import (
        _build_network,
        _make_optimizer,
        _Objective,
        _run_epoch,
        prepare_training_data,
    )
    from radpersona.settings import FingerprintSettings

    settings = FingerprintSettings.from_config({**cfg.to_config(), "device": device})
    batch = int(settings.batch_size)
    rng = np.random.default_rng(0)
    pool = 2 * batch
    images = rng.standard_normal((pool, views, *shape), dtype=np.float32)
    X = rng.standard_normal((pool, args.n_features))
    y = (np.arange(pool) % 3 == 0).astype(np.int64)
    data = prepare_training_data(
        images, X, y, feature_names=_feature_names(args.n_features), settings=settings, seed=settings.seed
    )
    dev = torch.device(device)
    net, _ = _build_network(settings, data.n_views, data.r.shape[1], settings.seed, dev)
    objective = _Objective(net, data, settings, dev)
    opt = _make_optimizer(net, "adam", settings.learning_rate)
    shuffle = np.random.default_rng(1)

    def steps(k: int) -> float:
        index = rng.integers(0, pool, size=k * batch)
        _sync(device)
        begin = time.perf_counter()
        _run_epoch(net, opt, objective, index, optimizer="adam", batch_size=batch, shuffle=shuffle)
        _sync(device)
        return time.perf_counter() - begin

    steps(args.warmup_steps)
    _reset_peak(device)
    seconds = steps(args.fp_steps)
    per_step = seconds / args.fp_steps
    labels = (np.arange(args.fp_cases) % 3 == 0).astype(np.int64)
    inner_train, _ = inner_validation_split(labels, settings.inner_validation, settings.seed)
    steps_per_epoch = len(batches(inner_train, batch))  # as _run_epoch splits an epoch
    return {
        "resnet_widths": list(settings.resnet_widths),
        "n_features": args.n_features,
        "batch_size": batch,
        "timed_steps": args.fp_steps,
        "warmup_steps": args.warmup_steps,
        "seconds_per_step": round(per_step, 5),
        "cases": args.fp_cases,
        "inner_training_cases": int(inner_train.size),
        "steps_per_epoch": steps_per_epoch,
        "epoch_seconds": round(per_step * steps_per_epoch, 3),
        "epoch_excludes": "the inner validation (every fingerprint.threshold_every epochs)",
        "timer": "fingerprint.train._run_epoch over the timed steps (reads the loss every step), synchronised",
        **_peak_mib(device),
    }


def tiny_overrides(config: dict[str, Any]) -> dict[str, Any]:
    """The config with tiny networks and few steps (a CPU check that the measuring code runs)."""
    from radpersona.settings import deep_merge

    return deep_merge(
        config,
        {
            "preprocess": {"shape": [16, 32, 32]},
            "persona": {
                "unet": {
                    "channels": [8, 16],
                    "attention_levels": [False, False],
                    "num_res_blocks": 1,
                    "norm_num_groups": 4,
                },
                "train": {"batch_size": 2},
                "sample": {"steps": 3, "batch_size": 2},
            },
            "fingerprint": {"resnet_widths": [4, 8, 8, 16], "batch_size": 4},
        },
    )


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from radpersona.settings import Settings, read_config

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"benchmarks/gpu.py: --device {device}, but torch.cuda.is_available() is False")
    if args.tiny:
        args.train_steps, args.warmup_steps, args.fp_steps = min(args.train_steps, 2), 1, min(args.fp_steps, 2)
        args.n_features = min(args.n_features, 64)
    config = read_config(*[REPO / c if not Path(c).is_absolute() else Path(c) for c in args.config])
    settings = Settings.parse(tiny_overrides(config) if args.tiny else config)
    shape = tuple(int(s) for s in settings.preprocess.shape)
    views = args.views
    started = time.perf_counter()
    result: dict[str, Any] = {
        "device": device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "tiny": bool(args.tiny),
        "config": list(args.config),
        "shape": list(shape),
        "views": views,
        "unet": settings.persona.unet.to_config(),
    }
    train, ddim = measure_ddpm(settings.persona, shape, views, device, args)
    result["ddpm_train"] = train
    result["ddim_sample"] = ddim
    result["fingerprint_epoch"] = measure_fingerprint(settings.fingerprint, shape, views, device, args)
    result["seconds"] = round(time.perf_counter() - started, 2)
    return result


# --- combine ----------------------------------------------------------------------------------------------------------


def junit_counts(path: Path) -> dict[str, Any]:
    """passed / failed / errors / skipped and the names of failing tests from a pytest JUnit XML file."""
    root = ET.parse(path).getroot()
    cases = root.iter("testcase")
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    failing: list[str] = []
    for case in cases:
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        if case.find("failure") is not None:
            counts["failed"] += 1
            failing.append(name)
        elif case.find("error") is not None:
            counts["errors"] += 1
            failing.append(name)
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "total": sum(counts.values()), "failing": failing}


def _tail(path: Path, lines: int = 15) -> list[str]:
    try:
        return path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def _dig(obj: Any, keys: tuple[str, ...]) -> Any:
    for key in keys:
        if not isinstance(obj, dict) or key not in obj:
            return None
        obj = obj[key]
    return obj


def combine(work: Path, *, dry_run: bool = False, wall_seconds: float | None = None) -> dict[str, Any]:
    """The one JSON of gpu.sh from its work folder: each part's result, return code, and the goals."""
    import torch

    result: dict[str, Any] = {
        "benchmark": "benchmarks/gpu.sh",
        "dry_run": dry_run,
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "host_cpu_count": os.cpu_count(),
        "wall_seconds": wall_seconds,
    }
    try:
        import monai

        result["monai"] = monai.__version__
    except ImportError:
        result["monai"] = None
    parts: dict[str, Any] = {}
    for name in PARTS:
        rc_file = work / f"{name}.rc"
        entry: dict[str, Any] = {"returncode": int(rc_file.read_text()) if rc_file.exists() else None}
        if rc_file.exists() and entry["returncode"] == 124:
            entry["timed_out"] = True
        if name == "tests":
            files = work / "tests.files"
            entry["files"] = files.read_text().split() if files.exists() else []
            xml = work / "tests.xml"
            if xml.exists():
                entry.update(junit_counts(xml))
        else:
            out = work / f"{name}.json"
            try:
                entry.update(json.loads(out.read_text()))
            except (OSError, ValueError):
                entry["result"] = None
        if entry["returncode"] != 0:
            entry["log_tail"] = _tail(work / f"{name}.log")
        parts[name] = entry
    result["tests"] = parts["tests"]
    result["radiomics"] = parts["radiomics"]
    models = parts["models"]
    result["models"] = models
    goals = {}
    for goal, (part, keys, op, bound) in GOALS.items():
        value = _dig(parts[part], keys)
        met = None
        if isinstance(value, (int, float)) and math.isfinite(value):
            met = value < bound if op == "<" else value >= bound
        goals[goal] = {"value": value, "goal": f"{op} {bound:g}", "met": met, "goal_machine": "one H200"}
    result["goals"] = goals
    tests = parts["tests"]
    result["ok"] = (
        all(parts[p]["returncode"] == 0 for p in PARTS)
        and tests.get("failed", 1) == 0
        and tests.get("errors", 1) == 0
        and tests.get("total", 0) > 0
        and (dry_run or tests.get("skipped", 1) == 0)  # on a GPU a skipped CUDA test did not run
    )
    return result


# --- command line -----------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("measure", help="time DDPM training, DDIM sampling and the usage predictor; print JSON")
    m.add_argument("--device", default="cuda", help="cuda | cuda:K | cpu (default cuda)")
    m.add_argument("--tiny", action="store_true", help="tiny shape and networks, a couple of steps (a CPU check)")
    m.add_argument(
        "--config",
        nargs="+",
        default=["config.yaml", "presets/paper.yaml"],
        help="config layers, relative to the repository (default: config.yaml presets/paper.yaml)",
    )
    m.add_argument("--views", type=int, default=3)
    m.add_argument("--train-steps", type=int, default=30, help="timed DDPM training steps")
    m.add_argument("--warmup-steps", type=int, default=3, help="untimed steps before each timing")
    m.add_argument("--fp-steps", type=int, default=10, help="timed steps of the fingerprint network")
    m.add_argument("--fp-cases", type=int, default=1130, help="cases of the extrapolated fingerprint epoch")
    m.add_argument("--n-features", type=int, default=6156, help="candidate radiomic features N")
    c = sub.add_parser("combine", help="merge gpu.sh's parts (WORK folder) into one JSON")
    c.add_argument("work", type=Path)
    c.add_argument("--out", type=Path, required=True)
    c.add_argument("--dry-run", action="store_true")
    c.add_argument("--wall-seconds", type=float, default=None)
    args = parser.parse_args(argv)
    if args.command == "measure":
        if min(args.train_steps, args.warmup_steps, args.fp_steps, args.fp_cases, args.n_features) < 1:
            parser.error("step and case counts must be positive")
        result = measure(args)
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    result = combine(args.work, dry_run=args.dry_run, wall_seconds=args.wall_seconds)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(args.out)
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
