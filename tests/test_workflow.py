"""Whole-DAG tests: the smoke preset end to end, incremental reruns, lint, config errors at parse time."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.metrics import roc_auc_score

from radpersona import TASKS
from radpersona.stages.audit import AUDIT_COLUMNS

pytestmark = pytest.mark.slow


def _snakemake(
    exe: str, repo: Path, *args: str, check: bool = True, timeout: int = 1200, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    cmd = [exe, "--snakefile", str(repo / "Snakefile"), "--directory", str(repo), *args]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env=None if env is None else {**os.environ, **env},
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
        )
    return proc


def _job_counts(output: str) -> dict[str, int]:
    """Parse Snakemake's 'Job stats' table into {rule: count}."""
    counts: dict[str, int] = {}
    if "Job stats" not in output:
        return counts
    table = output.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def _assert_metrics_match_predictions(metrics: pd.DataFrame, results: Path) -> None:
    """Every metrics row is what scikit-learn computes from the predictions it summarises.

    Per experiment, task, split and fold: n, acc/sen/spe of ``pred`` (which is ``prob >= threshold``),
    the ROC AUC of ``prob`` (NaN when one class is absent) and the threshold.
    """
    for (experiment, task), rows in metrics.groupby(["experiment", "task"]):
        pred = pd.read_parquet(results / "predictions" / f"{experiment}_{task}.parquet")
        assert ((pred["prob"] >= pred["threshold"]).astype(int) == pred["pred"]).all(), (experiment, task)
        assert len(rows) == pred.groupby(["split", "fold"]).ngroups, (experiment, task)
        for row in rows.itertuples():
            grp = pred[(pred["split"] == ("train" if row.split == "cv" else row.split)) & (pred["fold"] == row.fold)]
            label, hit = grp["label"].to_numpy().astype(int), grp["pred"].to_numpy().astype(int)
            where = (experiment, task, row.split, row.fold)
            assert row.n == len(grp) > 0, where
            assert row.acc == pytest.approx((hit == label).mean(), abs=1e-5), where
            for rate, cls, positive in ((row.sen, 1, 1), (row.spe, 0, 0)):
                expected = (hit[label == cls] == positive).mean() if (label == cls).any() else float("nan")
                assert rate == pytest.approx(expected, nan_ok=True, abs=1e-5), where
            expected = roc_auc_score(label, grp["prob"]) if len(set(label)) == 2 else float("nan")
            assert row.auc == pytest.approx(expected, nan_ok=True, abs=1e-5), where
            assert row.threshold == pytest.approx(grp["threshold"].iloc[0], abs=1e-5), where


