"""Reconstruction studies: configurations, metrics, truth on the model grid, per-config evaluation, summary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon
from test_baselines import REPO, gan_config, gan_section, vit_config, vit_section

from radpersona.errors import ConfigError, InputDataError
from radpersona.layout import Layout
from radpersona.persona import BASELINE_PERSONA_KEYS
from radpersona.persona.baselines import inpaint_baseline, train_baseline
from radpersona.persona.masks import box_mask, box_slices
from radpersona.persona.reconstruction.configs import box_origins, resolve_configs, reuses_pipeline_ddpm
from radpersona.persona.reconstruction.metrics import counterfactual_metrics, region_metrics, ssim_3d
from radpersona.persona.reconstruction.report import plot_config, summarise, summary_markdown
from radpersona.persona.reconstruction.study import (
    RESULT_COLUMNS,
    STUDY_COUNTERFACTUAL,
    STUDY_COUNTERPART,
    STUDY_HEALTHY,
    evaluate_config,
)
from radpersona.persona.reconstruction.truth_grid import truth_on_grid
from radpersona.persona.train import train_ddpm
from radpersona.settings import (
    BaselinePersonaSettings,
    PersonaModelSettings,
    PersonaSampleSettings,
    PreprocessSettings,
    ReconstructionSettings,
    RegistrationSettings,
    Settings,
    deep_merge,
    read_config,
)
from radpersona.vocabulary import VIEWS

SHAPE = (8, 16, 16)
BOX = [0.5, 0.3, 0.5]
GAN = gan_section(steps=2)
VIT = vit_section(steps=2)


def recon(persona: dict) -> ReconstructionSettings:
    return ReconstructionSettings.from_config(persona["reconstruction"])


def baseline_persona(persona: dict) -> BaselinePersonaSettings:
    return BaselinePersonaSettings.from_config({k: persona[k] for k in BASELINE_PERSONA_KEYS})


def persona_settings(**configs: dict) -> dict:
    return {
        "box": list(BOX),
        "train_masks": "mixed",
        "prediction_type": "epsilon",
        "num_train_timesteps": 20,
        "beta_start": 1.0e-4,
        "beta_end": 2.0e-1,
        "intensity_range": [0.0, 1.0],
        "unet": {"channels": [8, 16], "attention_levels": [False, False], "num_res_blocks": 1, "norm_num_groups": 4},
        "train": {
            "steps": 2,
            "batch_size": 2,
            "learning_rate": 1.0e-3,
            "weight_decay": 0.0,
            "ema_decay": 0.9,
            "grad_clip": 1.0,
            "checkpoint_every": 10,
            "seed": 1,
        },
        "sample": {"sampler": "ddim", "steps": 4, "batch_size": 4, "seed": 2},
        "device": "cpu",
        "reconstruction": {
            "in_rule_all": False,
            "models": ["ddpm", "gan", "vit_ae"],
            "configs": configs or {"main": {}},
            "location_seed": 5,
            "gan": gan_config(steps=2),
            "vit_ae": vit_config(steps=2),
        },
    }


def smooth(n: int, views: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, s) for s in SHAPE), indexing="ij")
    out = np.empty((n, views, *SHAPE), dtype=np.float32)
    for i in range(n):
        for v in range(views):
            c = rng.normal(0, 0.2, 3)
            out[i, v] = np.clip(
                0.2
                + 0.6 * np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / 0.3)
                + rng.normal(0, 0.02, SHAPE),
                0,
                1,
            )
    return out


# ------------------------------------------------------------------------------- configurations
def test_configs_take_defaults_and_reject_bad_overrides():
    persona = persona_settings(
        main={}, small={"box": [0.3, 0.3, 0.3], "views": "coronal", "location": "random", "reg": "noreg"}
    )
    cfgs = resolve_configs(recon(persona), BOX, "reg", VIEWS)
    assert cfgs["main"].box == tuple(BOX) and cfgs["main"].views == ("sagittal", "coronal", "axial")
    assert cfgs["main"].reg == "reg" and cfgs["main"].location == "central"
    assert (
        cfgs["small"].views == ("coronal",) and cfgs["small"].reg == "noreg" and cfgs["small"].view_label == "coronal"
    )
    assert reuses_pipeline_ddpm(cfgs["main"], BOX) and not reuses_pipeline_ddpm(cfgs["small"], BOX)
    sagittal_only = resolve_configs(recon(persona_settings(main={})), BOX, "reg", ["sagittal"])["main"]  # KneeMRI
    assert sagittal_only.views == ("sagittal",) and sagittal_only.view_label == "all"
    # the settings refuse bad overrides: a view the source lacks (when the cohort's views are known) ...
    settings = Settings.parse(
        deep_merge(
            read_config(REPO / "config.yaml"), {"persona": {"reconstruction": {"configs": {"x": {"views": "coronal"}}}}}
        )
    )
    with pytest.raises(ConfigError, match="source's views"):
        settings.check_views(["sagittal"])
    # ... and bad keys or values at once
    for bad, key in [
        ({"views": "oblique"}, "views"),
        ({"box": [0.5, 1.5, 0.5]}, "box"),
        ({"size": 3}, "unknown key"),
        ({"location": "edge"}, "location"),
    ]:
        with pytest.raises(ConfigError, match=f"persona.reconstruction.configs.x.*{key}|{key}"):
            recon(persona_settings(x=bad))
    with pytest.raises(ConfigError, match="models"):
        recon({"reconstruction": {**persona_settings()["reconstruction"], "models": ["unet"]}})


def test_random_origins_are_seeded_per_case():
    cfg = resolve_configs(recon(persona_settings(r={"location": "random"}, c={})), BOX, "reg", VIEWS)
    a = box_origins(cfg["r"], SHAPE, ["0001", "0002", "0003"], 5)
    assert a == box_origins(cfg["r"], SHAPE, ["0001", "0002", "0003"], 5)
    assert a[1] == box_origins(cfg["r"], SHAPE, ["0002"], 5)[0]  # independent of the other cases
    assert a != box_origins(cfg["r"], SHAPE, ["0001", "0002", "0003"], 6)
    assert box_origins(cfg["c"], SHAPE, ["0001"], 5) == [None]


# -------------------------------------------------------------------------------------- metrics
def test_region_metrics_match_hand_computation():
    target = smooth(1)[0]
    recon = target.copy()
    box = box_slices(SHAPE, BOX)
    crop = (slice(None), *box)
    recon[crop] += 0.1
    m = region_metrics(target, recon, box, 1.0)
    assert m["box"]["mse"] == pytest.approx(0.01, rel=1e-4)
    fraction = np.prod([s.stop - s.start for s in box]) / np.prod(SHAPE)
    assert m["volume"]["mse"] == pytest.approx(0.01 * fraction, rel=1e-4)
    assert ssim_3d(target, target, 1.0) == pytest.approx(1.0)
    assert m["box"]["ssim"] < 1.0 and m["volume"]["ssim"] < 1.0
    assert np.isnan(ssim_3d(target[:, :2], target[:, :2], 1.0))  # too thin for any SSIM window


def test_counterfactual_metrics_contrast_removed():
    healthy = smooth(1)[0]
    lesion = np.zeros_like(healthy, dtype=bool)
    lesion[:, 4, 7:9, 7:10] = True  # inside the central box
    original = healthy.copy()
    original[lesion] += 0.3
    box = box_slices(SHAPE, BOX)
    perfect = counterfactual_metrics(original, healthy, lesion, healthy, box, 1.0)
    assert perfect["lesion"]["contrast_removed"] == pytest.approx(1.0) and perfect["lesion"]["mse"] == 0.0
    kept = counterfactual_metrics(original, healthy, lesion, original, box, 1.0)
    assert kept["lesion"]["contrast_removed"] == pytest.approx(0.0) and kept["lesion"]["mse"] == pytest.approx(0.09)
    half = healthy.copy()
    half[lesion] += 0.15
    assert counterfactual_metrics(original, healthy, lesion, half, box, 1.0)["lesion"][
        "contrast_removed"
    ] == pytest.approx(0.5, abs=1e-5)
    assert kept["lesion"]["n_voxels"] == int(lesion.sum())
    outside = np.zeros_like(lesion)
    outside[:, 0, 0, 0] = True
    assert counterfactual_metrics(original, healthy, outside, healthy, box, 1.0) is None


def test_summary_pairs_cases_and_matches_scipy():
    rng = np.random.default_rng(0)
    rows = []
    for i in range(8):
        for model, shift in (("ddpm", 0.0), ("gan", 0.01)):
            rows.append(
                {
                    "model": model,
                    "config": "main",
                    "case": f"{i:04d}",
                    "region": "box",
                    "study": STUDY_HEALTHY,
                    "mse": 0.01 + shift + rng.normal(0, 0.002),
                    "ssim": 0.9 - shift,
                    "contrast_removed": np.nan,
                    "n_voxels": 10,
                }
            )
    table = pd.DataFrame(rows)
    summary = summarise(table)
    gan = summary[summary["model"] == "gan"].iloc[0]
    d, g = (table[table["model"] == m].sort_values("case")["mse"].to_numpy() for m in ("ddpm", "gan"))
    assert gan["p_mse_vs_ddpm"] == pytest.approx(wilcoxon(d, g).pvalue)
    assert gan["mse_sd"] == pytest.approx(np.std(g, ddof=1)) and gan["n"] == 8
    assert np.isnan(summary[summary["model"] == "ddpm"].iloc[0]["p_mse_vs_ddpm"])
    assert "| main | heldout_healthy | box | gan | 8 |" in summary_markdown(summary)


# ---------------------------------------------------------------------------- truth on the grid
def _write_case(layout, case, view, raw, healthy, lesion, preprocess):
    from radpersona.preprocess import preprocess_volume
    from radpersona.volume import write_volume

    Path(layout.synthetic_truth_dir()).mkdir(parents=True, exist_ok=True)
    write_volume(layout.raw(case, view), raw, (1.0, 1.0, 1.0))
    np.save(layout.truth(case, view, "healthy"), healthy)
    np.save(layout.truth(case, view, "lesion"), lesion)
    preprocess_volume(
        layout.raw(case, view), layout.pre(case, view), PreprocessSettings.from_config(preprocess), case=case, view=view
    )


def _on_grid(layout, case, view, preprocess, registered=False):
    """``truth_on_grid`` on the files the layout names (registered: through the case's affine)."""
    return truth_on_grid(
        case,
        view,
        healthy=layout.truth(case, view, "healthy"),
        lesion=layout.truth(case, view, "lesion"),
        raw=layout.raw(case, view),
        pre=layout.pre(case, view),
        preprocess=PreprocessSettings.from_config(preprocess),
        affine=layout.affine(case, view) if registered else None,
        reference=layout.reference(view) if registered else None,
    )


def _knee(seed: int, shift: float = 0.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(np.linspace(-1, 1, 12), np.linspace(-1, 1, 40), np.linspace(-1, 1, 40), indexing="ij")
    img = (
        60
        + 150 * np.exp(-((z / 0.8) ** 2 + ((y - shift) / 0.5) ** 2 + ((x + shift) / 0.4) ** 2))
        + rng.normal(0, 3, z.shape)
    )
    return np.clip(img, 0, 255).astype(np.uint8)


PRE = {"shape": [8, 16, 16], "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}


def test_truth_on_grid_reproduces_preprocess_and_registration(tmp_path):
    from radpersona.registration import register_volume
    from radpersona.volume import read_volume, write_volume

    layout = Layout(str(tmp_path))
    healthy = _knee(0)
    lesion = np.zeros_like(healthy)
    lesion[4:8, 16:24, 16:24] = 2
    raw = healthy.copy()
    raw[lesion > 0] = 250
    _write_case(layout, "0001", "sagittal", raw.astype(np.float32), healthy, lesion, PRE)
    # a healthy case: the truth is the image itself, so it must map onto the preprocessed file
    _write_case(layout, "0002", "sagittal", _knee(1).astype(np.float32), _knee(1), np.zeros_like(lesion), PRE)

    pre2, _ = read_volume(layout.pre("0002", "sagittal"))
    h2, les2 = _on_grid(layout, "0002", "sagittal", PRE)
    np.testing.assert_allclose(h2, pre2, atol=1e-6)
    assert les2.max() == 0
    h1, les1 = _on_grid(layout, "0001", "sagittal", PRE)
    pre1, _ = read_volume(layout.pre("0001", "sagittal"))
    inside = les1 >= 0.5
    assert inside.sum() > 0 and (pre1[inside] - h1[inside]).mean() > 0.1  # the lesion is brighter than its truth
    np.testing.assert_allclose(h1[les1 == 0], pre1[les1 == 0], atol=1e-6)  # identical away from the lesion

    # registration: the healthy case mapped through its reg_aladin affine equals the registered volume
    ref_arr, ref_sp = read_volume(layout.pre("0001", "sagittal"))
    write_volume(layout.reference("sagittal"), ref_arr, ref_sp)
    settings = RegistrationSettings.from_config(
        read_config(REPO / "config.yaml")["registration"]
        | {"levels": 2, "levels_to_perform": 2, "max_iterations": 5, "ncc_margin": 1.0, "on_failure": "error"}
    )
    register_volume(
        Path(layout.reference("sagittal")),
        Path(layout.pre("0002", "sagittal")),
        Path(layout.registered("0002", "sagittal")),
        Path(layout.affine("0002", "sagittal")),
        settings=settings,
        case="0002",
        view="sagittal",
    )
    registered, _ = read_volume(layout.registered("0002", "sagittal"))
    h2r, _ = _on_grid(layout, "0002", "sagittal", PRE, registered=True)
    np.testing.assert_allclose(h2r, registered, atol=1e-4)
    with pytest.raises(InputDataError, match="does not reproduce the preprocessed file"):
        _on_grid(layout, "0002", "sagittal", {**PRE, "percentiles": [5.0, 95.0]})
    with pytest.raises(InputDataError, match="0003"):
        _on_grid(layout, "0003", "sagittal", PRE)


# ---------------------------------------------------------------------------------- evaluation
def test_evaluate_config_rows_and_figure(tmp_path):
    persona = persona_settings(main={}, rnd={"location": "random"})
    train = smooth(4, seed=1)
    ddpm_ckpt, gan_ckpt, vit_ckpt = tmp_path / "ddpm.pt", tmp_path / "gan.pt", tmp_path / "vit.pt"
    train_ddpm(train, settings=PersonaModelSettings.from_config(persona), checkpoint=ddpm_ckpt)
    train_baseline(train, persona=baseline_persona(persona), section=GAN, checkpoint=gan_ckpt)
    train_baseline(train, persona=baseline_persona(persona), section=VIT, checkpoint=vit_ckpt)
    models = {"ddpm": ddpm_ckpt, "gan": gan_ckpt, "vit_ae": vit_ckpt}
    healthy = smooth(2, seed=2)
    truth = smooth(1, seed=3)[0]
    occupancy = np.zeros_like(truth)
    occupancy[:, 4, 7:9, 7:10] = 1.0
    original = truth + 0.3 * occupancy
    cfgs = resolve_configs(recon(persona), BOX, "reg", VIEWS)
    study = dict(
        persona=baseline_persona(persona),
        sample=PersonaSampleSettings.from_config(persona["sample"]),
        location_seed=persona["reconstruction"]["location_seed"],
    )
    table, recons = evaluate_config(
        cfgs["rnd"],
        models=models,
        healthy=healthy,
        healthy_cases=["0010", "0011"],
        lesion_data={"0020": (original, truth, occupancy)},
        **study,
    )
    assert list(table.columns) == RESULT_COLUMNS
    hl = table[table["study"] == STUDY_HEALTHY]
    assert len(hl) == 3 * 2 * 2 and set(hl["region"]) == {"box", "volume"}
    # random origins: the same for every model, recorded per case
    assert hl.groupby("case")["box_origin"].nunique().max() == 1
    # the origin drawn for the lesion case may miss the lesion: then it gives no counterfactual rows
    origin = box_origins(cfgs["rnd"], SHAPE, ["0020"], 5)[0]
    hit = (occupancy[0] * box_mask(SHAPE, BOX, origin=origin)).any()
    assert len(table[table["study"] == STUDY_COUNTERFACTUAL]) == (3 * 2 if hit else 0)

    table, recons = evaluate_config(
        cfgs["main"],
        models=models,
        healthy=healthy,
        healthy_cases=["0010", "0011"],
        lesion_data={"0020": (original, truth, occupancy)},
        **study,
    )
    cf = table[table["study"] == STUDY_COUNTERFACTUAL]
    assert len(cf) == 3 * 2 and set(cf["region"]) == {"lesion", "box"}
    les = cf[cf["region"] == "lesion"]
    assert les["contrast_removed"].notna().all() and (les["n_voxels"] == 6 * 3).all()
    assert (table["box_origin"] == "2,5,4").all()
    # the lesion case's true healthy counterpart is a held-out healthy input too, with the case's seed
    cp = table[table["study"] == STUDY_COUNTERPART]
    assert len(cp) == 3 * 2 and set(cp["case"]) == {"0020"} and set(cp["region"]) == {"box", "volume"}
    seeds = cp[cp["region"] == "box"].set_index("model")["seed"]
    assert seeds.equals(cf[cf["region"] == "box"].set_index("model")["seed"])
    # ... scored as the GAN's (deterministic) reconstruction of the counterpart against the counterpart
    gan_of_truth = inpaint_baseline(truth[None], checkpoint=gan_ckpt, box=BOX, origins=[None])[0]
    expected = region_metrics(truth, gan_of_truth, box_slices(SHAPE, BOX), 1.0)
    for region in ("box", "volume"):
        row = cp[(cp["model"] == "gan") & (cp["region"] == region)].iloc[0]
        assert row["mse"] == pytest.approx(expected[region]["mse"], rel=1e-6)  # batch of 3 vs 1: float32 rounding
        assert row["ssim"] == pytest.approx(expected[region]["ssim"], rel=1e-6)
    inside = box_mask(SHAPE, BOX)
    for model in models:
        np.testing.assert_array_equal(recons[model]["0010"][:, ~inside], healthy[0][:, ~inside])
        # the figure shows the persona of the lesion case, not of its counterpart
        np.testing.assert_array_equal(recons[model]["0020"][:, ~inside], original[:, ~inside])
    # the DDPM's per-case seed is the pipeline's sampling seed for the case
    from radpersona.persona.sample import derive_case_seed

    assert int(table[(table["model"] == "ddpm") & (table["case"] == "0011")]["seed"].iloc[0]) == derive_case_seed(
        2, "0011"
    )
    out = tmp_path / "plots" / "reconstruction_main.png"
    plot_config(cfgs["main"], "0020", original, {m: r["0020"] for m, r in recons.items()}, truth, None, out)
    import matplotlib.image

    image = matplotlib.image.imread(out)  # a decodable PNG whose panels show images, not a blank canvas
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert image[..., :3].std() > 0.05
