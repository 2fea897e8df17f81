"""How hard is the synthetic cohort for a whole-volume first-order model?

Generates a cohort with :func:`radpersona.synthetic.generate_cohort` into a temporary folder,
computes whole-volume first-order statistics per view (mean, sd, 10th/50th/90th percentiles,
skewness, kurtosis, 64-bin histogram entropy; 24 features per case), fits a standardised logistic
regression per task on the training split and prints JSON with the validation AUC per task and the
generation time. Lesions are small and local, so ACL and meniscus AUCs should stay near chance
(< 0.7), while "abn" may be easier (effusion changes a larger region). With each AUC it prints the
number of validation positives and the AUC's standard error (Hanley & McNeil 1982):
``SE^2 = (A (1 - A) + (n1 - 1)(Q1 - A^2) + (n0 - 1)(Q2 - A^2)) / (n1 n0)``, ``Q1 = A / (2 - A)``,
``Q2 = 2 A^2 / (1 + A)``; with few positives an AUC far from 0.5 can be chance. Measured results
are in ``docs/synthetic.md``.

Usage::

    python benchmarks/synthetic_difficulty.py --n-train 120 --n-valid 60 --matrix 128 --seed 0 --difficulty 0.5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from radpersona import TASKS, VIEWS
from radpersona.layout import Layout
from radpersona.progress import configure_logging
from radpersona.synthetic import GENERATOR_VERSION, generate_cohort

STATS = ("mean", "sd", "p10", "p50", "p90", "skewness", "kurtosis", "entropy")


def first_order(volume: np.ndarray) -> list[float]:
    """Whole-volume first-order statistics of a uint8 volume, in the order of ``STATS``."""
    v = volume.astype(np.float64).ravel()
    p10, p50, p90 = np.percentile(v, [10, 50, 90])
    hist, _ = np.histogram(v, bins=64, range=(0, 256))
    prob = hist[hist > 0] / hist.sum()
    return [
        float(v.mean()),
        float(v.std()),
        float(p10),
        float(p50),
        float(p90),
        float(stats.skew(v)),
        float(stats.kurtosis(v)),
        float(-(prob * np.log2(prob)).sum()),
    ]


def feature_table(mrnet_root: Path, cohort: pd.DataFrame) -> np.ndarray:
    """One row per case: first-order statistics of every view, concatenated."""
    rows = []
    for case, split in zip(cohort["case"], cohort["split"]):
        row: list[float] = []
        for view in VIEWS:
            row += first_order(np.load(mrnet_root / split / view / f"{case}.npy"))
        rows.append(row)
    return np.asarray(rows)


def auc_standard_error(auc: float, n_pos: int, n_neg: int) -> float:
    """Hanley & McNeil's standard error of an AUC from ``n_pos`` positives and ``n_neg`` negatives."""
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    var = (auc * (1 - auc) + (n_pos - 1) * (q1 - auc * auc) + (n_neg - 1) * (q2 - auc * auc)) / (n_pos * n_neg)
    return float(np.sqrt(var))


def main(argv: list[str] | None = None) -> dict[str, object]:
    """Run the benchmark and print (and return) its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-train", type=int, default=120)
    parser.add_argument("--n-valid", type=int, default=60)
    parser.add_argument("--matrix", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    configure_logging()
    with tempfile.TemporaryDirectory(prefix="radpersona-synthetic-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        cohort = generate_cohort(
            root / "mrnet",
            Layout(str(root / "results")),
            n_train=args.n_train,
            n_valid=args.n_valid,
            seed=args.seed,
            difficulty=args.difficulty,
            matrix=args.matrix,
            workers=args.workers,
        )
        seconds = time.perf_counter() - start
        features = feature_table(root / "mrnet", cohort)
    train = (cohort["split"] == "train").to_numpy()
    auc: dict[str, float | None] = {}
    auc_se: dict[str, float | None] = {}
    positives = {task: int(cohort.loc[~train, task].sum()) for task in TASKS}
    for task in TASKS:
        y = cohort[task].to_numpy()
        if len(np.unique(y[train])) < 2 or len(np.unique(y[~train])) < 2:
            auc[task] = auc_se[task] = None  # one class only: AUC undefined
            continue
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000))
        model.fit(features[train], y[train])
        value = float(roc_auc_score(y[~train], model.predict_proba(features[~train])[:, 1]))
        auc[task] = value
        auc_se[task] = round(auc_standard_error(value, positives[task], args.n_valid - positives[task]), 3)
    result: dict[str, object] = {
        "generator_version": GENERATOR_VERSION,
        "auc_valid": auc,
        "auc_valid_standard_error": auc_se,
        "positives_valid": positives,
        "generation_seconds": round(seconds, 2),
        "n_train": args.n_train,
        "n_valid": args.n_valid,
        "matrix": args.matrix,
        "seed": args.seed,
        "difficulty": args.difficulty,
        "workers": args.workers,
        "prevalence_train": {t: float(cohort.loc[train, t].mean()) for t in TASKS},
    }
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
