"""persona.checkpoint: a persona model trained elsewhere makes every persona, loaded weights-only, and is refused
with the file and the mismatching value when its views, shape or box are not the run's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from test_cross_fit import cohort_table
from test_train_sample import SHAPE, knee_like, tiny_config, tiny_settings

from radpersona.errors import InputDataError
from radpersona.folds import EXTERNAL_MODEL, PERSONA_PROTOCOLS
from radpersona.layout import Layout
from radpersona.persona.sample import check_external_model, derive_case_seed, sample_personas
from radpersona.persona.train import train_ddpm
from radpersona.settings import PersonaSampleSettings
from radpersona.stages import persona as persona_stages
from radpersona.vocabulary import PersonaProtocol
from radpersona.volume import read_volume, write_volume

SAGITTAL = ["sagittal"]
SAMPLE = {"sampler": "ddim", "steps": 3, "batch_size": 4, "seed": 7}


@pytest.fixture(scope="module")
def external(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sagittal-only DDPM trained on volumes of another cohort (2 steps: its weights do not matter here)."""
    path = tmp_path_factory.mktemp("elsewhere") / "ddpm_reg.pt"
    settings = tiny_settings(train={**tiny_config()["train"], "steps": 2})
    train_ddpm(knee_like(3, views=1, seed=11), settings=settings, checkpoint=path, views=SAGITTAL)
    return path


def test_the_checkpoint_records_its_view_names(external: Path) -> None:
    state = torch.load(external, weights_only=True)
    assert state["views"] == SAGITTAL and state["in_views"] == 1


@pytest.mark.parametrize(
    ("views", "shape", "box", "message"),
    [
        (["coronal"], SHAPE, [0.5, 0.3, 0.5], "trained on views ['sagittal'], the source has ['coronal']"),
        (["sagittal", "coronal"], SHAPE, [0.5, 0.3, 0.5], "the source has ['sagittal', 'coronal']"),
        (SAGITTAL, (8, 16, 32), [0.5, 0.3, 0.5], "shape [8, 16, 16], preprocess.shape is [8, 16, 32]"),
        (SAGITTAL, SHAPE, [0.6, 0.3, 0.5], "box [0.5, 0.3, 0.5], persona.box is [0.6, 0.3, 0.5]"),
    ],
)
def test_a_model_that_does_not_fit_is_refused_naming_file_and_value(
    external: Path, views: list[str], shape: tuple, box: list[float], message: str
) -> None:
    with pytest.raises(InputDataError, match="persona.checkpoint") as err:
        check_external_model(external, views=views, shape=shape, box=box)
    assert message in str(err.value) and str(external) in str(err.value)


def test_a_model_without_view_names_or_a_missing_file_is_refused(tmp_path: Path, external: Path) -> None:
    state = torch.load(external, weights_only=True)
    state["views"] = None
    torch.save(state, tmp_path / "old.pt")
    with pytest.raises(InputDataError, match="records no view names"):
        check_external_model(tmp_path / "old.pt", views=SAGITTAL, shape=SHAPE, box=[0.5, 0.3, 0.5])
    with pytest.raises(InputDataError, match="not found"):
        check_external_model(tmp_path / "none.pt", views=SAGITTAL, shape=SHAPE, box=[0.5, 0.3, 0.5])


def _sagittal_results(root: Path) -> tuple[Layout, pd.DataFrame, np.ndarray]:
    layout = Layout(str(root))
    cohort = cohort_table()
    Path(layout.cohort()).parent.mkdir(parents=True, exist_ok=True)
    cohort.to_parquet(layout.cohort())
    volumes = knee_like(len(cohort), views=1)
    for n, case in enumerate(cohort["case"]):
        write_volume(layout.working("reg", case, "sagittal"), volumes[n, 0], (3.0, 0.5, 0.5))
    return layout, cohort, volumes


def _external_personas(layout: Layout, external: Path, *, box: list[float]) -> None:
    """The persona stage of the sagittal cohort with the external model (``persona.checkpoint``); ``cross_fit``
    is set and not read: an external model never saw this cohort."""
    persona_stages.persona(
        results=layout.root,
        reg="reg",
        box=box,
        sample=SAMPLE,
        device="cpu",
        views=SAGITTAL,
        threads=1,
        cross_fit=True,
        checkpoint=external,
    )


def test_the_external_model_makes_every_persona_and_the_membership_says_it_saw_no_case(
    tmp_path: Path, external: Path
) -> None:
    layout, cohort, volumes = _sagittal_results(tmp_path / "results")
    _external_personas(layout, external, box=[0.5, 0.3, 0.5])
    assert not Path(layout.ddpm("reg")).exists()
    membership = pd.read_parquet(layout.persona_membership("reg"))
    assert set(membership["protocol"]) == {PersonaProtocol.EXTERNAL.value}
    assert set(membership["model_fold"]) == {EXTERNAL_MODEL} and set(membership["model"]) == {external.name}
    assert not membership["trained_on_case"].any()
    table = pd.read_csv(layout.table("persona_membership_reg")).set_index(["protocol", "cases"])
    assert set(table.index.get_level_values(0)) == {"external"}  # no paper-protocol comparison: no own DDPM
    assert not table.loc[("external", "healthy train"), "trained_on_case"]
    assert "`external`" in Path(layout.table("persona_membership_reg", "md")).read_text(encoding="utf-8")
    index = int(np.flatnonzero(cohort["case"] == "0005")[0])
    expected = sample_personas(
        volumes[index : index + 1],
        checkpoint=external,
        sample=PersonaSampleSettings.from_config(SAMPLE),
        box=[0.5, 0.3, 0.5],
        seeds=[derive_case_seed(7, "0005")],
        device="cpu",
    )[0, 0]
    written, _ = read_volume(layout.persona("reg", "0005", "sagittal"))
    np.testing.assert_allclose(written, expected, atol=1e-5)
    assert "never saw" in PERSONA_PROTOCOLS[PersonaProtocol.EXTERNAL]


def test_the_persona_stage_refuses_a_mismatching_model_before_writing(tmp_path: Path, external: Path) -> None:
    layout, _, _ = _sagittal_results(tmp_path / "results")
    with pytest.raises(InputDataError, match=r"persona\.box is \[0\.5, 0\.4, 0\.5\]"):
        _external_personas(layout, external, box=[0.5, 0.4, 0.5])
    assert not Path(layout.persona_membership("reg")).exists()
    assert not Path(layout.persona("reg", "0000", "sagittal")).exists()
