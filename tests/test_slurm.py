"""The workflow on a real SLURM cluster through profiles/slurm (snakemake-executor-plugin-slurm).

.ci/start-slurm.sh starts a one-node cluster (CI runs it in .ci/run); without a reachable SLURM these
tests skip themselves and say why. The cluster has no accounting database, so the tests add
``--slurm-status-command squeue --slurm-no-account`` (and poll faster) to a copy of the shipped
profile; everything else is the shipped profile, including its batching of per-case rules.

One module-scoped run does the cancel-and-rerun scenario: the smoke preset (with a smaller cohort, so
that the SLURM round trips fit CI's time) is submitted, the train_ddpm job is cancelled with scancel
while it runs, the run fails, and a rerun (the profile has rerun-incomplete) finishes it. A local run
of the same configuration is the reference the SLURM results must equal.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

REPO = Path(__file__).resolve().parents[1]
SHIPPED_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
# The smoke preset with a smaller cohort and shorter training: every stage still runs, and every
# per-case rule still goes through a batch (group) job.
TINY = {
    # 16 training cases: each CV training fold keeps >= 2 ACL and meniscal tears, >= 2 healthy for the DDPM
    "synthetic": {
        "n_train": 16,
        "n_valid": 4,
        "matrix": 64,
        "slices": [16, 20],
        "prevalence": {"abn": 0.75, "acl": 0.5, "men": 0.5},
    },
    "persona": {"train": {"steps": 10, "checkpoint_every": 10}, "sample": {"steps": 4}},
    "fingerprint": {"epochs": 2, "folds": 2},
    "evaluation": {"bootstrap": 20},
    "resources": {"torch_threads": 1},  # two torch jobs side by side on a 2-core node
}
# Test-only batches, to fit CI's time: the fingerprint's many short jobs (experiments x tasks x folds)
# go into one SLURM job each. The shipped profile keeps them apart (each wants a GPU at paper scale).
TEST_GROUPS = {"train_fingerprint": "fingerprint_batch", "predict": "predict_batch"}
RUN_TIMEOUT = 1500  # seconds for one Snakemake run (the whole test module takes about 10 minutes on 2 cores)


def report(request: pytest.FixtureRequest, line: str) -> None:
    """Print past pytest's output capture, so that CI's log shows the SLURM job ids."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        print(f"\n[test_slurm] {line}", flush=True)


