"""The Snakemake HTML report opens in headless Chromium without console errors and shows every figure.

Fast test: fabricated prediction tables (three tasks, a fingerprint experiment and a baseline) in a
temporary results folder; only the rules metrics, tables and plots run (``--allowed-rules``), then
``snakemake --report``. The same check on a finished ``presets/smoke.yaml`` run is in
``tests/test_workflow.py`` (it shares that module's smoke run).
Both skip when Chromium is not installed (``apt-get install -y chromium``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
FIGURES = ["roc_abn.png", "roc_acl.png", "roc_men.png", "calibration.png"]


def open_in_chromium(html: Path) -> tuple[str, list[str]]:
    """Render ``html`` headless; return the DOM after scripts ran and the console errors."""
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
            "--virtual-time-budget=8000",
            "--dump-dom",
            html.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    errors = [
        line
        for line in run.stderr.splitlines()
        if "CONSOLE" in line and re.search(r"Uncaught|Error|Failed", line) and "tailwindcss" not in line
    ]
    return run.stdout, errors


def _fabricate(results: Path) -> None:
    rng = np.random.default_rng(0)
    cases = [f"{i:04d}" for i in range(32)]
    for name, model, strength in [
        ("proposed", "fingerprint", 3.0),
        ("nofs", "fingerprint", 1.5),
        ("lr_l2", "lr_l2", 1.0),
    ]:
        for t, task in enumerate(("abn", "acl", "men")):
            labels = np.random.default_rng(10 + t).integers(0, 2, 32)
            prob = 1 / (1 + np.exp(-(strength * (labels - 0.5) + rng.normal(0, 1, 32))))
            frame = pd.DataFrame(
                {
                    "case": cases,
                    "task": task,
                    "fold": np.r_[np.arange(24) % 2, -np.ones(8, int)],
                    "split": ["train"] * 24 + ["valid"] * 8,
                    "label": labels,
                    "prob": prob,
                    "threshold": 0.5,
                    "pred": (prob >= 0.5).astype(int),
                    "model": model,
                    "experiment": name,
                    "threshold_from": "inner",
                }
            )
            (results / "predictions").mkdir(parents=True, exist_ok=True)
            frame.to_parquet(results / "predictions" / f"{name}_{task}.parquet")


def test_report_of_the_evaluation_rules_shows_every_figure(repo, snakemake_exe, tmp_path):
    results = tmp_path / "results"
    _fabricate(results)
    common = [
        snakemake_exe,
        "-d",
        str(repo),
        "--configfile",
        "presets/smoke.yaml",
        "--config",
        f"results={results}",
        "--allowed-rules",
        "metrics",
        "tables",
        "plots",
    ]
    targets = ["--", str(results / "tables" / "comparison.csv"), str(results / "plots" / "calibration.png")]
    run = subprocess.run(
        [*common, "--cores", "1", *targets],
        cwd=repo,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    html = tmp_path / "report.html"
    run = subprocess.run(
        [*common, "--report", str(html), *targets],
        cwd=repo,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    dom, errors = open_in_chromium(html)
    assert not errors, errors
    for name in [*FIGURES, "comparison.csv", "comparisons.csv"]:
        assert name in dom, f"{name} missing from the rendered report"
