"""Training with exact resume, weights-only checkpoints, and seeded box inpainting."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from radpersona.errors import ConfigError, InputDataError
from radpersona.persona.masks import box_mask
from radpersona.persona.sample import derive_case_seed, load_model, sample_personas
from radpersona.persona.train import TrainingStopped, resume_path, train_ddpm
from radpersona.settings import PersonaModelSettings, PersonaSampleSettings, PersonaSettings

SHAPE = (8, 16, 16)
BOX = (0.5, 0.3, 0.5)


def tiny_config(**overrides: object) -> dict:
    settings = {
        "box": list(BOX),
        "train_masks": "mixed",
        "prediction_type": "epsilon",
        "num_train_timesteps": 20,  # short chain so that full DDPM sampling stays fast in tests
        "beta_start": 1.0e-4,
        "beta_end": 2.0e-1,
        "intensity_range": [0.0, 1.0],
        "unet": {"channels": [8, 16], "attention_levels": [False, False], "num_res_blocks": 1, "norm_num_groups": 4},
        "train": {
            "steps": 6,
            "batch_size": 2,
            "learning_rate": 1.0e-3,
            "weight_decay": 0.01,
            "ema_decay": 0.9,
            "grad_clip": 1.0,
            "checkpoint_every": 2,
            "seed": 1,
        },
        "device": "cpu",
    }
    settings.update(overrides)
    return settings


def tiny_settings(**overrides: object) -> PersonaModelSettings:
    return PersonaModelSettings.from_config(tiny_config(**overrides))


def with_train(**train: object) -> PersonaModelSettings:
    """The tiny settings with ``persona.train`` keys changed."""
    config = tiny_config()
    config["train"] = {**config["train"], **train}
    return PersonaModelSettings.from_config(config)


def sampling(sampler: str = "ddim", steps: int = 50, batch_size: int = 8) -> PersonaSampleSettings:
    """``persona.sample`` (its seed is not read by sample_personas: the per-case seeds are)."""
    return PersonaSampleSettings.from_config({"sampler": sampler, "steps": steps, "batch_size": batch_size, "seed": 0})


def knee_like(n: int, views: int = 3, seed: int = 0) -> np.ndarray:
    """Smooth volumes in [0, 1]: a blob at a jittered centre over a gradient, different per view."""
    rng = np.random.default_rng(seed)
    z, y, x = np.meshgrid(*(np.linspace(-1, 1, s) for s in SHAPE), indexing="ij")
    out = np.empty((n, views, *SHAPE), dtype=np.float32)
    for i in range(n):
        for v in range(views):
            c = rng.normal(0, 0.15, 3)
            blob = np.exp(-((z - c[0]) ** 2 + (y - c[1]) ** 2 + (x - c[2]) ** 2) / (0.2 + 0.1 * v))
            out[i, v] = np.clip(0.2 + 0.1 * (x + 1) + 0.6 * blob + rng.normal(0, 0.02, SHAPE), 0, 1)
    return out


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    checkpoint = tmp_path_factory.mktemp("ddpm") / "ddpm_reg.pt"
    train_ddpm(knee_like(4), settings=tiny_settings(), checkpoint=checkpoint)
    return checkpoint


def test_killed_training_resumes_to_the_same_weights(tmp_path: Path) -> None:
    volumes, settings = knee_like(3), tiny_settings()
    straight = train_ddpm(volumes, settings=settings, checkpoint=tmp_path / "straight.pt")
    killed = tmp_path / "killed.pt"
    with pytest.raises(TrainingStopped):
        train_ddpm(volumes, settings=settings, checkpoint=killed, stop_after=3)  # killed after step 3
    assert not killed.exists()
    assert torch.load(resume_path(killed), weights_only=True)["step"] == 2  # step 3 is lost, redone on resume
    resumed = train_ddpm(volumes, settings=settings, checkpoint=killed)
    assert resumed["resumed_from"] == 2 and resumed["steps"] == straight["steps"] == 6
    assert not resume_path(killed).exists()
    a = torch.load(tmp_path / "straight.pt", weights_only=True)
    b = torch.load(killed, weights_only=True)
    assert a["losses"] == b["losses"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    # and training did change the weights
    init_changed = any(
        not torch.equal(a["state_dict"][k], torch.zeros_like(a["state_dict"][k])) for k in a["state_dict"]
    )
    assert init_changed and a["summary"]["final_loss"] > 0


def test_a_resume_file_of_other_settings_is_not_used(tmp_path: Path) -> None:
    volumes, checkpoint = knee_like(3), tmp_path / "ddpm.pt"
    with pytest.raises(TrainingStopped):
        train_ddpm(volumes, settings=tiny_settings(), checkpoint=checkpoint, stop_after=2)
    other = with_train(learning_rate=5.0e-4)
    assert train_ddpm(volumes, settings=other, checkpoint=checkpoint)["resumed_from"] == 0
    with pytest.raises(TrainingStopped):
        train_ddpm(volumes, settings=tiny_settings(), checkpoint=checkpoint, stop_after=2)
    assert train_ddpm(volumes[:2], settings=tiny_settings(), checkpoint=checkpoint)["resumed_from"] == 0  # other data
    with pytest.raises(TrainingStopped):
        train_ddpm(volumes, settings=tiny_settings(), checkpoint=checkpoint, stop_after=2)
    sampling_changed = PersonaSettings.from_config(
        tiny_config(sample={"sampler": "ddpm", "steps": 20, "batch_size": 1, "seed": 9})
    )
    assert train_ddpm(volumes, settings=sampling_changed, checkpoint=checkpoint)["resumed_from"] == 2


def test_checkpoint_is_weights_only_and_records_provenance(trained: Path) -> None:
    state = torch.load(trained, weights_only=True)
    assert state["step"] == 6 and state["seed"] == 1 and state["in_views"] == 3
    assert state["settings"]["unet"]["channels"] == [8, 16] and state["shape"] == list(SHAPE)
    assert state["summary"]["n_volumes"] == 4 and state["summary"]["steps_per_second"] > 0
    model, meta = load_model(trained, "cpu")
    assert not model.training and "state_dict" not in meta


class _Payload:
    """A custom class: unpickling it would run arbitrary code paths."""


def test_a_checkpoint_with_a_pickled_object_is_refused(tmp_path: Path, trained: Path) -> None:
    state = torch.load(trained, weights_only=True)
    state["extra"] = _Payload()
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(bad, weights_only=True)
    with pytest.raises(InputDataError, match="weights_only"):
        load_model(bad, "cpu")
    torch.save({"state_dict": state["state_dict"]}, bad)
    with pytest.raises(InputDataError, match="format"):
        load_model(bad, "cpu")


def test_trained_unet_depends_on_the_timestep(trained: Path) -> None:
    model, _ = load_model(trained, "cpu")
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 7, *SHAPE)).astype(np.float32))
    with torch.no_grad():
        assert (model(x, torch.tensor([1])) - model(x, torch.tensor([18]))).abs().max() > 1e-4


@pytest.mark.parametrize(("sampler", "steps"), [("ddim", 5), ("ddpm", 20)])
@pytest.mark.parametrize("origin", [None, (4, 0, 8)])
def test_persona_equals_input_outside_the_box(trained: Path, sampler: str, steps: int, origin: tuple | None) -> None:
    volumes = knee_like(3, seed=5)
    personas = sample_personas(
        volumes, checkpoint=trained, sample=sampling(sampler, steps), box=BOX, seeds=[1, 2, 3], origin=origin
    )
    inside = box_mask(SHAPE, BOX, origin=origin)
    assert personas.dtype == np.float32 and personas.shape == volumes.shape
    assert np.array_equal(personas[..., ~inside], volumes[..., ~inside])
    assert personas.min() >= 0.0 and personas.max() <= 1.0
    # the box is inpainted from the context alone: a bright "lesion" filling it does not reach the persona
    lesioned = volumes.copy()
    lesioned[..., inside] = 1.0
    again = sample_personas(
        lesioned, checkpoint=trained, sample=sampling(sampler, steps), box=BOX, seeds=[1, 2, 3], origin=origin
    )
    assert np.allclose(again[..., inside], personas[..., inside], atol=1e-6)
    assert np.abs(again[..., inside] - lesioned[..., inside]).mean() > 0.1


@pytest.mark.parametrize(("sampler", "steps"), [("ddim", 5), ("ddpm", 20)])
def test_sampling_is_seeded_and_independent_of_the_batch(trained: Path, sampler: str, steps: int) -> None:
    volumes, seeds = knee_like(3, seed=6), [11, 22, 33]
    kw = dict(checkpoint=trained, box=BOX)
    together = sample_personas(volumes, seeds=seeds, sample=sampling(sampler, steps, 3), **kw)
    assert np.array_equal(together, sample_personas(volumes, seeds=seeds, sample=sampling(sampler, steps, 3), **kw))
    alone = sample_personas(volumes, seeds=seeds, sample=sampling(sampler, steps, 1), **kw)
    assert np.array_equal(together, alone)
    order = [2, 0, 1]
    shuffled = sample_personas(
        volumes[order], seeds=[seeds[i] for i in order], sample=sampling(sampler, steps, 2), **kw
    )
    assert np.array_equal(together[order], shuffled)
    other_seed = sample_personas(volumes[:1], seeds=[12], sample=sampling(sampler, steps, 1), **kw)
    assert not np.array_equal(together[:1], other_seed)


def test_single_view_training_and_v_prediction(tmp_path: Path) -> None:
    config = tiny_config(prediction_type="v_prediction", train_masks="central")
    config["train"] = {**config["train"], "steps": 3, "checkpoint_every": 10}
    settings = PersonaModelSettings.from_config(config)
    volumes = knee_like(2, views=1)
    summary = train_ddpm(volumes, settings=settings, checkpoint=tmp_path / "one.pt")
    assert summary["in_views"] == 1 and summary["steps"] == 3
    personas = sample_personas(volumes, checkpoint=tmp_path / "one.pt", sample=sampling(steps=4), box=BOX, seeds=[0, 1])
    assert np.array_equal(personas[..., ~box_mask(SHAPE, BOX)], volumes[..., ~box_mask(SHAPE, BOX)])
    with pytest.raises(InputDataError, match="1 view"):
        sample_personas(knee_like(1), checkpoint=tmp_path / "one.pt", sample=sampling(steps=4), box=BOX, seeds=[0])


def test_bad_sampling_requests_are_refused(trained: Path) -> None:
    volumes = knee_like(2)
    # sampler and steps against the model's num_train_timesteps (20): refused by the settings
    with pytest.raises(ConfigError, match="ddpm ancestral"):
        PersonaSettings.from_config(tiny_config(sample={"sampler": "ddpm", "steps": 5, "batch_size": 8, "seed": 0}))
    with pytest.raises(ConfigError, match="steps"):
        PersonaSettings.from_config(tiny_config(sample={"sampler": "ddim", "steps": 21, "batch_size": 8, "seed": 0}))
    with pytest.raises(InputDataError, match="one seed per case"):
        sample_personas(volumes, checkpoint=trained, sample=sampling(steps=5), box=BOX, seeds=[0])
    nan = volumes.copy()
    nan[1, 0, 0, 0, 0] = np.nan
    with pytest.raises(InputDataError, match="index 1"):
        sample_personas(nan, checkpoint=trained, sample=sampling(steps=5), box=BOX, seeds=[0, 1])


def test_training_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="N, C, D, H, W"):
        train_ddpm(knee_like(2)[0], settings=tiny_settings(), checkpoint=tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="persona.train.steps"):
        train_ddpm(knee_like(2), settings=with_train(steps=0), checkpoint=tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_cuda_training_without_cuda_fails_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA"):
        train_ddpm(knee_like(2), settings=tiny_settings(device="cuda"), checkpoint=tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_case_seeds_are_stable_and_distinct() -> None:
    seed = derive_case_seed(2, "0001")
    assert seed == derive_case_seed(2, "0001") and 0 <= seed < 2**63
    assert len({derive_case_seed(2, f"{i:04d}") for i in range(500)} | {derive_case_seed(3, "0001")}) == 501
    assert seed == GOLDEN_SEED_2_0001


# recorded once from derive_case_seed(2, "0001"); a change here changes every persona of every run
GOLDEN_SEED_2_0001 = 4264214108243483928


@pytest.mark.gpu
def test_cuda_training_and_sampling(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("CUDA not available")
    volumes = knee_like(3)
    summary = train_ddpm(volumes, settings=tiny_settings(device="cuda"), checkpoint=tmp_path / "gpu.pt")
    assert summary["device"].startswith("cuda") and summary["steps"] == 6
    personas = sample_personas(
        volumes, checkpoint=tmp_path / "gpu.pt", sample=sampling(steps=5), box=BOX, seeds=[1, 2, 3], device="cuda"
    )
    inside = box_mask(SHAPE, BOX)
    assert np.array_equal(personas[..., ~inside], volumes[..., ~inside])
    again = sample_personas(
        volumes, checkpoint=tmp_path / "gpu.pt", sample=sampling(steps=5), box=BOX, seeds=[1, 2, 3], device="cuda"
    )
    np.testing.assert_allclose(again, personas, atol=1e-2)
    # each case's noise comes from its own CUDA generator: alone, a case gets the persona it got in the batch
    # (up to bf16 rounding: cuDNN picks kernels by batch size)
    alone = sample_personas(
        volumes[1:2], checkpoint=tmp_path / "gpu.pt", sample=sampling(steps=5), box=BOX, seeds=[2], device="cuda"
    )
    np.testing.assert_allclose(alone[0], personas[1], atol=5e-2)
    other_seed = sample_personas(
        volumes[1:2], checkpoint=tmp_path / "gpu.pt", sample=sampling(steps=5), box=BOX, seeds=[7], device="cuda"
    )
    assert np.abs(other_seed[0] - personas[1])[..., inside].max() > 0.1  # the seed matters


@pytest.mark.parametrize("prediction", ["epsilon", "sample"])
def test_training_learns_to_inpaint_the_box(tmp_path: Path, prediction: str) -> None:
    """80 steps on 16 smooth volumes: the persona beats filling the box with the context's mean intensity."""
    config = tiny_config(train_masks="central", prediction_type=prediction)
    config["train"] = {
        **config["train"],
        "steps": 80,
        "batch_size": 4,
        "learning_rate": 3.0e-3,
        "ema_decay": 0.95,
        "checkpoint_every": 1000,
    }
    settings = PersonaModelSettings.from_config(config)
    summary = train_ddpm(knee_like(16, seed=0), settings=settings, checkpoint=tmp_path / "learn.pt")
    held_out = knee_like(4, seed=99)
    personas = sample_personas(
        held_out, checkpoint=tmp_path / "learn.pt", sample=sampling(steps=10), box=BOX, seeds=[1, 2, 3, 4]
    )
    inside = box_mask(SHAPE, BOX)
    persona_mse = float(((personas - held_out)[..., inside] ** 2).mean())
    context_mean = held_out[..., ~inside].mean(axis=-1, keepdims=True)
    fill_mse = float(((held_out[..., inside] - context_mean) ** 2).mean())
    assert (
        summary["final_loss"] < 1.0
    )  # the MSE of an untrained net is about 1 (epsilon) or about the box variance (x0)
    assert persona_mse < 0.6 * fill_mse, (persona_mse, fill_mse)


