"""U-Net conditioning, noise schedule, device resolution and the intensity scale."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radpersona.device import CudaUnavailableError, resolve_device
from radpersona.errors import ConfigError
from radpersona.persona.model import (
    build_scheduler,
    build_unet,
    from_model_scale,
    model_input,
    to_model_scale,
)
from radpersona.settings import PersonaSettings


def tiny_config(**overrides: object) -> dict:
    settings = {
        "box": [0.5, 0.3, 0.5],
        "train_masks": "mixed",
        "prediction_type": "epsilon",
        "num_train_timesteps": 1000,
        "beta_start": 1.0e-4,
        "beta_end": 2.0e-2,
        "intensity_range": [0.0, 1.0],
        "unet": {"channels": [8, 16], "attention_levels": [False, False], "num_res_blocks": 1, "norm_num_groups": 4},
        "train": {
            "steps": 6,
            "batch_size": 2,
            "learning_rate": 2.0e-4,
            "weight_decay": 0.0,
            "ema_decay": 0.995,
            "grad_clip": 1.0,
            "checkpoint_every": 2,
            "seed": 1,
        },
        "sample": {"sampler": "ddim", "steps": 5, "batch_size": 2, "seed": 2},
        "device": "cpu",
    }
    settings.update(overrides)
    return settings


def tiny_settings(**overrides: object) -> PersonaSettings:
    return PersonaSettings.from_config(tiny_config(**overrides))


@pytest.mark.parametrize("views", [1, 3])
def test_unet_channels_follow_the_views(views: int) -> None:
    torch.manual_seed(0)
    net = build_unet(views, tiny_settings().unet)
    x = torch.randn(2, 2 * views + 1, 8, 16, 16)
    assert net(x, torch.tensor([3, 700])).shape == (2, views, 8, 16, 16)


def test_unet_output_depends_on_the_timestep() -> None:
    torch.manual_seed(0)
    net = build_unet(3, tiny_settings().unet).eval()
    # MONAI zero-initialises the output convolution and the second convolution of every residual block
    # (where the timestep embedding enters), so an untrained net ignores t; give those layers weights
    zeroed = [p for p in net.parameters() if p.dim() > 1 and not p.any()]
    assert zeroed, "expected MONAI's zero-initialised layers"
    for p in zeroed:
        torch.nn.init.normal_(p, std=0.05)
    x = torch.randn(1, 7, 8, 16, 16)
    with torch.no_grad():
        early, late = net(x, torch.tensor([10])), net(x, torch.tensor([900]))
    assert early.abs().max() > 0
    assert (early - late).abs().max() > 1e-3


def test_model_input_concatenates_noisy_context_and_mask() -> None:
    noisy, context = torch.randn(2, 3, 4, 4, 4), torch.randn(2, 3, 4, 4, 4)
    mask = torch.zeros(1, 1, 4, 4, 4)
    mask[..., 1:3, 1:3, 1:3] = 1
    inputs = model_input(noisy, context, mask)
    assert inputs.shape == (2, 7, 4, 4, 4)
    assert torch.equal(inputs[:, :3], noisy) and torch.equal(inputs[:, 3:6], context)
    assert torch.equal(inputs[1, 6], mask[0, 0])


def test_scheduler_is_the_papers_linear_schedule() -> None:
    ddpm = build_scheduler(tiny_settings(), "ddpm")
    assert ddpm.num_train_timesteps == 1000
    np.testing.assert_allclose(ddpm.betas[[0, -1]].numpy(), [1e-4, 2e-2], rtol=1e-6)
    np.testing.assert_allclose(np.diff(ddpm.betas.numpy()), (2e-2 - 1e-4) / 999, rtol=1e-3)
    ddim = build_scheduler(tiny_settings(prediction_type="v_prediction"), "ddim")
    assert type(ddim).__name__ == "DDIMScheduler" and ddim.prediction_type == "v_prediction"
    assert build_scheduler(tiny_settings(prediction_type="sample"), "ddim").prediction_type == "sample"
    with pytest.raises(ConfigError, match="prediction_type"):
        tiny_settings(prediction_type="x0")  # refused by the settings, before any scheduler is built
    with pytest.raises(ConfigError, match="kind"):
        build_scheduler(tiny_settings(), "euler")


def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA"):
        resolve_device("cuda", "persona.device")
    with pytest.raises(CudaUnavailableError, match="cuda:1"):
        resolve_device("cuda:1", "persona.device")
    assert resolve_device("auto", "persona.device") == torch.device("cpu")
    with pytest.raises(ConfigError, match="persona.device"):
        resolve_device("tpu", "persona.device")


def test_intensity_scale_round_trip_and_clipping() -> None:
    vol = np.array([[-3.0, -2.0, 1.5, 5.0, 9.0]], dtype=np.float32)
    scaled = to_model_scale(vol, [-2.0, 5.0])
    np.testing.assert_allclose(scaled.numpy(), [[-1.0, -1.0, 0.0, 1.0, 1.0]], atol=1e-7)
    np.testing.assert_allclose(from_model_scale(scaled, [-2.0, 5.0]), [[-2.0, -2.0, 1.5, 5.0, 5.0]], atol=1e-6)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (
            {
                "unet": {
                    "channels": [8, 18],
                    "attention_levels": [False, False],
                    "num_res_blocks": 1,
                    "norm_num_groups": 4,
                }
            },
            "not divisible by persona.unet.norm_num_groups",
        ),
        ({"train_masks": "corner"}, "train_masks"),
        ({"beta_start": 0.1}, "beta_start"),
        ({"intensity_range": [1.0, 0.0]}, "intensity_range"),
    ],
)
def test_invalid_settings_name_the_key(change: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        tiny_settings(**change)