def test_smoke_dag_writes_every_contract_output(smoke_run):
    configs, results, _, proc = smoke_run
    metrics = pd.read_csv(results / "tables" / "metrics.csv")
    assert set(metrics["task"]) == set(TASKS)
    assert {"cv", "valid"} <= set(metrics["split"])
    _assert_metrics_match_predictions(metrics, results)
    # every task's valid AUC is defined (the smoke cohort's valid split holds both classes of each task)
    valid = metrics[metrics["split"] == "valid"]
    assert valid.groupby("task")["auc"].apply(lambda a: a.notna().any()).all(), valid[["task", "auc"]]
    cohort = pd.read_parquet(results / "cohort.parquet")
    assert {"case", "source", "split", "abn", "acl", "men", "fold", "patient", "truth_dir"} <= set(cohort.columns)
    qc = pd.read_parquet(results / "registration" / "qc.parquet")
    assert len(qc) == 3 * len(cohort)
    wide = pd.read_parquet(results / "features" / "reg" / "g2" / "table.parquet")
    assert len(wide) == len(cohort)
    for task in TASKS:
        pred = pd.read_parquet(results / "predictions" / f"proposed_{task}.parquet")
        assert {"case", "task", "fold", "split", "label", "prob", "threshold", "pred", "model"} <= set(pred.columns)
        fp = pd.read_parquet(results / "fingerprints" / f"proposed_{task}.parquet")
        assert {"case", "feature", "view", "image", "u", "z", "beta", "r", "contribution", "rank"} <= set(fp.columns)
        assert (results / "bundle" / f"proposed_{task}" / "manifest.json").is_file()  # evaluation.compare_to's bundles
        # the population summary's sparsity is that of the predictions (one definition of "features used")
        summary = pd.read_csv(results / "report" / f"proposed_{task}" / "summary.csv").set_index(["group", "measure"])
        for group, label in (("positive", 1), ("negative", 0)):
            n_used = pred.loc[pred["label"] == label, "n_used"]
            if len(n_used):
                assert summary.loc[(group, "median_features_used"), "value"] == pytest.approx(n_used.median())
        assert (pred["labels"] == "true").all() and pred["usage_threshold"].notna().all()
    fingerprint_rows = metrics[metrics["experiment"] == "proposed"]
    assert fingerprint_rows["median_n_used"].notna().all() and fingerprint_rows["lambda_u"].notna().all()
    audit = pd.read_csv(results / "tables" / "signal_audit.csv")
    assert list(audit.columns) == list(AUDIT_COLUMNS)
    assert set(audit["task"]) == set(TASKS) and (audit["n_cases"] >= 0).all()
    assert (results / "tables" / "signal_audit.md").read_text(encoding="utf-8").startswith("# Signal audit")
    assert "radpersona: done" in proc.stdout + proc.stderr
    # cross-fitted personas (the default): none made by a DDPM that trained on its case, and the tables say so
    membership = pd.read_parquet(results / "persona" / "membership_reg.parquet")
    assert len(membership) == len(cohort) and not membership["trained_on_case"].any()
    assert set(membership["model_fold"]) == {"0", "1", "all"}
    assert "Personas: cross-fitted" in (results / "tables" / "metrics.md").read_text(encoding="utf-8")
    gaps = pd.read_csv(results / "tables" / "persona_membership_reg.csv").set_index(["protocol", "cases"])
    assert {"cross_fit", "paper"} == set(gaps.index.get_level_values(0))
    assert gaps.loc[("paper", "healthy train"), "trained_on_case"] and gaps["box_ssim"].notna().all()
    # long steps log progress with an ETA
    assert "ETA" in (results / "logs" / "train_ddpm" / "reg.log").read_text(encoding="utf-8")


def test_report_of_the_smoke_run_opens_in_chromium(smoke_run, repo, snakemake_exe):
    """``snakemake --report`` of the finished smoke run renders without console errors, every figure in it."""
    from test_report import CHROMIUM, FIGURES, open_in_chromium

    if CHROMIUM is None:
        pytest.skip("headless Chromium is not installed (apt-get install -y chromium)")
    configs, _, root, _ = smoke_run
    html = root / "report.html"
    _snakemake(snakemake_exe, repo, *configs, "--report", str(html))
    dom, errors = open_in_chromium(html)
    assert not errors, errors
    for name in FIGURES:
        assert name in dom, f"{name} missing from the rendered report"


def test_complete_run_has_nothing_to_do(smoke_run, repo, snakemake_exe):
    configs, *_ = smoke_run
    proc = _snakemake(snakemake_exe, repo, "-n", "--cores", "2", *configs)
    assert "Nothing to be done" in proc.stdout + proc.stderr, proc.stdout[-3000:]


def test_fingerprint_change_reruns_only_fingerprint_and_evaluation(smoke_run, repo, snakemake_exe):
    configs, _, root, _ = smoke_run
    layer = root / "fp_change.yaml"
    layer.write_text(yaml.safe_dump({"fingerprint": {"lambda_u": 0.05}}), encoding="utf-8")
    proc = _snakemake(snakemake_exe, repo, "-n", "--cores", "2", *configs, str(layer))
    counts = _job_counts(proc.stdout + proc.stderr)
    assert counts, proc.stdout[-3000:]
    downstream = {
        "train_fingerprint",
        "predict",
        "metrics",
        "tables",
        "plots",
        "localisation",
        "signal_audit",
        "explain",
        "summarise_fingerprints",
        "bundle",
        "all",
    }
    assert {"train_fingerprint", "predict", "metrics"} <= set(counts) <= downstream, counts


