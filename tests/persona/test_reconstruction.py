"""Reconstruction studies: configurations, metrics, truth on the model grid, per-config evaluation, summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon
from test_baselines import gan_section, vit_section

from radpersona.errors import ConfigError, InputDataError
from radpersona.persona.baselines import inpaint_baseline, train_baseline
from radpersona.persona.masks import box_mask, box_slices
from radpersona.persona.reconstruction import (
    RESULT_COLUMNS,
    STUDY_COUNTERFACTUAL,
    STUDY_COUNTERPART,
    STUDY_HEALTHY,
    box_origins,
    counterfactual_metrics,
    evaluate_config,
    plot_config,
    region_metrics,
    resolve_configs,
    reuses_pipeline_ddpm,
    ssim_3d,
    summarise,
    summary_markdown,
    truth_on_grid,
)
from radpersona.persona.train import train_ddpm

SHAPE = (8, 16, 16)
BOX = [0.5, 0.3, 0.5]
GAN = gan_section(steps=2)
VIT = vit_section(steps=2)


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
            "models": ["ddpm", "gan", "vit_ae"],
            "configs": configs or {"main": {}},
            "location_seed": 5,
            "gan": GAN,
            "vit_ae": VIT,
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
    cfgs = resolve_configs(persona, "reg")
    assert cfgs["main"].box == tuple(BOX) and cfgs["main"].views == ("sagittal", "coronal", "axial")
    assert cfgs["main"].reg == "reg" and cfgs["main"].location == "central"
    assert (
        cfgs["small"].views == ("coronal",) and cfgs["small"].reg == "noreg" and cfgs["small"].view_label == "coronal"
    )
    assert reuses_pipeline_ddpm(cfgs["main"], persona) and not reuses_pipeline_ddpm(cfgs["small"], persona)
    sagittal_only = resolve_configs(persona_settings(main={}), "reg", ["sagittal"])["main"]  # e.g. KneeMRI
    assert sagittal_only.views == ("sagittal",) and sagittal_only.view_label == "all"
    with pytest.raises(ConfigError, match="source's views"):
        resolve_configs(persona_settings(x={"views": "coronal"}), "reg", ["sagittal"])
    for bad, key in [
        ({"views": "oblique"}, "views"),
        ({"box": [0.5, 1.5, 0.5]}, "box"),
        ({"size": 3}, "unknown keys"),
        ({"location": "edge"}, "location"),
    ]:
        with pytest.raises(ConfigError, match=f"persona.reconstruction.configs.x.*{key}|{key}"):
            resolve_configs(persona_settings(x=bad), "reg")
    with pytest.raises(ConfigError, match="models"):
        resolve_configs(
            {**persona_settings(), "reconstruction": {**persona_settings()["reconstruction"], "models": ["unet"]}},
            "reg",
        )


def test_random_origins_are_seeded_per_case():
    cfg = resolve_configs(persona_settings(r={"location": "random"}, c={}), "reg")
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
def _write_case(tmp_path, case, view, raw, healthy, lesion, preprocess):
    from radpersona.preprocess import preprocess_volume
    from radpersona.volume import write_volume

    (tmp_path / "raw").mkdir(exist_ok=True)
    (tmp_path / "truth").mkdir(exist_ok=True)
    write_volume(tmp_path / "raw" / f"{case}_{view}.nii.gz", raw, (1.0, 1.0, 1.0))
    np.save(tmp_path / "truth" / f"{case}_{view}_healthy.npy", healthy)
    np.save(tmp_path / "truth" / f"{case}_{view}_lesion.npy", lesion)
    preprocess_volume(
        tmp_path / "raw" / f"{case}_{view}.nii.gz",
        tmp_path / "pre" / f"{case}_{view}.nii.gz",
        case=case,
        view=view,
        **preprocess,
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

    healthy = _knee(0)
    lesion = np.zeros_like(healthy)
    lesion[4:8, 16:24, 16:24] = 2
    raw = healthy.copy()
    raw[lesion > 0] = 250
    _write_case(tmp_path, "0001", "sagittal", raw.astype(np.float32), healthy, lesion, PRE)
    # a healthy case: the truth is the image itself, so it must map onto the preprocessed file
    _write_case(tmp_path, "0002", "sagittal", _knee(1).astype(np.float32), _knee(1), np.zeros_like(lesion), PRE)
    from radpersona.volume import read_volume

    pre2, _ = read_volume(tmp_path / "pre" / "0002_sagittal.nii.gz")
    h2, les2 = truth_on_grid(
        "0002",
        "sagittal",
        truth_dir=tmp_path / "truth",
        raw_dir=tmp_path / "raw",
        pre_dir=tmp_path / "pre",
        preprocess=PRE,
    )
    np.testing.assert_allclose(h2, pre2, atol=1e-6)
    assert les2.max() == 0
    h1, les1 = truth_on_grid(
        "0001",
        "sagittal",
        truth_dir=tmp_path / "truth",
        raw_dir=tmp_path / "raw",
        pre_dir=tmp_path / "pre",
        preprocess=PRE,
    )
    pre1, _ = read_volume(tmp_path / "pre" / "0001_sagittal.nii.gz")
    inside = les1 >= 0.5
    assert inside.sum() > 0 and (pre1[inside] - h1[inside]).mean() > 0.1  # the lesion is brighter than its truth
    np.testing.assert_allclose(h1[les1 == 0], pre1[les1 == 0], atol=1e-6)  # identical away from the lesion

    # registration: the healthy case mapped through its reg_aladin affine equals the registered volume
    from radpersona.volume import write_volume

    ref_dir, reg_dir = tmp_path / "registration", tmp_path / "reg"
    ref_arr, ref_sp = read_volume(tmp_path / "pre" / "0001_sagittal.nii.gz")
    write_volume(ref_dir / "reference_sagittal.nii.gz", ref_arr, ref_sp)
    settings = {
        "rigid_only": False,
        "levels": 2,
        "levels_to_perform": 2,
        "max_iterations": 5,
        "ncc_margin": 1.0,
        "on_failure": "error",
    }
    register_volume(
        ref_dir / "reference_sagittal.nii.gz",
        tmp_path / "pre" / "0002_sagittal.nii.gz",
        reg_dir / "0002_sagittal.nii.gz",
        reg_dir / "0002_sagittal.aff.txt",
        settings=settings,
        case="0002",
        view="sagittal",
    )
    registered, _ = read_volume(reg_dir / "0002_sagittal.nii.gz")
    h2r, _ = truth_on_grid(
        "0002",
        "sagittal",
        truth_dir=tmp_path / "truth",
        raw_dir=tmp_path / "raw",
        pre_dir=tmp_path / "pre",
        preprocess=PRE,
        reg_dir=reg_dir,
        reference_dir=ref_dir,
    )
    np.testing.assert_allclose(h2r, registered, atol=1e-4)
    with pytest.raises(InputDataError, match="does not reproduce the preprocessed file"):
        truth_on_grid(
            "0002",
            "sagittal",
            truth_dir=tmp_path / "truth",
            raw_dir=tmp_path / "raw",
            pre_dir=tmp_path / "pre",
            preprocess={**PRE, "percentiles": [5.0, 95.0]},
        )
    with pytest.raises(InputDataError, match="0003"):
        truth_on_grid(
            "0003",
            "sagittal",
            truth_dir=tmp_path / "truth",
            raw_dir=tmp_path / "raw",
            pre_dir=tmp_path / "pre",
            preprocess=PRE,
        )


# ---------------------------------------------------------------------------------- evaluation
def test_evaluate_config_rows_and_figure(tmp_path):
    persona = persona_settings(main={}, rnd={"location": "random"})
    train = smooth(4, seed=1)
    ddpm_ckpt, gan_ckpt, vit_ckpt = tmp_path / "ddpm.pt", tmp_path / "gan.pt", tmp_path / "vit.pt"
    train_ddpm(train, settings={k: v for k, v in persona.items() if k != "reconstruction"}, checkpoint=ddpm_ckpt)
    train_baseline("gan", train, persona=persona, section=GAN, checkpoint=gan_ckpt)
    train_baseline("vit_ae", train, persona=persona, section=VIT, checkpoint=vit_ckpt)
    models = {"ddpm": ddpm_ckpt, "gan": gan_ckpt, "vit_ae": vit_ckpt}
    healthy = smooth(2, seed=2)
    truth = smooth(1, seed=3)[0]
    occupancy = np.zeros_like(truth)
    occupancy[:, 4, 7:9, 7:10] = 1.0
    original = truth + 0.3 * occupancy
    cfgs = resolve_configs(persona, "reg")
    table, recons = evaluate_config(
        cfgs["rnd"],
        models=models,
        healthy=healthy,
        healthy_cases=["0010", "0011"],
        lesion_data={"0020": (original, truth, occupancy)},
        persona=persona,
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
        persona=persona,
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
    assert out.stat().st_size > 1000
