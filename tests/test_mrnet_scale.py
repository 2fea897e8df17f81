"""MRNet at its real size: 256 x 256 volumes with 20-50 slices per view through ingest and preprocessing, and the
paper preset's dry run over an MRNet-layout folder of 1,130 train + 120 valid exams with the jobs' resources."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_workflow import _job_counts, _snakemake

from radpersona.ingest import ingest
from radpersona.layout import Layout
from radpersona.settings import Settings, deep_merge
from radpersona.stages.preprocess import preprocess
from radpersona.synthetic import generate_cohort
from radpersona.vocabulary import VIEWS
from radpersona.volume import read_volume

pytestmark = pytest.mark.slow

MRNET_TRAIN, MRNET_VALID = 1130, 120


def _paper_settings(repo: Path, layer: dict) -> Settings:
    config = yaml.safe_load((repo / "config.yaml").read_text(encoding="utf-8"))
    paper = yaml.safe_load((repo / "presets" / "paper.yaml").read_text(encoding="utf-8"))
    return Settings.parse(deep_merge(deep_merge(config, paper), layer))


def test_mrnet_sized_volumes_go_through_ingest_and_preprocessing(tmp_path, repo):
    """Three generated exams as MRNet ships them (uint8, 256 x 256, 20-50 slices per view) to the paper's
    32 x 128 x 128 working grid."""
    root = tmp_path / "MRNet-v1.0"
    generate_cohort(root, Layout(str(tmp_path / "truth")), n_train=2, n_valid=1, seed=4, slices=(20, 50), matrix=256)
    settings = _paper_settings(repo, {"source": {"root": str(root)}, "results": str(tmp_path / "results")})
    layout = Layout(settings.results)
    cohort = ingest(settings.source, layout, folds=2, seed=0)
    assert len(cohort) == 3 and set(cohort["split"]) == {"train", "valid"}
    for row in cohort.itertuples():
        for view in VIEWS:
            original = np.load(root / row.split / view / f"{row.case}.npy")
            assert original.dtype == np.uint8 and original.shape[1:] == (256, 256) and 20 <= original.shape[0] <= 50
            raw, spacing = read_volume(layout.raw(row.case, view))
            np.testing.assert_array_equal(raw, original.astype(np.float32))
            assert spacing == (1.0, 1.0, 1.0)
        preprocess(case=row.case, views=VIEWS, settings=settings.preprocess.to_config(), results=settings.results)
        for view in VIEWS:
            pre, spacing = read_volume(layout.pre(row.case, view))
            assert pre.shape == (32, 128, 128) == tuple(settings.preprocess.shape)
            assert np.isfinite(pre).all() and pre.min() >= 0.0 and pre.max() <= 1.0 and pre.std() > 0.05
            slices = np.load(root / row.split / view / f"{row.case}.npy").shape[0]
            assert spacing == pytest.approx((slices / 32, 2.0, 2.0))
    assert pd.read_parquet(layout.cohort())["shape_sagittal"].str.endswith("x256x256").all()


def _mrnet_stub(root: Path, n_train: int, n_valid: int) -> None:
    """What the dry run reads of MRNet: the six label CSVs (no header, ``NNNN,label``) and, for the ingest
    jobs' declared inputs, one empty ``.npy`` per exam and view (a dry run never opens them)."""
    splits = {"train": range(n_train), "valid": range(n_train, n_train + n_valid)}
    for split, cases in splits.items():
        for view in VIEWS:
            folder = root / split / view
            folder.mkdir(parents=True)
            for case in cases:
                (folder / f"{case:04d}.npy").touch()
        labels = {"acl": [int(c % 5 == 0) for c in cases], "meniscus": [int(c % 3 == 0) for c in cases]}
        labels["abnormal"] = [int(a or m or c % 2 == 0) for a, m, c in zip(labels["acl"], labels["meniscus"], cases)]
        for word, values in labels.items():
            lines = "".join(f"{case:04d},{value}\n" for case, value in zip(cases, values))
            (root / f"{split}-{word}.csv").write_text(lines, encoding="utf-8")