def test_persona_change_reruns_persona_and_downstream_only(smoke_run, repo, snakemake_exe):
    configs, _, root, _ = smoke_run
    layer = root / "persona_change.yaml"
    layer.write_text(yaml.safe_dump({"persona": {"sample": {"steps": 5}}}), encoding="utf-8")
    counts = _job_counts(_snakemake(snakemake_exe, repo, "-n", "--cores", "2", *configs, str(layer)).stdout)
    assert "train_ddpm" not in counts and "register" not in counts and "preprocess" not in counts
    assert {"persona", "extract_features", "train_fingerprint"} <= set(counts)


def test_lint_is_clean(repo, snakemake_exe):
    proc = _snakemake(snakemake_exe, repo, "--lint", check=False)
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr, (
        proc.stdout + proc.stderr
    )


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"persona": {"trian": {"steps": 3}}}, "persona.trian"),
        ({"fingerprint": {"epochs": "ten"}}, "fingerprint.epochs"),
        ({"fingerprint": {"usage_threshold": 2.0}}, "fingerprint.usage_threshold"),
    ],
)
def test_bad_config_fails_at_parse_time_naming_the_key(repo, snakemake_exe, tmp_path, override, key):
    layer = tmp_path / "bad.yaml"
    layer.write_text(yaml.safe_dump(override), encoding="utf-8")
    proc = _snakemake(snakemake_exe, repo, "-n", "--configfile", str(layer), check=False)
    assert proc.returncode != 0
    assert f"'{key}'" in proc.stdout + proc.stderr


def test_keep_going_finishes_the_good_cases_and_exclude_runs_without_the_bad_one(repo, snakemake_exe, tmp_path):
    """One corrupt .npy in an MRNet cohort: ``--keep-going`` ingests and preprocesses every other case, the bad
    case's job fails naming case, view and file and leaves nothing behind; ``source.exclude`` then completes
    the cohort table without it."""
    from test_ingest import make_mrnet

    root, results = tmp_path / "mrnet", tmp_path / "results"
    make_mrnet(root, n_train=5, n_valid=2)
    bad = root / "train" / "coronal" / "0001.npy"
    bad.write_bytes(b"not a numpy file")
    layer = tmp_path / "layer.yaml"
    layer.write_text(
        yaml.safe_dump(
            {"results": str(results), "source": {"kind": "mrnet", "root": str(root)}, "fingerprint": {"folds": 2}}
        ),
        encoding="utf-8",
    )
    pre = [
        str(results / "volumes" / "pre" / f"{c:04d}_{v}.nii.gz")
        for c in range(7)
        for v in ("sagittal", "coronal", "axial")
    ]
    run = _snakemake(
        snakemake_exe, repo, "--cores", "2", "--keep-going", "--configfile", str(layer), "--", *pre, check=False
    )
    assert run.returncode != 0
    made = {Path(p).name for p in pre if Path(p).exists()}
    assert made == {Path(p).name for p in pre if not Path(p).name.startswith("0001_")}
    assert not list((results / "volumes" / "raw").glob("0001_*")) and not (results / "ingest" / "0001.parquet").exists()
    log = (results / "logs" / "ingest_case" / "0001.log").read_text(encoding="utf-8")
    assert "case '0001', view 'coronal'" in log and str(bad) in log and "source.exclude" in log
    layer.write_text(
        yaml.safe_dump(
            {
                "results": str(results),
                "source": {"kind": "mrnet", "root": str(root), "exclude": ["0001"]},
                "fingerprint": {"folds": 2},
            }
        ),
        encoding="utf-8",
    )
    _snakemake(snakemake_exe, repo, "--cores", "2", "--configfile", str(layer), "--", str(results / "cohort.parquet"))
    cohort = pd.read_parquet(results / "cohort.parquet")
    assert sorted(cohort["case"]) == ["0000", "0002", "0003", "0004", "0005", "0006"]


