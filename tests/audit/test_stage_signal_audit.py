"""The signal audit stage on a tiny generated cohort (noreg branch, one view), files through the Layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from radpersona.features import patch_grid
from radpersona.layout import Layout
from radpersona.parquet import write_parquet
from radpersona.persona.masks import box_slices
from radpersona.preprocess import preprocess_volume
from radpersona.settings import PreprocessSettings
from radpersona.stages.audit import AUDIT_COLUMNS, signal_audit
from radpersona.truth import reg_resample, reg_resample_stack
from radpersona.vocabulary import LESION_CODES
from radpersona.volume import read_volume, write_volume

VIEW = "sagittal"
BOX = (0.5, 0.3, 0.5)
PRE = PreprocessSettings.from_config(
    {"shape": [8, 20, 20], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}
)
RAW_SHAPE = (8, 40, 40)
# inside the box's first grid-2 patch on the preprocessed grid (slices 2:4, rows 7:10, cols 5:10)
LESION = (slice(2, 4), slice(14, 20), slice(10, 20))
# the same block outside the box: healthy cases have it, so whole-volume histograms do not tell the classes apart
DECOY = (slice(2, 4), slice(0, 6), slice(0, 10))


def _cohort(tmp_path: Path) -> tuple[Layout, pd.DataFrame]:
    """20 cases (12 train, 8 valid), every other one with an ACL-coded bright block in the box."""
    layout = Layout(str(tmp_path / "results"))
    Path(layout.synthetic_truth_dir()).mkdir(parents=True)
    rng = np.random.default_rng(3)
    rows, features = [], []
    sl = box_slices(PRE.shape, BOX)
    for n in range(20):
        case, lesion = f"{n:04d}", n % 2 == 1
        anatomy = np.full(RAW_SHAPE, 100.0, np.float32)
        anatomy[:, 30:, :] = 10.0  # air below the knee
        codes = np.zeros(RAW_SHAPE, np.uint8)
        image = anatomy.copy()
        if lesion:
            codes[LESION] = LESION_CODES["acl_tear"]
            image[LESION] += 60.0
        else:
            image[DECOY] += 60.0
        noise = rng.normal(0.0, 5.0, RAW_SHAPE).astype(np.float32)
        healthy = anatomy + noise if lesion else image + noise  # the case with its lesion switched off
        image = image + noise
        np.save(layout.truth(case, VIEW, "healthy"), healthy)
        np.save(layout.truth(case, VIEW, "lesion"), codes)
        write_volume(layout.raw(case, VIEW), image)
        preprocess_volume(layout.raw(case, VIEW), layout.pre(case, VIEW), PRE, case=case, view=VIEW)
        pre, _ = read_volume(layout.pre(case, VIEW))
        persona = pre.copy()
        if lesion:
            persona[2:4, 7:10, 5:10] = np.median(pre[sl])  # a persona that removes the lesion
        write_volume(layout.residual("noreg", case, VIEW), pre - persona)
        split = "train" if n < 12 else "valid"
        rows.append({"case": case, "split": split, "fold": n % 2 if split == "train" else -1, "abn": int(lesion)})
        row = {"case": case}
        for (i, j, k), psl in patch_grid(sl, 2):
            row[f"{VIEW}.original.p{i}{j}{k}.firstorder.Mean"] = float(pre[psl].mean())
            row[f"{VIEW}.original.p{i}{j}{k}.location.i"] = float(i)
        features.append(row)
    cohort = pd.DataFrame(rows)
    cohort["acl"], cohort["men"] = cohort["abn"], 0
    write_parquet(cohort, layout.cohort())
    write_parquet(pd.DataFrame(features), layout.wide("noreg", 2))
    for task in ("abn", "acl", "men"):
        pred = cohort.assign(task=task, label=cohort[task], prob=0.2 + 0.6 * cohort[task] * (cohort.index % 3 > 0))
        write_parquet(pred, layout.predictions("proposed", task))
    return layout, cohort


def test_signal_audit_measures_lesion_signal_and_excludes_cases_without_lesion(tmp_path):
    layout, cohort = _cohort(tmp_path)
    signal_audit(
        results=layout.root,
        experiment="proposed",
        reg="noreg",
        grid=2,
        preprocess=PRE.to_config(),
        box=BOX,
        bootstrap=50,
        seed=0,
        views=(VIEW,),
    )
    table = pd.read_csv(layout.signal_audit())
    assert tuple(table.columns) == AUDIT_COLUMNS
    assert [tuple(r) for r in table[["task", "view"]].to_numpy()] == [
        (t, v) for t in ("abn", "acl", "men") for v in (VIEW, "all")
    ]
    acl = table[(table.task == "acl") & (table.view == VIEW)].iloc[0]
    # the ten lesion cases only: the ten without lesion (label 0, empty mask) are left out
    assert acl.n_cases == int(cohort["acl"].sum()) == 10
    assert acl.raw_voxels == 120 and acl.pre_voxels == pytest.approx(30, abs=6)
    # a +60 lesion over noise sd 5: CNR 12 raw; resampling averages noise down, so the CNR holds or grows
    assert acl.raw_cnr == pytest.approx(12, rel=0.2)
    assert acl.pre_cnr > 5 and acl.working_cnr == acl.pre_cnr  # noreg: the working grid is pre
    assert acl.raw_survival == acl.pre_survival == 1.0
    assert acl.residual_in > 5 * acl.residual_out
    # the lesion patch separates the classes; whole-volume statistics cannot (the decoy block has the same mass)
    assert acl.oracle_auc == 1.0 and acl.oracle_feature == f"{VIEW}.original.p000.firstorder.Mean"
    assert acl.floor_auc < 0.9
    both = table[(table.task == "acl") & (table.view == "all")].iloc[0]
    assert both.fingerprint_auc_valid == pytest.approx(
        _auc(cohort[cohort.split == "valid"].index, cohort, "acl"), abs=1e-9
    )
    assert np.isnan(acl.fingerprint_auc_valid)  # task-level: only in the row over every view
    men = table[table.task == "men"]
    assert (men.n_cases == 0).all() and men.raw_voxels.isna().all() and men.oracle_auc.isna().all()
    md = Path(layout.signal_audit("md")).read_text(encoding="utf-8")
    assert md.startswith("# Signal audit") and "| acl | sagittal | 10 |" in md


def _auc(index: pd.Index, cohort: pd.DataFrame, task: str) -> float:
    from radpersona.evaluation import auc

    labels = cohort.loc[index, task].to_numpy()
    prob = 0.2 + 0.6 * labels * (index.to_numpy() % 3 > 0)
    return auc(labels, prob)


def test_reg_resample_stack_equals_one_call_per_array(tmp_path):
    pytest.importorskip("SimpleITK")
    try:
        from radpersona.registration import find_niftyreg_tool

        find_niftyreg_tool("reg_resample")
    except Exception:  # noqa: BLE001 - no NiftyReg on this machine
        pytest.skip("NiftyReg's reg_resample is not installed")
    rng = np.random.default_rng(0)
    arrays = [rng.random((6, 12, 10)).astype(np.float32) for _ in range(3)]
    reference = tmp_path / "ref.nii.gz"
    write_volume(reference, arrays[0], (2.0, 1.0, 1.0))
    affine = tmp_path / "aff.txt"
    affine.write_text("1 0 0 0.4\n0 1 0 -0.3\n0 0 1 0.2\n0 0 0 1\n", encoding="utf-8")
    stacked = reg_resample_stack(arrays, (2.0, 1.0, 1.0), reference, affine, case="0001", view=VIEW)
    for array, got in zip(arrays, stacked):
        single = reg_resample(array, (2.0, 1.0, 1.0), reference, affine, case="0001", view=VIEW)
        np.testing.assert_array_equal(got, single)
    (one,) = reg_resample_stack(arrays[:1], (2.0, 1.0, 1.0), reference, affine, case="0001", view=VIEW)
    np.testing.assert_array_equal(one, stacked[0])
