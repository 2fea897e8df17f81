"""Baseline inpainters (3D GAN, ViT3D masked autoencoder): training, checkpoints, paste-back, masking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from radpersona.errors import ConfigError, InputDataError
from radpersona.persona.baselines import (
    MaskedViT3D,
    build_discriminator,
    build_generator,
    inpaint_baseline,
    load_baseline,
    train_baseline,
)
from radpersona.persona.masks import box_mask
from radpersona.settings import BaselinePersonaSettings, GANSettings, Settings, ViTAESettings, deep_merge, read_config

REPO = Path(__file__).resolve().parents[2]
SHAPE = (8, 16, 16)
BOX = [0.5, 0.3, 0.5]
PERSONA_CONFIG = {"box": BOX, "train_masks": "mixed", "intensity_range": [0.0, 1.0], "device": "cpu"}
PERSONA = BaselinePersonaSettings.from_config(PERSONA_CONFIG)


def gan_config(**over: object) -> dict:
    section = {
        "generator_channels": [8, 16],
        "discriminator_channels": 8,
        "discriminator_layers": 1,
        "adversarial_weight": 0.01,
        "steps": 3,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "grad_clip": 1.0,
        "seed": 1,
    }
    section.update(over)
    return section


def vit_config(**over: object) -> dict:
    section = {
        "patch": [2, 4, 4],
        "hidden_size": 16,
        "layers": 1,
        "heads": 2,
        "mlp_dim": 32,
        "steps": 3,
        "batch_size": 2,
        "learning_rate": 1e-3,
        "grad_clip": 1.0,
        "seed": 1,
    }
    section.update(over)
    return section


def gan_section(**over: object) -> GANSettings:
    return GANSettings.from_config(gan_config(**over))


def vit_section(**over: object) -> ViTAESettings:
    return ViTAESettings.from_config(vit_config(**over))


SECTIONS = {"gan": gan_section, "vit_ae": vit_section}
CONFIGS = {"gan": gan_config, "vit_ae": vit_config}


def volumes(n: int = 4, views: int = 3, seed: int = 0) -> np.ndarray:
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


@pytest.mark.parametrize("kind", ["gan", "vit_ae"])
def test_checkpoint_is_weights_only_and_pastes_back_exactly(kind, tmp_path):
    data = volumes()
    ckpt = tmp_path / f"{kind}.pt"
    summary = train_baseline(data, persona=PERSONA, section=SECTIONS[kind](), checkpoint=ckpt)
    assert summary["steps"] == 3 and summary["in_views"] == 3 and summary["seed"] == 1
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert state["kind"] == kind and state["shape"] == list(SHAPE)
    origins = [None, (0, 0, 0), None, (4, 11, 8)]
    out = inpaint_baseline(data, checkpoint=ckpt, box=BOX, origins=origins, batch_size=3)
    for i, origin in enumerate(origins):
        inside = box_mask(SHAPE, BOX, origin=origin)
        np.testing.assert_array_equal(out[i][:, ~inside], data[i][:, ~inside])
        assert np.abs(out[i][:, inside] - data[i][:, inside]).max() > 0  # the box was actually replaced
        assert out[i].min() >= 0.0 and out[i].max() <= 1.0


@pytest.mark.parametrize("kind", ["gan", "vit_ae"])
def test_training_is_seeded_and_inference_deterministic(kind, tmp_path):
    data = volumes()
    a, b, c = (tmp_path / f"{n}.pt" for n in "abc")
    train_baseline(data, persona=PERSONA, section=SECTIONS[kind](), checkpoint=a)
    train_baseline(data, persona=PERSONA, section=SECTIONS[kind](), checkpoint=b)
    train_baseline(data, persona=PERSONA, section=SECTIONS[kind](seed=2), checkpoint=c)
    sa, sb, sc = (torch.load(p, weights_only=True)["state_dict"] for p in (a, b, c))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    first = inpaint_baseline(data, checkpoint=a, box=BOX)
    np.testing.assert_array_equal(first, inpaint_baseline(data, checkpoint=a, box=BOX))
    # other batch sizes take other oneDNN kernels: equal up to float rounding
    np.testing.assert_allclose(first, inpaint_baseline(data, checkpoint=a, box=BOX, batch_size=1), atol=1e-5)


@pytest.mark.parametrize("kind", ["gan", "vit_ae"])
def test_reconstruction_ignores_the_hidden_box_content(kind, tmp_path):
    """The model sees only the context: changing voxels inside the box must not change its output there."""
    data = volumes()
    ckpt = tmp_path / "m.pt"
    train_baseline(data, persona=PERSONA, section=SECTIONS[kind](), checkpoint=ckpt)
    inside = box_mask(SHAPE, BOX)
    altered = data.copy()
    altered[:, :, inside] = np.random.default_rng(5).random((4, 3, int(inside.sum())), dtype=np.float32)
    np.testing.assert_array_equal(
        inpaint_baseline(data, checkpoint=ckpt, box=BOX)[:, :, inside],
        inpaint_baseline(altered, checkpoint=ckpt, box=BOX)[:, :, inside],
    )


def test_vit_masks_every_patch_touching_the_box():
    torch.manual_seed(0)
    vit = MaskedViT3D(1, SHAPE, (2, 4, 4), hidden_size=8, layers=1, heads=2, mlp_dim=8).eval()
    x = torch.zeros(1, 2, *SHAPE)
    x[:, 0] = torch.rand(SHAPE)
    mask = torch.from_numpy(box_mask(SHAPE, BOX, origin=(3, 5, 5))).float()
    x[:, 1] = mask
    y = x.clone()
    # a voxel of the context in a patch that touches the box but lies outside the box itself
    assert mask[2, 4, 4] == 0 and mask[3, 5, 5] == 1  # same (2, 4, 4) patch: index (1, 1, 1)
    y[:, 0, 2, 4, 4] += 0.5
    with torch.no_grad():
        np.testing.assert_array_equal(vit(x).numpy(), vit(y).numpy())  # the patch's token was the mask token
        y[:, 0, 0, 0, 0] += 0.5  # a patch far from the box is seen
        assert not np.array_equal(vit(x).numpy(), vit(y).numpy())


def test_vit_learns_on_smooth_volumes(tmp_path):
    summary = train_baseline(
        volumes(8), persona=PERSONA, section=vit_section(steps=60, batch_size=4), checkpoint=tmp_path / "v.pt"
    )
    losses = torch.load(tmp_path / "v.pt", weights_only=True)["losses"]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:5]), summary


def test_networks_shapes():
    section = gan_section()
    g, d = build_generator(3, section), build_discriminator(3, section)
    x = torch.zeros(2, 4, *SHAPE)
    assert g(x).shape == (2, 3, *SHAPE)
    assert d(x)[-1].shape[:2] == (2, 1)


@pytest.mark.parametrize(
    "kind, over, key",
    [
        ("vit_ae", {"patch": [3, 4, 4]}, "persona.reconstruction.vit_ae.patch"),
        ("vit_ae", {"hidden_size": 10, "heads": 3}, "persona.reconstruction.vit_ae.hidden_size"),
        ("gan", {"generator_channels": [8, 16, 32, 64, 128]}, "persona.reconstruction.gan.generator_channels"),
        ("gan", {"discriminator_layers": 2}, "persona.reconstruction.gan.discriminator_layers"),
        ("gan", {"steps": 0}, "persona.reconstruction.gan.steps"),
        ("gan", {"seed": -1}, "persona.reconstruction.gan.seed"),
    ],
)
def test_invalid_settings_name_the_key(kind, over, key):
    """The settings refuse a baseline section that is bad in itself or does not fit preprocess.shape."""

    def config(section: dict) -> dict:
        return deep_merge(
            read_config(REPO / "config.yaml"),
            {
                "preprocess": {"shape": list(SHAPE)},
                "persona": {
                    "unet": {"channels": [8, 16], "attention_levels": [False, False]},
                    "reconstruction": {"gan": gan_config(), "vit_ae": vit_config(), kind: section},
                },
            },
        )

    Settings.parse(config(CONFIGS[kind]()))  # the tiny sections fit
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        Settings.parse(config(CONFIGS[kind](**over)))


def test_refuses_foreign_checkpoints_and_mismatched_volumes(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"format": "something/else", "state_dict": {}}, other)
    with pytest.raises(InputDataError, match="not a baseline checkpoint"):
        load_baseline(other)
    with pytest.raises(InputDataError, match="not found"):
        load_baseline(tmp_path / "missing.pt")
    ckpt = tmp_path / "g.pt"
    train_baseline(volumes(), persona=PERSONA, section=gan_section(steps=1), checkpoint=ckpt)
    with pytest.raises(InputDataError, match="trained on 3 view"):
        inpaint_baseline(volumes(views=1), checkpoint=ckpt, box=BOX)
    bad = volumes()
    bad[1, 0, 0, 0, 0] = np.nan
    with pytest.raises(InputDataError, match="volume index 1"):
        train_baseline(bad, persona=PERSONA, section=gan_section(), checkpoint=ckpt)


def test_baselines_train_on_the_persona_keys_the_workflow_passes_them():
    """rules/persona.smk gives a GAN/ViT-AE job only BASELINE_PERSONA_KEYS of `persona`; tests train with no more."""
    from radpersona.persona import BASELINE_PERSONA_KEYS

    assert set(PERSONA_CONFIG) <= set(BASELINE_PERSONA_KEYS)
    assert BaselinePersonaSettings.from_config(PERSONA_CONFIG).to_config() == PERSONA_CONFIG
    with pytest.raises(ConfigError, match=r"persona\.intensity_range"):
        BaselinePersonaSettings.from_config({**PERSONA_CONFIG, "intensity_range": [1.0, 0.0]})