def test_training_targets_are_the_noise_the_velocity_and_the_clean_volume() -> None:
    from radpersona.persona.train import training_target

    g = torch.Generator().manual_seed(0)
    x0, noise = torch.rand((2, 3, 4, 4, 4), generator=g) * 2 - 1, torch.randn((2, 3, 4, 4, 4), generator=g)
    a = torch.tensor([0.9, 0.05]).view(-1, 1, 1, 1, 1)
    x_t = a.sqrt() * x0 + (1 - a).sqrt() * noise
    assert torch.equal(training_target("epsilon", x0, noise, a), noise)
    assert torch.equal(training_target("sample", x0, noise, a), x0)
    v = training_target("v_prediction", x0, noise, a)
    torch.testing.assert_close(a.sqrt() * x_t - (1 - a).sqrt() * v, x0)  # x0 recovered from v (Salimans and Ho)


def test_min_snr_weight_matches_hang_et_al() -> None:
    from radpersona.persona.train import min_snr_weight

    abar = torch.tensor([0.999, 0.9, 0.5, 0.01])
    snr = abar / (1 - abar)
    eps = min_snr_weight(abar, 5.0, "epsilon")
    v = min_snr_weight(abar, 5.0, "v_prediction")
    torch.testing.assert_close(eps, torch.minimum(snr, torch.tensor(5.0)) / snr)
    torch.testing.assert_close(v, torch.minimum(snr, torch.tensor(5.0)) / (snr + 1))
    torch.testing.assert_close(min_snr_weight(abar, 5.0, "sample"), torch.minimum(snr, torch.tensor(5.0)))
    assert eps[0] < 0.01 and eps[-1] == 1.0  # easy low-noise steps down-weighted, high-noise steps kept


def test_min_snr_training_runs_and_is_part_of_the_resume_key(tmp_path: Path) -> None:
    volumes = knee_like(4)
    settings = with_train(min_snr_gamma=5.0)
    summary = train_ddpm(volumes, settings=settings, checkpoint=tmp_path / "snr.pt")
    assert np.isfinite(summary["final_loss"])
    plain = train_ddpm(volumes, settings=tiny_settings(), checkpoint=tmp_path / "plain.pt")
    assert summary["settings_hash"] != plain["settings_hash"] and summary["final_loss"] != plain["final_loss"]
