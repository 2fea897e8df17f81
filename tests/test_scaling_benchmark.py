"""benchmarks/scaling.py: per-rule fits recover fixed and per-case costs; DDPM loops scale with steps."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


def _fake_run(root: Path, n: int, ddpm_jobs: int, loop_seconds: float, steps: int) -> Path:
    """A results folder with the benchmark TSVs of a run of n cases: a per-case rule (3 s per case), a fixed
    rule (40 s), a rule growing with n in one job (10 + 0.5 n s), and DDPM jobs (loop + 5 s each)."""
    results = root / f"n{n}" / "results"
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"

    def tsv(rule: str, name: str, seconds: float) -> None:
        path = results / "benchmarks" / rule / f"{name}.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(header + f"{seconds}\t0:00:00\t1\t1\t1\t1\t0\t0\t0\t0\n", encoding="utf-8")

    for case in range(n):
        tsv("register", f"{case:04d}", 3.0)
    tsv("reference", "all", 40.0)
    tsv("train_fingerprint", "all", 10.0 + 0.5 * n)
    (results / "models").mkdir(parents=True)
    for k in range(ddpm_jobs):
        tsv("train_ddpm_fold", f"fold{k}", loop_seconds + 5.0)
        summary = {"seconds": loop_seconds, "steps": steps}
        torch.save({"summary": summary}, results / "models" / f"ddpm_reg_fold{k}.pt")
    return results


def test_fits_recover_fixed_and_per_case_costs_and_ddpm_scales_to_the_configured_steps(
    tmp_path: Path, benchmark_module
) -> None:
    scaling = benchmark_module("scaling")
    runs = []
    for n in (20, 40):
        results = _fake_run(tmp_path, n, ddpm_jobs=3, loop_seconds=25.0, steps=50)  # 0.5 s per step
        runs.append({"n": n, "jobs": scaling._rule_jobs(results), "ddpm": scaling._ddpm_loops(results)})
    rules = scaling.fit(runs, configured_steps=1000)
    assert rules["register"]["fit"]["per_case"] == pytest.approx(3.0)
    assert rules["register"]["fit"]["fixed"] == pytest.approx(0.0, abs=1e-9)
    assert rules["reference"]["fit"] == pytest.approx({"fixed": 40.0, "per_case": 0.0}, abs=1e-9)
    assert rules["train_fingerprint"]["fit"]["per_case"] == pytest.approx(0.5)
    ddpm = rules["train_ddpm_fold"]
    assert ddpm["seconds_per_step"] == pytest.approx(0.5)
    # 3 jobs x (1000 steps x 0.5 s + 5 s)
    assert ddpm["fit"]["fixed"] == pytest.approx(3 * (500.0 + 5.0))
    assert ddpm["fit"]["per_case"] == pytest.approx(0.0, abs=1e-9)
    est = scaling.estimate(rules, 100, threads=2, cores=2)
    assert est["job_seconds"] == round(300.0 + 40.0 + 60.0 + 1515.0)
    # one slot on 2 cores with 2 threads per job: the workstation time is the job time
    assert est["workstation_seconds"] == est["job_seconds"]
    # every job of a rule on its own node: register 3 s, reference 40 s, fingerprint 60 s, one DDPM job 505 s
    assert est["slurm_seconds"] == round(3.0 + 40.0 + 60.0 + 505.0)


def test_a_size_is_train_colon_valid(benchmark_module) -> None:
    scaling = benchmark_module("scaling")
    assert scaling._cohort("24:8") == (24, 8)
    with pytest.raises(Exception, match="TRAIN:VALID"):
        scaling._cohort("24")


LOG = """\
[Tue Dec  1 02:29:50 2026]
localrule register:
    input: results/volumes/pre/0003_axial.nii.gz
    jobid: 12
    wildcards: case=0003
    resources: tmpdir=/tmp

[Tue Dec  1 02:31:02 2026]
rule train_ddpm_fold:
    output: results/models/ddpm_reg_fold1.pt
    jobid: 40
    threads: 2
    resources: tmpdir=/tmp, gpu=0
"""


def test_a_rules_threads_come_from_the_snakemake_log_one_where_it_prints_none(benchmark_module) -> None:
    scaling = benchmark_module("scaling")
    assert scaling._rule_threads(LOG) == {"register": 1, "train_ddpm_fold": 2}


def test_single_thread_rules_share_the_cores_in_the_workstation_estimate(tmp_path: Path, benchmark_module) -> None:
    """A kept run (results, run.json, snakemake.log) is read back by --refit's loader; register's one-thread jobs
    run two at a time on 2 cores, the 2-thread DDPM jobs one at a time."""
    import json

    scaling = benchmark_module("scaling")
    runs = []
    for n in (20, 40):
        results = _fake_run(tmp_path, n, ddpm_jobs=3, loop_seconds=25.0, steps=50)
        (results.parent / "run.json").write_text(json.dumps({"n": n, "wall_seconds": 100.0}), encoding="utf-8")
        (results.parent / "snakemake.log").write_text(LOG, encoding="utf-8")
        runs.append(scaling.load_run(results.parent))
    assert runs[0]["threads"] == {"register": 1, "train_ddpm_fold": 2}
    assert runs[1]["jobs"]["register"] == [3.0] * 40
    rules = scaling.fit(runs, configured_steps=1000)
    assert rules["register"]["threads"] == 1 and rules["train_ddpm_fold"]["threads"] == 2
    est = scaling.estimate(rules, 100, threads=2, cores=2)
    # register 300 s over 2 cores; reference and train_fingerprint (not in the log) at the default 2 threads
    assert est["workstation_seconds"] == round(300.0 / 2 + 40.0 + 60.0 + 1515.0)
    assert est["job_seconds"] == round(300.0 + 40.0 + 60.0 + 1515.0)
