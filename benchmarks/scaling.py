"""How the pipeline's run time scales with the cohort: per-rule fixed and per-case costs, fitted and extrapolated.

Runs the default DAG (``config.yaml`` and any ``--configfile`` layers) on synthetic cohorts of two or more sizes at
the configured shape, into temporary results folders, reads Snakemake's per-job benchmark TSVs
(``results/benchmarks/{rule}/*.tsv``, column ``s``), and fits per rule ``seconds(n) = fixed + per_case * n``
(least squares over the measured sizes, n = cases in the cohort). The fit is printed with its points.

The DDPM rules (``train_ddpm``, ``train_ddpm_fold``) cost steps, not cases: the measured runs train
``--ddpm-steps`` steps (default 50) to stay short, and each job's time is split into the training loop (the
checkpoint's own ``seconds`` and ``steps``) and the rest; the loop is scaled to the configured
``persona.train.steps``, the rest is fitted like any rule.

Estimates for a cohort of n cases:

* ``job_seconds``: the sum over rules of fixed + per_case n (one core per job, as Snakemake charges it; the
  jobs use ``resources.torch_threads`` threads each);
* ``workstation_seconds`` on ``--cores`` cores: each rule's seconds divided by min(cores // its threads, its job
  count) (its jobs spread over the cores; a rule's threads are those Snakemake gave its jobs, read from the run's
  log: 1 for the per-case rules, ``resources.torch_threads`` for the torch rules), summed over rules; rules run
  one after another here, which ignores overlap between rules, so it is an upper bound. Printed next to the
  measured wall time of each measured run (``calibration``): the ratio tells how far the bound is off on this
  machine;
* ``slurm_seconds``: the critical path when every job of a rule runs on its own node: per rule, its
  longest job (fitted like the rule's total, from the per-job maxima), summed over the rules; queueing
  and node start-up are not included.

    python benchmarks/scaling.py                       # sizes 56 and 96 at the demo shape, 2 cores
    python benchmarks/scaling.py --sizes 40:16 72:24 --extrapolate 56 360 1250 --cores 2 --keep runs/
    python benchmarks/scaling.py --sizes 40:16 72:24 --keep runs/ --refit   # fit the kept runs again, no run

Prints one JSON object. Takes about as long as the two runs (about 2.5 hours on 2 cores at the default sizes).
Each run's folder (``--keep``, else a temporary one) holds its results, ``snakemake.log`` and ``run.json`` (its
size and wall time); ``--refit`` reads those instead of running. Sizes below 40 training cases can leave an inner
validation split of the default cohort (ACL prevalence 0.18) without the two positives it needs.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
DDPM_RULES = ("train_ddpm", "train_ddpm_fold")


def _cohort(arg: str) -> tuple[int, int]:
    """``TRAIN:VALID`` -> (n_train, n_valid)."""
    try:
        train, valid = (int(v) for v in arg.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is TRAIN:VALID, e.g. 24:8, not {arg!r}") from None
    if train < 8 or valid < 4:
        raise argparse.ArgumentTypeError(f"size {arg}: at least 8 training and 4 valid cases (CV folds need positives)")
    return train, valid


def _rule_jobs(results: Path) -> dict[str, list[float]]:
    """{rule: [seconds of each job]} from Snakemake's benchmark TSVs."""
    jobs: dict[str, list[float]] = {}
    for tsv in sorted((results / "benchmarks").glob("*/*.tsv")):
        with tsv.open(encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
        if rows:
            jobs.setdefault(tsv.parent.name, []).append(float(rows[-1]["s"]))
    return jobs


def _rule_threads(log: str) -> dict[str, int]:
    """{rule: threads} of the jobs in a Snakemake log: each job's ``rule NAME:`` (or ``localrule NAME:``) block, with
    its ``threads: N`` line (Snakemake prints none for one thread)."""
    threads: dict[str, int] = {}
    rule = None
    for line in log.splitlines():
        text = line.strip()
        if text.startswith(("rule ", "localrule ")) and text.endswith(":"):
            rule = text.split(" ", 1)[1][:-1]
            threads.setdefault(rule, 1)
        elif rule is not None and text.startswith("threads:"):
            threads[rule] = max(threads[rule], int(text.split(":", 1)[1]))
    return threads


def _ddpm_loops(results: Path) -> list[dict[str, float]]:
    """Training-loop seconds and steps of every DDPM checkpoint of a run (from the checkpoint's summary)."""
    import torch

    loops = []
    for path in sorted((results / "models").glob("ddpm_*.pt")):
        state = torch.load(path, map_location="cpu", weights_only=True)
        summary = state["summary"]
        loops.append({"seconds": float(summary["seconds"]), "steps": float(summary["steps"])})
    return loops


def measure(train: int, valid: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """One run of the DAG on a synthetic cohort of ``train + valid`` cases; its per-rule job seconds."""
    results = root / f"n{train + valid}" / "results"
    layer = results.parent / "scaling.yaml"
    layer.parent.mkdir(parents=True, exist_ok=True)
    overrides = {
        "results": str(results),
        "source": {"root": str(results / "synthetic" / "mrnet")},
        "synthetic": {"n_train": train, "n_valid": valid},
        "persona": {"train": {"steps": args.ddpm_steps, "checkpoint_every": args.ddpm_steps}},
    }
    layer.write_text(yaml.safe_dump(overrides), encoding="utf-8")
    cmd = [
        str(Path(sys.executable).with_name("snakemake")),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(REPO),
        "--cores",
        str(args.cores),
        "--configfile",
        *[str(Path(c).resolve()) for c in args.configfile],
        str(layer),
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, encoding="utf-8", errors="replace")
    wall = time.perf_counter() - start
    (results.parent / "snakemake.log").write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"benchmarks/scaling.py: the run of {train + valid} cases failed:\n{proc.stderr[-4000:]}")
    run = {"n": train + valid, "n_train": train, "n_valid": valid, "wall_seconds": wall}
    (results.parent / "run.json").write_text(json.dumps(run), encoding="utf-8")
    return load_run(results.parent)


def load_run(folder: Path) -> dict[str, Any]:
    """A measured run from its folder: ``run.json`` (size, wall time), the results' per-job benchmarks and DDPM
    checkpoints, and the rules' threads from ``snakemake.log``."""
    run = json.loads((folder / "run.json").read_text(encoding="utf-8"))
    results = folder / "results"
    log = folder / "snakemake.log"
    threads = _rule_threads(log.read_text(encoding="utf-8")) if log.exists() else {}
    return {**run, "jobs": _rule_jobs(results), "ddpm": _ddpm_loops(results), "threads": threads}


def _fit(ns: list[int], values: list[float]) -> dict[str, float]:
    """Least-squares ``fixed + per_case * n`` (per_case 0 from a single size)."""
    x, y = np.asarray(ns, float), np.asarray(values, float)
    if len(set(ns)) < 2:
        return {"fixed": float(y.mean()), "per_case": 0.0}
    per_case, fixed = np.polyfit(x, y, 1)
    return {"fixed": float(fixed), "per_case": float(per_case)}


def fit(runs: list[dict[str, Any]], configured_steps: int) -> dict[str, Any]:
    """Per-rule fits and the helper quantities for the estimates."""
    ns = [r["n"] for r in runs]
    rules = sorted({rule for r in runs for rule in r["jobs"]})
    out: dict[str, Any] = {}
    for rule in rules:
        totals = [sum(r["jobs"].get(rule, [0.0])) for r in runs]
        longest = [max(r["jobs"].get(rule, [0.0])) for r in runs]
        counts = [len(r["jobs"].get(rule, [])) for r in runs]
        entry: dict[str, Any] = {
            "points": [{"n": n, "seconds": round(t, 2), "jobs": c} for n, t, c in zip(ns, totals, counts)],
            "job_count": _fit(ns, [float(c) for c in counts]),
            "threads": max((r.get("threads", {}).get(rule, 0) for r in runs), default=0) or None,
        }
        if rule in DDPM_RULES:
            # measured loop seconds per step (all DDPM checkpoints of each run), scaled to the configured steps
            per_step = [
                sum(d["seconds"] for d in r["ddpm"]) / max(1.0, sum(d["steps"] for d in r["ddpm"])) for r in runs
            ]
            loop = [
                sum(d["seconds"] for d in r["ddpm"]) * (len(r["jobs"].get(rule, [])) / max(1, len(r["ddpm"])))
                for r in runs
            ]
            rest = [t - lp for t, lp in zip(totals, loop)]
            step_s = float(np.mean(per_step))
            entry["seconds_per_step"] = round(step_s, 4)
            entry["rest"] = _fit(ns, rest)
            count = entry["job_count"]
            entry["scaled_to_steps"] = configured_steps
            entry["loop_per_job"] = round(step_s * configured_steps, 1)
            entry["fit"] = {
                "fixed": entry["rest"]["fixed"] + count["fixed"] * step_s * configured_steps,
                "per_case": entry["rest"]["per_case"] + count["per_case"] * step_s * configured_steps,
            }
            entry["longest_fit"] = {
                "fixed": step_s * configured_steps + max(rest) / max(1, max(counts)),
                "per_case": 0.0,
            }
        else:
            entry["fit"] = _fit(ns, totals)
            entry["longest_fit"] = _fit(ns, longest)
        out[rule] = entry
    return out


def estimate(rules: dict[str, Any], n: int, threads: int, cores: int) -> dict[str, float]:
    """job, workstation and SLURM critical-path seconds for ``n`` cases (``threads``: a rule's threads where the
    run's log did not say)."""
    job = work = slurm = 0.0
    for entry in rules.values():
        slots = max(1, cores // max(1, int(entry.get("threads") or threads)))
        seconds = max(0.0, entry["fit"]["fixed"] + entry["fit"]["per_case"] * n)
        count = max(1.0, entry["job_count"]["fixed"] + entry["job_count"]["per_case"] * n)
        job += seconds
        work += seconds / min(slots, count)
        slurm += max(0.0, entry["longest_fit"]["fixed"] + entry["longest_fit"]["per_case"] * n)
    return {"job_seconds": round(job), "workstation_seconds": round(work), "slurm_seconds": round(slurm)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", nargs="+", type=_cohort, default=[(40, 16), (72, 24)], help="TRAIN:VALID cohorts")
    parser.add_argument("--extrapolate", nargs="+", type=int, default=[56, 200, 360, 1000, 1250])
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--ddpm-steps", type=int, default=50, help="DDPM steps of the measured runs")
    parser.add_argument("--configfile", nargs="*", default=[str(REPO / "config.yaml")])
    parser.add_argument("--keep", help="keep the runs' results under this folder")
    parser.add_argument("--refit", action="store_true", help="fit the runs kept under --keep again, without running")
    args = parser.parse_args()
    if args.refit and not args.keep:
        parser.error("--refit needs --keep (the folder of the kept runs)")

    sys.path.insert(0, str(REPO))
    from radpersona.settings import Settings, read_config

    settings = Settings.parse(read_config(*args.configfile))
    configured_steps = int(settings.persona.model.train.steps)
    threads = int(settings.resources.torch_threads)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="radpersona-scaling-"))
    if args.refit:
        runs = [load_run(root / f"n{train + valid}") for train, valid in args.sizes]
    else:
        runs = [measure(train, valid, args, root) for train, valid in args.sizes]
    rules = fit(runs, configured_steps)
    calibration = []
    for run in runs:
        # the measured run trained only --ddpm-steps steps: compare like with like
        measured_steps = {**rules}
        for rule in DDPM_RULES:
            if rule in measured_steps:
                e = dict(measured_steps[rule])
                count = e["job_count"]["fixed"] + e["job_count"]["per_case"] * run["n"]
                e["fit"] = {
                    "fixed": e["rest"]["fixed"] + count * e["seconds_per_step"] * args.ddpm_steps,
                    "per_case": e["rest"]["per_case"],
                }
                measured_steps[rule] = e
        like = estimate(measured_steps, run["n"], threads, args.cores)
        calibration.append(
            {
                "n": run["n"],
                "measured_wall_seconds": round(run["wall_seconds"]),
                "workstation_estimate_at_measured_steps": like["workstation_seconds"],
                "ratio_estimate_to_measured": round(like["workstation_seconds"] / run["wall_seconds"], 2),
            }
        )
    print(
        json.dumps(
            {
                "benchmark": "benchmarks/scaling.py",
                "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform()},
                "config": args.configfile,
                "shape": list(settings.preprocess.shape),
                "cores": args.cores,
                "torch_threads": threads,
                "measured_ddpm_steps": args.ddpm_steps,
                "configured_ddpm_steps": configured_steps,
                "measured": [
                    {k: (round(v) if k == "wall_seconds" else v) for k, v in r.items() if k not in ("jobs", "threads")}
                    for r in runs
                ],
                "rules": rules,
                "calibration": calibration,
                "estimates": {str(n): estimate(rules, n, threads, args.cores) for n in args.extrapolate},
                "load_average_end": list(os.getloadavg()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