def slurm_unreachable_reason() -> str | None:
    """None if sbatch can reach a SLURM controller with an idle or mixed node; otherwise why not."""
    for tool in ("sbatch", "squeue", "scancel", "sinfo"):
        if shutil.which(tool) is None:
            return f"no SLURM here: {tool} is not on PATH (start one with .ci/start-slurm.sh)"
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        return "snakemake-executor-plugin-slurm is not installed (requirements.txt pins it)"
    try:
        proc = subprocess.run(
            ["sinfo", "--noheader", "--format=%T"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=20,
        )
    except subprocess.TimeoutExpired:
        return "sinfo did not answer within 20 s: no SLURM controller reachable"
    if proc.returncode != 0:
        return f"sinfo failed ({proc.returncode}): {proc.stderr.strip()[:200]} (start one with .ci/start-slurm.sh)"
    states = proc.stdout.split()
    if not any(s.rstrip("*~#").startswith(("idle", "mix", "alloc")) for s in states):
        return f"SLURM answers but has no usable node (states: {states})"
    return None


def node_cpus() -> int:
    """CPUs of the smallest node, so that no batch asks for more than a node has."""
    out = subprocess.run(
        ["sinfo", "--noheader", "--format=%c"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=20,
    ).stdout
    return min(int(c) for c in out.split() if c.strip("+").isdigit())


def write_test_profile(folder: Path, slurm_logs: Path) -> Path:
    """The shipped SLURM profile plus the test cluster's settings (no accounting, no conda, faster polling)."""
    profile = yaml.safe_load(SHIPPED_PROFILE.read_text(encoding="utf-8"))
    assert profile["executor"] == "slurm"
    if shutil.which("conda") is None and shutil.which("mamba") is None:
        profile.pop("software-deployment-method", None)  # this machine runs rules in the test's own venv
    profile.update(
        {
            "slurm-status-command": "squeue",  # the test cluster has no accounting database (no sacct)
            "slurm-no-account": True,
            "cores": min(int(profile["cores"]), node_cpus()),
            "slurm-init-seconds-before-status-checks": 2,
            "seconds-between-status-checks": 3,
            "slurm-keep-successful-logs": True,  # the logs prove that every job ran inside an sbatch job
            "slurm-logdir": str(slurm_logs),
            "retries": 0,  # a cancelled job must fail the run, not be retried silently
        }
    )
    profile["groups"] = {**profile.get("groups", {}), **TEST_GROUPS}
    profile["group-components"] = {**profile.get("group-components", {}), **{g: 100 for g in TEST_GROUPS.values()}}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    return folder


def snakemake_cmd(exe: str, *args: str) -> list[str]:
    return [exe, "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO), *args]


def configs(root: Path, results: Path) -> list[str]:
    layer = root / f"{results.name}.yaml"
    layer.write_text(
        yaml.safe_dump({**TINY, "results": str(results), "source": {"root": str(results / "synthetic" / "mrnet")}}),
        encoding="utf-8",
    )
    # targets: every stage through the metrics table (explanation pages, population figures, paper
    # tables and plots are left to the local smoke test, to keep CI's time)
    targets = [str(results / "tables" / "metrics.csv"), str(results / "registration" / "qc.parquet")]
    return [*targets, "--configfile", str(REPO / "presets" / "smoke.yaml"), str(layer)]


def job_stats(output: str) -> Counter:
    """The first 'Job stats' table of a Snakemake output as {rule: count} (rule all left out)."""
    counts: Counter = Counter()
    if "Job stats" not in output:
        return counts
    for line in output.split("Job stats:", 1)[1].splitlines()[3:]:
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if not match:
            break
        if match.group(1) not in ("all", "total"):
            counts[match.group(1)] = int(match.group(2))
    return counts


def finished_in_slurm_logs(slurm_logs: Path) -> Counter:
    """{rule: jobs that finished inside a SLURM job}, read from the per-job SLURM logs."""
    counts: Counter = Counter()
    for log in slurm_logs.rglob("*.log"):
        assert re.fullmatch(r"\d+", log.stem), f"SLURM log {log} is not named by a SLURM job id"
        # the SLURM job's Snakemake numbers its jobs 0..n-1 and runs each through srun in a Snakemake that
        # calls its one job 0 too: count the distinct job numbers per rule
        finished = set(re.findall(r"Finished jobid: (\d+) \(Rule: (\w+)\)", log.read_text(errors="replace")))
        counts.update(rule for _, rule in finished)
    return counts


def wait_for_running_job(comment_part: str, proc: subprocess.Popen, timeout: float) -> str:
    """Poll squeue until a job whose comment contains ``comment_part`` runs; return its SLURM id."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"snakemake ended ({proc.returncode}) before a {comment_part} job ran")
        out = subprocess.run(
            ["squeue", "--noheader", "--format=%i|%T|%k"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=20,
        ).stdout
        for line in out.splitlines():
            job_id, state, comment = line.split("|", 2)
            if comment_part in comment and state == "RUNNING":
                return job_id
        time.sleep(0.5)
    raise AssertionError(f"no {comment_part} job ran within {timeout} s")


@pytest.fixture(scope="module")
def slurm_runs(tmp_path_factory, snakemake_exe, request):
    """Submit the tiny smoke run, scancel its train_ddpm job midway, rerun; run the same locally."""
    reason = slurm_unreachable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("slurm")
    slurm_logs = root / "slurm-logs"
    profile = write_test_profile(root / "profile", slurm_logs)
    slurm_results = root / "results-slurm"
    cmd = snakemake_cmd(snakemake_exe, "--profile", str(profile), *configs(root, slurm_results))

    # the local reference run goes alongside: it fills the CPU while the SLURM runs wait on squeue
    local_results = root / "results-local"
    with open(root / "local.log", "w", encoding="utf-8") as local_log:
        local_proc = subprocess.Popen(
            snakemake_cmd(snakemake_exe, "--cores", str(node_cpus()), *configs(root, local_results)),
            stdout=local_log,
            stderr=subprocess.STDOUT,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
    try:
        started = time.monotonic()
        with open(root / "first.log", "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                encoding="utf-8",
                errors="replace",
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            try:
                # the DDPM of all healthy training cases (its SLURM comment; the cross-fitted fold DDPMs are
                # rule_train_ddpm_fold_wildcards_...)
                cancelled = wait_for_running_job("rule_train_ddpm_wildcards", proc, timeout=RUN_TIMEOUT)
                model_existed = (slurm_results / "models" / "ddpm_reg.pt").exists()
                subprocess.run(["scancel", cancelled], check=True, timeout=30)
                first_rc = proc.wait(timeout=RUN_TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(timeout=60)
        first = (root / "first.log").read_text(encoding="utf-8")
        first_seconds = time.monotonic() - started

        started = time.monotonic()
        rerun = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            timeout=RUN_TIMEOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        rerun_seconds = time.monotonic() - started
        (root / "rerun.log").write_text(rerun.stdout + rerun.stderr, encoding="utf-8")
        assert rerun.returncode == 0, (
            f"rerun failed ({rerun.returncode}):\n{rerun.stdout[-5000:]}\n{rerun.stderr[-5000:]}"
        )
        local_rc = local_proc.wait(timeout=RUN_TIMEOUT)
    finally:
        if local_proc.poll() is None:
            local_proc.terminate()
            local_proc.wait(timeout=60)
    local_out = (root / "local.log").read_text(encoding="utf-8")
    assert local_rc == 0, f"local run failed ({local_rc}):\n{local_out[-5000:]}"
    report(request, f"SLURM run with scancel of job {cancelled}: {first_seconds:.0f} s, rerun: {rerun_seconds:.0f} s")
    return {
        "first": first,
        "first_rc": first_rc,
        "cancelled": cancelled,
        "model_existed": model_existed,
        "rerun": rerun.stdout + rerun.stderr,
        "local": local_out,
        "slurm_results": slurm_results,
        "local_results": local_results,
        "slurm_logs": slurm_logs,
    }


def test_every_job_ran_through_sbatch(slurm_runs, request):
    submitted = re.findall(r"has been submitted with SLURM jobid (\d+)", slurm_runs["first"] + slurm_runs["rerun"])
    report(request, f"{len(submitted)} SLURM jobs submitted, ids {', '.join(submitted)}")
    assert len(submitted) == len(set(submitted)) > 0
    local = job_stats(slurm_runs["local"])
    assert local, slurm_runs["local"][-3000:]
    # every job of the workflow finished inside a SLURM job, as often as it ran locally
    assert finished_in_slurm_logs(slurm_runs["slurm_logs"]) == local
    # per-case rules went in batches: fewer SLURM jobs than workflow jobs
    assert len(submitted) < sum(local.values())
    assert "group_preprocess_batch" in " ".join(str(p) for p in slurm_runs["slurm_logs"].iterdir())


def test_scancel_midway_then_rerun_incomplete_loses_nothing(slurm_runs):
    first, rerun = slurm_runs["first"], slurm_runs["rerun"]
    cancelled = slurm_runs["cancelled"]
    assert slurm_runs["first_rc"] != 0, "the run with a cancelled job must fail"
    assert not slurm_runs["model_existed"], "train_ddpm was cancelled after it had written its model"
    assert re.search(rf"SLURM-job '{cancelled}' failed, SLURM status is: 'CANCELLED'", first), first[-3000:]
    redone = job_stats(rerun)
    assert redone["train_ddpm"] == 1, redone
    # what finished before the cancel is kept: the rerun does not redo ingest, preprocessing or registration
    assert not {"synthesize", "ingest_case", "ingest", "preprocess", "reference", "register"} & set(redone), redone
    assert (slurm_runs["slurm_results"] / "models" / "ddpm_reg.pt").exists()


def _frame(path: Path) -> pd.DataFrame:
    frame = pd.read_parquet(path)
    drop = [c for c in frame.columns if c.startswith("path_") or c == "truth_dir"]  # they name the run's folder
    return frame.drop(columns=drop)


def test_slurm_results_equal_the_local_run(slurm_runs):
    slurm, local = slurm_runs["slurm_results"], slurm_runs["local_results"]
    pd.testing.assert_frame_equal(_frame(slurm / "cohort.parquet"), _frame(local / "cohort.parquet"))
    tables = sorted(p.relative_to(local) for p in (local / "features").rglob("table.parquet"))
    assert tables
    for rel in tables:
        pd.testing.assert_frame_equal(pd.read_parquet(slurm / rel), pd.read_parquet(local / rel))
    predictions = sorted(p.relative_to(local) for p in (local / "predictions").glob("*.parquet"))
    assert predictions
    for rel in predictions:
        pd.testing.assert_frame_equal(pd.read_parquet(slurm / rel), pd.read_parquet(local / rel))
    from radpersona.volume import read_volume

    for folder in ("pre", "reg", "persona_reg"):
        for path in sorted((local / "volumes" / folder).glob("*.nii.gz"))[:6]:
            a, _ = read_volume(path)
            b, _ = read_volume(slurm / "volumes" / folder / path.name)  # same case and view
            np.testing.assert_array_equal(a, b, err_msg=f"{folder}/{path.name}")
    assert (slurm / "tables" / "metrics.csv").read_text(encoding="utf-8") == (
        local / "tables" / "metrics.csv"
    ).read_text(encoding="utf-8")
