"""Seconds to explain one new exam with a model bundle (``radpersona diagnose``); prints JSON.

The exam is a new synthetic knee (a seed and index the cohort never had), written as NIfTI files in a
temporary folder; each repeat diagnoses it into a new output folder.

Examples::

    snakemake --cores all results/bundle/proposed_acl          # or the default run, which makes it
    python benchmarks/diagnose.py --bundle results/bundle/proposed_acl --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from radpersona.bundle import verify_bundle
from radpersona.stages.diagnose import diagnose
from radpersona.synthetic.cohort import simulate_case
from radpersona.volume import write_volume


def main() -> None:
    """Parse arguments, diagnose one synthetic exam ``--repeat`` times and print the timings as JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True, help="a bundle folder (results/bundle/...)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of persona and fingerprint")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--slices", type=int, nargs=2, default=[20, 32], help="slice range of the synthetic exam")
    parser.add_argument("--matrix", type=int, default=256, help="in-plane matrix of the synthetic exam")
    args = parser.parse_args()

    config = verify_bundle(args.bundle).config
    exam = simulate_case(987654, seed=20261130, slices=tuple(args.slices), matrix=args.matrix)
    seconds = []
    with tempfile.TemporaryDirectory(prefix="radpersona_diagnose_") as tmp:
        paths = {}
        for view in config["views"]:
            paths[view] = Path(tmp) / f"{view}.nii.gz"
            write_volume(paths[view], exam.views[view].image.astype(np.float32))
        for n in range(args.repeat):
            start = time.perf_counter()
            record = diagnose(bundle=args.bundle, exam=paths, out=Path(tmp) / f"out{n}", threads=args.threads)
            seconds.append(time.perf_counter() - start)
    print(
        json.dumps(
            {
                "benchmark": "diagnose",
                "bundle": str(args.bundle),
                "experiment": config["experiment"],
                "task": config["task"],
                "shape": config["preprocess"]["shape"],
                "persona_sampler": config["persona"]["sample"]["sampler"],
                "persona_steps": config["persona"]["sample"]["steps"],
                "exam_shapes": {v: list(exam.views[v].image.shape) for v in config["views"]},
                "threads": args.threads,
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "seconds": seconds,
                "median_seconds": statistics.median(seconds),
                "prob": record["prob"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