def _replay_in_sandbox(record: dict, root: Path, sandbox: Path) -> subprocess.CompletedProcess:
    """Copy only the job's declared inputs into ``sandbox`` (same layout below ``root``), then call its stage."""

    def moved(value):
        if isinstance(value, str):
            return value.replace(str(root), str(sandbox))
        if isinstance(value, list):
            return [moved(v) for v in value]
        if isinstance(value, dict):
            return {k: moved(v) for k, v in value.items()}
        return value

    for name in record["input"]:
        source = Path(name)
        target = Path(moved(name))
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
    call = {"stage": record["stage"], "kwargs": moved(record["kwargs"])}
    sandbox.mkdir(parents=True, exist_ok=True)  # a rule without inputs (synthesize) copies nothing
    (sandbox / "call.json").write_text(json.dumps(call), encoding="utf-8")
    code = (
        "import importlib, json, sys; call = json.load(open(sys.argv[1], encoding='utf-8')); "
        "module, name = call['stage'].split(':'); fn = importlib.import_module(module)\n"
        "for part in name.split('.'): fn = getattr(fn, part)\n"
        "fn(**call['kwargs'])"
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(sandbox / "call.json")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=1200,
        cwd=sandbox,
    )


def test_every_rule_declares_every_file_its_stage_reads(smoke_run, tmp_path):
    """Each rule's first job of the smoke run, replayed in a folder that holds only the rule's declared inputs:
    a stage that reads an undeclared file (which Snakemake would neither rerun on nor ship to a remote
    executor) fails here, naming the rule."""
    _, _, root, _ = smoke_run
    records: dict[str, dict] = {}
    for path in sorted((root / "jobs").glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        records.setdefault(record["rule"], record)
    assert {
        "ingest_case",
        "preprocess",
        "register",
        "train_ddpm",
        "train_ddpm_fold",
        "persona",
        "extract_features",
        "localisation",
        "signal_audit",
        "train_fingerprint",
        "predict",
        "metrics",
        "explain",
        "bundle",
    } <= set(records), sorted(records)
    failures = []
    rules = sorted(records)
    with ThreadPoolExecutor(max_workers=2) as pool:  # each replay is its own process
        replayed = pool.map(lambda rule: _replay_in_sandbox(records[rule], root, tmp_path / rule), rules)
        procs = dict(zip(rules, replayed))
    for rule, record in sorted(records.items()):
        sandbox = tmp_path / rule
        proc = procs[rule]
        if proc.returncode != 0:
            failures.append(
                f"{rule}: {proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else proc.stdout[-500:]}"
            )
            continue
        missing = [p for p in record["output"] if not Path(p.replace(str(root), str(sandbox))).exists()]
        if missing:
            failures.append(f"{rule}: declared outputs not written in the sandbox: {missing[:3]}")
    assert not failures, "stages that read undeclared files (or failed in the sandbox):\n" + "\n".join(failures)


def test_a_changed_truth_file_reruns_localisation(smoke_run, repo, snakemake_exe):
    """The localisation table depends on the truth lesion masks it reads: changing one makes it outdated."""
    configs, results, _, _ = smoke_run
    truth = sorted((results / "synthetic" / "truth").glob("*_sagittal_lesion.npy"))[0]
    data = truth.read_bytes()
    # new content (Snakemake ignores a newer mtime when a small input's recorded checksum still matches)
    truth.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    try:
        proc = _snakemake(snakemake_exe, repo, "-n", "--cores", "2", *configs)
        assert "localisation" in _job_counts(proc.stdout + proc.stderr), proc.stdout[-3000:]
    finally:
        truth.write_bytes(data)
        os.utime(truth, (0, 0))  # older than everything: the run is complete again for later tests
