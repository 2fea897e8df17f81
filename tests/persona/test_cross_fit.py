"""Cross-fitted personas: no persona comes from a DDPM that trained on its case; each view keeps its spacing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_train_sample import knee_like, sampling, tiny_config

from radpersona.folds import ALL_FOLD, healthy_training_cases, persona_model_fold, persona_training_cases
from radpersona.layout import Layout
from radpersona.persona.sample import derive_case_seed, sample_personas
from radpersona.stages import persona as persona_stages
from radpersona.volume import read_volume, write_volume

VIEWS = ["sagittal", "coronal", "axial"]
SPACINGS = {"sagittal": (3.0, 0.5, 0.5), "coronal": (2.5, 0.6, 0.6), "axial": (2.0, 0.7, 0.7)}


def cohort_table() -> pd.DataFrame:
    """12 training cases in 3 folds (a lesion case in each), 3 valid cases."""
    rows = []
    for n in range(12):
        rows.append({"case": f"{n:04d}", "split": "train", "fold": n % 3, "abn": int(n in (0, 4, 8))})
    for n in range(12, 15):
        rows.append({"case": f"{n:04d}", "split": "valid", "fold": -1, "abn": int(n == 12)})
    cohort = pd.DataFrame(rows)
    cohort["acl"] = 0
    cohort["men"] = 0
    return cohort


def test_a_fold_model_never_trains_on_its_fold_and_the_all_model_on_no_valid_case() -> None:
    cohort = cohort_table()
    healthy = healthy_training_cases(cohort)
    assert healthy == [f"{n:04d}" for n in range(12) if n not in (0, 4, 8)]
    for k in range(3):
        fold_cases = set(cohort.loc[cohort["fold"] == k, "case"])
        trained = persona_training_cases(cohort, str(k))
        assert trained and not fold_cases & set(trained)
        assert set(trained) == set(healthy) - fold_cases
    assert persona_training_cases(cohort, ALL_FOLD) == healthy


@pytest.mark.parametrize("cross_fit", [True, False])
def test_which_model_makes_each_persona(cross_fit: bool) -> None:
    cohort = cohort_table()
    model = persona_model_fold(cohort, cross_fit)
    trained_on = [case in persona_training_cases(cohort, model[case]) for case in cohort["case"]]
    if cross_fit:
        assert not any(trained_on)  # leak-free by construction
        assert model["0001"] == "1" and model["0012"] == ALL_FOLD
    else:  # the paper's protocol: the healthy training cases' personas come from a model that saw them
        assert set(model.values()) == {ALL_FOLD}
        assert sum(trained_on) == len(healthy_training_cases(cohort))


def test_the_persona_stage_uses_each_case_s_fold_model(tmp_path: Path) -> None:
    """Stage level: DDPMs for all and for each fold, then personas: each from the model of its case's fold,
    the membership table says so, and no persona came from a model that trained on its case."""
    layout = Layout(str(tmp_path / "results"))
    cohort = cohort_table()
    Path(layout.cohort()).parent.mkdir(parents=True, exist_ok=True)
    cohort.to_parquet(layout.cohort())
    volumes = knee_like(len(cohort))
    for n, case in enumerate(cohort["case"]):
        for v, view in enumerate(VIEWS):
            write_volume(layout.working("reg", case, view), volumes[n, v], SPACINGS[view])
    settings = tiny_config(train={**tiny_config()["train"], "steps": 2})
    for fold in ["all", "0", "1", "2"]:
        persona_stages.train_ddpm(
            results=layout.root,
            reg="reg",
            checkpoint=layout.ddpm("reg", fold),
            settings=settings,
            views=VIEWS,
            threads=1,
            fold=fold,
        )
    sample = {"sampler": "ddim", "steps": 3, "batch_size": 4, "seed": 7}
    persona_stages.persona(
        results=layout.root,
        reg="reg",
        box=[0.5, 0.3, 0.5],
        sample=sample,
        device="cpu",
        views=VIEWS,
        threads=1,
        cross_fit=True,
    )
    membership = pd.read_parquet(layout.persona_membership("reg"))
    assert not membership["trained_on_case"].any()
    assert set(membership["protocol"]) == {"cross_fit"}
    assert dict(zip(membership["case"], membership["model_fold"])) == persona_model_fold(cohort, True)
    # the persona of training case 0005 (fold 2) is the fold-2 model's, not the all model's
    index = int(np.flatnonzero(cohort["case"] == "0005")[0])
    expected = {
        fold: sample_personas(
            volumes[index : index + 1],
            checkpoint=Path(layout.ddpm("reg", fold)),
            sample=sampling(steps=3, batch_size=4),
            box=[0.5, 0.3, 0.5],
            seeds=[derive_case_seed(7, "0005")],
            device="cpu",
        )[0, 0]
        for fold in ("2", "all")
    }
    # the membership table: this run's protocol and the paper's, healthy train (9) versus healthy valid (2)
    table = pd.read_csv(layout.table("persona_membership_reg"))
    rows = table.set_index(["protocol", "cases"])
    assert (
        rows.loc[("cross_fit", "healthy train"), "n"] == 9
        and not rows.loc[("cross_fit", "healthy train"), "trained_on_case"]
    )
    assert rows.loc[("paper", "healthy train"), "n"] == 9 and rows.loc[("paper", "healthy train"), "trained_on_case"]
    assert rows.loc[("paper", "healthy valid"), "n"] == 2
    for protocol in ("cross_fit", "paper"):
        gap = rows.loc[(protocol, "gap (train - valid)"), "box_ssim"]
        difference = (
            rows.loc[(protocol, "healthy train"), "box_ssim"] - rows.loc[(protocol, "healthy valid"), "box_ssim"]
        )
        assert gap == pytest.approx(difference, abs=1e-6)  # the CSV keeps 6 significant digits
    assert "Persona membership" in Path(layout.table("persona_membership_reg", "md")).read_text(encoding="utf-8")
    for view in VIEWS:  # each view keeps its own voxel spacing
        for path in (layout.persona("reg", "0005", view), layout.residual("reg", "0005", view)):
            assert read_volume(path)[1] == pytest.approx(SPACINGS[view])
    written, _ = read_volume(layout.persona("reg", "0005", "sagittal"), case="0005", view="sagittal")
    assert np.allclose(written, expected["2"], atol=1e-5)
    assert not np.allclose(written, expected["all"], atol=1e-5)
