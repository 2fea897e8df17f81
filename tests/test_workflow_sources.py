"""The whole DAG on the paper's other sources, to metrics and fingerprints: a KneeMRI cohort (sagittal only,
``.pck`` pickles, ACL labels only) and a manifest of DICOM series that uses a persona model trained elsewhere
(``persona.checkpoint``). Both cohorts are the synthetic generator's knees written in those formats, at the
smallest sizes the settings allow (``presets/smoke.yaml`` plus a layer that shrinks the DDPM). KneeMRI keeps the
generator's ACL labels; the manifest's alternate case by case (:func:`_acl`); with either, every cross-validation
fold of these 16 cases has at least two cases of each class."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_sources_kneemri import HEADER as KNEEMRI_HEADER
from test_sources_manifest import write_dicom_series
from test_workflow import _job_counts, _snakemake

from radpersona.cli import main
from radpersona.folds import PERSONA_PROTOCOLS, healthy_training_cases
from radpersona.layout import ExamLayout, Layout
from radpersona.settings import Settings, deep_merge
from radpersona.synthetic import generate_cohort
from radpersona.vocabulary import PersonaProtocol
from radpersona.volume import write_volume

pytestmark = pytest.mark.slow

N_TRAIN, N_VALID = 12, 4
DICOM_SPACING = (2.0, 0.7, 0.7)
# on top of presets/smoke.yaml: a two-level U-Net trained for 2 steps, 2 DDIM steps, 2 fingerprint epochs
TINY = {
    "persona": {
        "unet": {"channels": [8, 16], "attention_levels": [False, False]},
        "train": {"steps": 2, "batch_size": 2, "checkpoint_every": 2},
        "sample": {"steps": 2},
    },
    "fingerprint": {"epochs": 2},
}


@pytest.fixture(scope="module")
def knees(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """Synthetic knees (MRNet layout, 64 x 64 in-plane, 16-20 slices) with ACL tears in about half of them."""
    root = tmp_path_factory.mktemp("knees")
    cohort = generate_cohort(
        root / "mrnet",
        Layout(str(root / "truth")),
        n_train=N_TRAIN,
        n_valid=N_VALID,
        seed=3,
        slices=(16, 20),
        matrix=64,
        prevalence={"abn": 0.8, "acl": 0.5, "men": 0.45},
    )
    return root / "mrnet", cohort


def _acl(index: int) -> int:
    """The ACL label of case ``index``: balanced, not drawn (the test is of the pipeline, not of the signal)."""
    return index % 2


def _sagittal(mrnet: Path, split: str, case: str) -> np.ndarray:
    return np.load(mrnet / split / "sagittal" / f"{case}.npy")


def _run(repo: Path, snakemake_exe: str, root: Path, layer: dict) -> tuple[Path, dict[str, int]]:
    results = root / "results"
    where = root / "where.yaml"
    where.write_text(yaml.safe_dump(deep_merge(deep_merge(TINY, layer), {"results": str(results)})), encoding="utf-8")
    configs = ["--configfile", str(repo / "presets" / "smoke.yaml"), str(where)]
    proc = _snakemake(snakemake_exe, repo, "--cores", "2", *configs, timeout=3600)  # 20-30 min on 2 loaded cores
    return results, _job_counts(proc.stdout + proc.stderr)


def _check_metrics_and_fingerprints(results: Path, tasks: list[str]) -> pd.DataFrame:
    metrics = pd.read_csv(results / "tables" / "metrics.csv")
    assert sorted(set(metrics["task"])) == sorted(tasks)
    assert {"proposed", "nofs"} <= set(metrics["experiment"])
    layout = Layout(str(results))
    for experiment in ("proposed", "nofs"):
        for task in tasks:
            prints = pd.read_parquet(layout.fingerprints(experiment, task))
            assert len(prints) and np.isfinite(prints.select_dtypes("number").to_numpy()).all()
            assert Path(layout.explanation(experiment, task, _first_valid(results))).exists()
    return metrics


def _first_valid(results: Path) -> str:
    cohort = pd.read_parquet(Layout(str(results)).cohort())
    return str(cohort.loc[cohort["split"] == "valid", "case"].iloc[0])


def test_kneemri_cohort_runs_to_metrics_and_fingerprints(knees, tmp_path, repo, snakemake_exe, capsys):
    """KneeMRI: ACL only (tasks acl), sagittal only; the DDPMs train on aclDiagnosis == 0 (the one definition of
    healthy, folds.healthy_training_cases); partial tears (aclDiagnosis 1) and ruptures (2) are not healthy."""
    mrnet, cohort = knees
    source = tmp_path / "kneemri"
    lines = [KNEEMRI_HEADER]
    for i, row in enumerate(cohort.itertuples()):
        name = f"{2000 + i}-1.pck"
        folder = source / f"vol0{1 + i % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / name, "wb") as fh:  # as the dataset: a pickled uint16 array (slices, rows, cols)
            pickle.dump(_sagittal(mrnet, row.split, row.case).astype(np.uint16), fh, protocol=2)
        # the generator's ACL label (its own split, seeded, keeps both classes in each fold of this cohort)
        diagnosis = 0 if row.acl == 0 else 1 + i % 2  # partial tears and ruptures
        lines.append(f"{2000 + i},1,{diagnosis},{i % 2},20,20,4,24,24,6,{name}\n")
    (source / "metadata.csv").write_text("".join(lines), encoding="utf-8")
    layer = {"source": {"kind": "kneemri", "root": str(source), "kneemri": {"valid_fraction": 0.25}}}
    results, jobs = _run(repo, snakemake_exe, tmp_path, layer)

    _check_metrics_and_fingerprints(results, ["acl"])
    table = pd.read_parquet(Layout(str(results)).cohort())
    assert set(table["source"]) == {"kneemri"} and table["abn"].isna().all() and table["path_coronal"].isna().all()
    healthy = healthy_training_cases(table)
    train = table[table["split"] == "train"]
    assert healthy == sorted(train.loc[train["acl_diagnosis"] == 0, "case"]) and len(healthy) >= 2
    assert (train["acl_diagnosis"] > 0).any()
    # the all-cases DDPM trained on exactly those cases, one per fold on those outside it (cross-fitted)
    log = (results / "logs" / "train_ddpm" / "reg.log").read_text(encoding="utf-8")
    assert f"fold all, {len(healthy)} healthy training cases" in log
    assert jobs.get("train_ddpm") == 1 and jobs.get("train_ddpm_fold") == 2
    membership = pd.read_parquet(Layout(str(results)).persona_membership("reg"))
    assert set(membership["protocol"]) == {"cross_fit"} and not membership["trained_on_case"].any()
    assert (results / "registration" / "reference_sagittal.nii.gz").exists()
    assert not (results / "registration" / "reference_coronal.nii.gz").exists()
    _diagnose_a_sagittal_exam(results, mrnet, cohort, tmp_path, capsys)


def _diagnose_a_sagittal_exam(
    results: Path, mrnet: Path, cohort: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """`radpersona diagnose` with the KneeMRI run's single-view bundle: a sagittal-only exam gets its prediction
    and page (one view's QC and figures); a coronal file is refused, naming the view the bundle does not read."""
    bundle = Layout(str(results)).bundle_dir("proposed", "acl")
    row = cohort[cohort["split"] == "valid"].iloc[0]
    exam = tmp_path / "exam_sagittal.nii.gz"
    write_volume(exam, _sagittal(mrnet, row.split, row.case).astype(np.float32))
    argv = ["diagnose", "--bundle", bundle, "--case", "k1", "--sagittal", str(exam)]
    assert main([*argv, "--coronal", str(exam), "--out", str(tmp_path / "refused")]) == 1
    assert "has no view 'coronal'" in capsys.readouterr().err and not (tmp_path / "refused").exists()
    out = tmp_path / "exam"
    assert main([*argv, "--out", str(out)]) == 0
    layout = ExamLayout(str(out))
    prediction = pd.read_parquet(layout.prediction()).iloc[0]
    assert prediction["task"] == "acl" and 0.0 < prediction["prob"] < 1.0
    assert list(pd.read_parquet(layout.qc())["view"]) == ["sagittal"]
    page = Path(layout.explanation()).read_text(encoding="utf-8")
    assert "k1" in page and page.count("<img ") == 1 and "data:image/png;base64" in page  # one view's figure


def test_dicom_manifest_with_an_external_persona_runs_to_metrics_and_fingerprints(knees, tmp_path, repo, snakemake_exe):
    """A manifest of DICOM series folders (sagittal; acl labelled, abn and men empty: task acl) whose personas
    come from a model trained elsewhere: no train_ddpm job, membership protocol external."""
    from radpersona.persona.train import train_ddpm

    mrnet, cohort = knees
    data = tmp_path / "data"
    lines = ["case,split,abn,acl,men,patient,sagittal,coronal,axial\n"]
    for i, row in enumerate(cohort.itertuples()):
        uid = f"1.2.826.0.1.3680043.2.1125.{9000 + i}"
        write_dicom_series(data / f"k{i}", _sagittal(mrnet, row.split, row.case), uid, spacing=DICOM_SPACING)
        lines.append(f"knee{i},{row.split},,{_acl(i)},,p{i},k{i},,\n")
    (data / "manifest.csv").write_text("".join(lines), encoding="utf-8")
    # the persona model of another run: sagittal, the run's shape and box (its weights do not matter here)
    config = deep_merge(
        deep_merge(yaml.safe_load((repo / "config.yaml").read_text(encoding="utf-8")), TINY),
        yaml.safe_load((repo / "presets" / "smoke.yaml").read_text(encoding="utf-8")),
    )
    settings = Settings.parse(deep_merge(config, TINY))
    external = tmp_path / "elsewhere" / "ddpm_reg.pt"
    rng = np.random.default_rng(0)
    volumes = rng.uniform(0, 1, (2, 1, *settings.preprocess.shape)).astype(np.float32)
    train_ddpm(volumes, settings=settings.persona.model, checkpoint=external, views=["sagittal"])

    layer = {
        "source": {"kind": "manifest", "manifest": str(data / "manifest.csv")},
        "persona": {"checkpoint": str(external)},
    }
    results, jobs = _run(repo, snakemake_exe, tmp_path, layer)

    _check_metrics_and_fingerprints(results, ["acl"])
    layout = Layout(str(results))
    table = pd.read_parquet(layout.cohort())
    assert set(table["source"]) == {"manifest"} and table["abn"].isna().all() and table["men"].isna().all()
    assert set(table["spacing_sagittal"]) == {"x".join(f"{s:g}" for s in DICOM_SPACING)}
    assert "train_ddpm" not in jobs and "train_ddpm_fold" not in jobs and jobs.get("persona") == 1
    assert not list((results / "models").glob("ddpm_*.pt"))
    membership = pd.read_parquet(layout.persona_membership("reg"))
    assert set(membership["protocol"]) == {"external"} and set(membership["model"]) == {external.name}
    assert not membership["trained_on_case"].any()
    metrics_md = (results / "tables" / "metrics.md").read_text(encoding="utf-8")
    assert PERSONA_PROTOCOLS[PersonaProtocol.EXTERNAL] in metrics_md