def _job_resources(output: str) -> dict[str, list[dict[str, str]]]:
    """Per rule, the resources of every job the dry run lists (``resources: a=1, b=2``)."""
    jobs: dict[str, list[dict[str, str]]] = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", output):  # grouped jobs are indented
        rule = re.match(r"(?:local)?rule (\w+):", block.strip())
        resources = re.search(r"^\s+resources: (.+)$", block, re.MULTILINE)
        if rule and resources:
            values = dict(item.split("=", 1) for item in resources.group(1).split(", "))
            jobs.setdefault(rule.group(1), []).append(values)
    return jobs


def _slurm_profile(repo: Path, folder: Path) -> Path:
    """The shipped SLURM profile; without conda on this machine, rules would run in this venv (as
    tests/test_slurm.py does), and a dry run does not check conda."""
    profile = yaml.safe_load((repo / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))
    if shutil.which("conda") is None and shutil.which("mamba") is None:
        profile.pop("software-deployment-method", None)
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
    return folder


@pytest.mark.scale
def test_paper_dry_run_lists_every_mrnet_exam_with_its_resources(tmp_path, repo, snakemake_exe):
    """Over an hour on 2 loaded cores (Snakemake builds a DAG of about 6,300 jobs; 9.5 CPU minutes)."""
    root = tmp_path / "MRNet-v1.0"
    _mrnet_stub(root, MRNET_TRAIN, MRNET_VALID)
    where = tmp_path / "where.yaml"
    where.write_text(
        yaml.safe_dump({"source": {"root": str(root)}, "results": str(tmp_path / "results")}), encoding="utf-8"
    )
    settings = _paper_settings(repo, yaml.safe_load(where.read_text(encoding="utf-8")))
    proc = _snakemake(
        snakemake_exe,
        repo,
        "-n",
        "--profile",
        str(_slurm_profile(repo, tmp_path / "profile")),
        "--configfile",
        str(repo / "presets" / "paper.yaml"),
        str(where),
        timeout=3 * 3600,
    )
    output = proc.stdout + proc.stderr
    exams = MRNET_TRAIN + MRNET_VALID
    check_dry_run(output, exams, settings)


def check_dry_run(output: str, exams: int, settings: Settings) -> None:
    """Every exam's per-case jobs and the training jobs, each with the profile's resources."""
    counts = _job_counts(output)
    grids, experiments, folds = len(settings.radiomics.grids), len(settings.experiments), settings.fingerprint.folds
    assert counts["ingest_case"] == counts["preprocess"] == counts["register"] == exams
    assert counts["extract_features"] == exams * grids
    assert counts["reference"] == len(VIEWS)
    assert counts["train_ddpm"] == 1 and counts["train_ddpm_fold"] == folds  # cross-fitted personas
    assert counts["persona"] == 1
    assert counts["train_fingerprint"] == experiments * 3 * (folds + 1)
    cases = set(re.findall(r"wildcards: case=(\d{4})", output))
    assert cases == {f"{c:04d}" for c in range(exams)}

    resources = _job_resources(output)
    for rule in ("ingest_case", "preprocess", "register", "extract_features"):  # per case: the profile's
        assert len(resources[rule]) == counts[rule]
        for job in resources[rule]:
            assert job["mem_mb"] in {"2000", "3000"} and job["runtime"] == "10" and job.get("gpu", "0") == "0"
    for rule in ("train_ddpm", "train_ddpm_fold", "persona", "train_fingerprint"):  # on the GPU (device: cuda)
        assert len(resources[rule]) == counts[rule]
        for job in resources[rule]:
            assert job["gpu"] == "1" and job["cpus_per_gpu"] == "8" and int(job["runtime"]) >= 480
            # max(8 GB, k x input size): the input's size is known only when the job runs
            assert job["mem_mb"] == "<TBD>" or int(job["mem_mb"]) >= 8000
    assert {job["runtime"] for job in resources["train_ddpm"]} == {"1440"}
