"""`radpersona diagnose` with a bundle made by the workflow: the smoke preset's run (shared with
tests/test_workflow.py through the ``smoke_run`` fixture), whose default targets include the bundles.

The exam compared with the workflow is a valid case, whose persona the workflow makes with the all-cases DDPM
(cross-fitting gives the fold models only to training cases), and whose prediction comes from the fingerprint
model trained on all of train -- the two models in the bundle.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_sources_manifest import write_dicom_series

from radpersona.bundle import SNAKEMAKE_MARKER
from radpersona.cli import main
from radpersona.errors import InputDataError
from radpersona.layout import BundleLayout, ExamLayout, Layout
from radpersona.stages.diagnose import diagnose
from radpersona.vocabulary import VIEWS
from radpersona.volume import write_volume

pytestmark = pytest.mark.slow

EXPERIMENT, TASK = "proposed", "acl"
PROB_ATOL = 1e-6


@pytest.fixture(scope="module")
def bundle_run(smoke_run):
    """The Layout of the shared smoke run (tests/conftest.py), whose default targets include the bundles."""
    _, results, _, _ = smoke_run
    layout = Layout(str(results))
    assert Path(layout.bundle_dir(EXPERIMENT, TASK)).is_dir()
    return layout


def test_the_bundle_holds_what_diagnose_needs_and_nothing_else(bundle_run):
    files = BundleLayout(bundle_run.bundle_dir(EXPERIMENT, TASK))
    expected = {Path(files.reference(v)).name for v in VIEWS} | {
        Path(p).name
        for p in (
            files.ddpm(),
            files.fingerprint_model(),
            files.imputation(),
            files.config(),
            files.versions(),
            files.manifest(),
        )
    }
    assert {p.name for p in Path(files.root).iterdir()} - {SNAKEMAKE_MARKER} == expected
    assert Path(files.ddpm()).read_bytes() == Path(bundle_run.ddpm("reg")).read_bytes()


def test_diagnose_of_a_cohort_exam_equals_the_workflow(bundle_run, tmp_path):
    """A valid case's raw volumes, given to diagnose under the case's id: the workflow's probability, threshold
    and fingerprint for that case."""
    layout = bundle_run
    predictions = pd.read_parquet(layout.predictions(EXPERIMENT, TASK))
    qc = pd.read_parquet(layout.qc()) if Path(layout.qc()).exists() else None
    valid = predictions[predictions["split"] == "valid"]["case"].tolist()
    if qc is None:
        qc = pd.concat([pd.read_parquet(layout.qc_case(c)) for c in valid])
    flagged = set(qc.loc[qc["flagged"], "case"])
    case = next(c for c in valid if c not in flagged)  # diagnose refuses a registration that fails QC
    out = tmp_path / "exam"
    record = diagnose(
        bundle=layout.bundle_dir(EXPERIMENT, TASK),
        exam={view: layout.raw(case, view) for view in VIEWS},
        out=out,
        case=case,
        threads=2,
    )
    dag = predictions.set_index("case").loc[case]
    exam = ExamLayout(str(out))
    mine = pd.read_parquet(exam.prediction()).iloc[0]
    # PROB_ATOL: the persona of one exam sampled alone differs from the workflow's batched one by about one float32
    # ulp (1e-7) on this CPU; through the radiomics that moves r by ~1e-5 and the probability by ~1e-7
    assert mine["prob"] == pytest.approx(dag["prob"], abs=PROB_ATOL)
    assert record["prob"] == pytest.approx(dag["prob"], abs=PROB_ATOL)
    assert mine["prob_soft"] == pytest.approx(dag["prob_soft"], abs=PROB_ATOL)
    assert mine["threshold"] == dag["threshold"] and mine["pred"] == dag["pred"] and mine["n_used"] == dag["n_used"]
    columns = ["feature", "u", "z", "beta", "r", "contribution"]
    theirs = pd.read_parquet(layout.fingerprints(EXPERIMENT, TASK))
    theirs = theirs[theirs["case"] == case][columns].sort_values("feature").reset_index(drop=True)
    ours = pd.read_parquet(exam.fingerprint())[columns].sort_values("feature").reset_index(drop=True)
    assert ours["feature"].tolist() == theirs["feature"].tolist()  # the same selected features
    assert (ours["z"] == theirs["z"]).all() and (ours["beta"] == theirs["beta"]).all()
    np.testing.assert_allclose(ours["u"], theirs["u"], rtol=0, atol=1e-5, err_msg="u")
    np.testing.assert_allclose(ours["r"], theirs["r"], rtol=1e-4, atol=1e-4, err_msg="r")
    np.testing.assert_allclose(ours["contribution"], theirs["contribution"], rtol=0, atol=1e-5, err_msg="contribution")
    assert "<html" in Path(exam.explanation()).read_text(encoding="utf-8").lower()


def test_diagnose_of_a_new_synthetic_exam_writes_the_page(bundle_run, tmp_path, capsys):
    """An exam the cohort never had (a new synthetic knee; its sagittal view a DICOM series), through the CLI."""
    from radpersona.synthetic.cohort import simulate_case

    new = simulate_case(9999, seed=424242, slices=(16, 24), matrix=128)
    paths = {}
    for view in VIEWS:
        image = new.views[view].image.astype(np.float32)
        if view == "sagittal":
            paths[view] = tmp_path / "dicom" / view
            write_dicom_series(paths[view], image, "1.2.826.0.1.3680043.2.1125.77")
        else:
            paths[view] = tmp_path / f"{view}.nii.gz"
            write_volume(paths[view], image)
    out = tmp_path / "new"
    argv = ["diagnose", "--bundle", bundle_run.bundle_dir(EXPERIMENT, TASK), "--out", str(out), "--case", "new1"]
    argv += [a for view in VIEWS for a in (f"--{view}", str(paths[view]))]
    assert main(argv) == 0, capsys.readouterr().err
    assert "probability" in capsys.readouterr().out
    exam = ExamLayout(str(out))
    page = Path(exam.explanation()).read_text(encoding="utf-8")
    assert "new1" in page and "data:image/png;base64" in page
    prediction = pd.read_parquet(exam.prediction()).iloc[0]
    assert 0.0 <= prediction["prob"] <= 1.0 and prediction["split"] == "exam"
    assert len(pd.read_parquet(exam.qc())) == len(VIEWS)


def test_the_workflow_bundle_refuses_a_tampered_model(bundle_run, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(bundle_run.bundle_dir(EXPERIMENT, TASK), copy)
    model = Path(BundleLayout(str(copy)).fingerprint_model())
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0xFF
    model.write_bytes(bytes(data))
    with pytest.raises(InputDataError, match=r"fingerprint\.pt.*SHA-256"):
        diagnose(bundle=copy, exam={}, out=tmp_path / "out")
    assert not (tmp_path / "out").exists()
