"""MRNet and ELNet: shapes, variable slice counts, BlurPool, seeded training, fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from radpersona.baselines.elnet import BlurPool, ELNet, binomial_filter, fit_elnet
from radpersona.baselines.mrnet import MRNetView, fit_mrnet, load_backbone
from radpersona.baselines.slices import standardise_volume
from radpersona.errors import ConfigError, InputDataError
from radpersona.settings import CNNSettings, ELNetSettings, MRNetSettings
from radpersona.vocabulary import VIEWS

torch.set_num_threads(1)
CNN = CNNSettings.from_config(
    {"volumes": "pre", "epochs": 3, "learning_rate": 3e-3, "weight_decay": 0.0, "device": "cpu"}
)
VIEW = {"abn": "sagittal", "acl": "sagittal", "men": "coronal"}


@pytest.mark.parametrize("net", [MRNetView(width=4), ELNet(K=1)])
def test_one_logit_per_volume_for_any_slice_count(net):
    net.eval()
    for slices, size in [(5, 32), (11, 32), (3, 40)]:
        assert net(torch.randn(slices, 1, size, size)).shape == (1,)
    with pytest.raises(InputDataError):
        net(torch.randn(2, 3, 32, 32))


def test_max_over_slices_is_order_free_and_uses_every_slice():
    net = MRNetView(width=4).eval()
    x = torch.randn(6, 1, 32, 32)
    with torch.no_grad():
        a, b = net(x), net(x.flip(0))
        assert torch.allclose(a, b, atol=1e-6)  # max over slices: slice order does not matter
        per_slice = torch.cat([net.backbone(x[i : i + 1]).mean(dim=(2, 3)) for i in range(6)])  # each slice alone
        assert torch.allclose(a, net.classifier(per_slice.max(dim=0).values), atol=1e-5)


def test_blurpool_is_a_normalised_binomial_lowpass_with_stride_two():
    k = binomial_filter(5)
    assert torch.allclose(k[2], torch.tensor([1, 4, 6, 4, 1]) / 16 * 6 / 16)
    assert torch.isclose(k.sum(), torch.tensor(1.0))
    pool = BlurPool(3, filter_size=5)
    x = torch.ones(2, 3, 10, 10)
    y = pool(x)
    assert y.shape == (2, 3, 5, 5) and torch.allclose(y, torch.ones_like(y))  # constant image preserved
    with pytest.raises(ConfigError):
        binomial_filter(0)


def test_elnet_uses_per_slice_normalisation_not_batchnorm():
    net = ELNet(K=1, norm="layer")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, torch.nn.GroupNorm) and m.num_groups == 1 for m in net.modules())
    assert any(isinstance(m, BlurPool) for m in net.modules())


def _volumes(n: int, seed: int):
    """Cases whose positives carry a bright blob; slice counts differ from case to case."""
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(n // 2), np.zeros(n - n // 2)].astype(int)
    vols = []
    for label in y:
        v = rng.normal(0, 1, (int(rng.integers(4, 8)), 24, 24)).astype(np.float32)
        if label:
            v[1:3, 8:16, 8:16] += 3.0
        vols.append(standardise_volume(v))
    return vols, y


def test_fit_elnet_learns_a_blob_and_is_seeded():
    vols, y = _volumes(24, 0)
    test, yt = _volumes(12, 1)
    settings = ELNetSettings.from_config({"K": 1, "norm": "instance", "blur_filter": 3, "dropout": 0.0, "view": VIEW})
    cnn = CNN.replace(epochs=6, learning_rate=1e-3)
    out = fit_elnet(vols, y, test, settings=settings, cnn=cnn, inner_validation=0.25, seed=2, label="t")
    again = fit_elnet(vols, y, test, settings=settings, cnn=cnn, inner_validation=0.25, seed=2, label="t")
    assert np.allclose(out["prob"], again["prob"]) and out["threshold"] == again["threshold"]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(yt, out["prob"]) > 0.8
    assert out["init"] == "scratch"


def test_fit_mrnet_fuses_three_views_and_loads_local_weights(tmp_path):
    vols, y = _volumes(16, 3)
    test, yt = _volumes(12, 4)
    train = {v: vols for v in VIEWS}
    rep = {v: test for v in VIEWS}
    settings = MRNetSettings.from_config({"width": 2, "init_weights": None, "fusion_folds": 2})
    out = fit_mrnet(
        train, y, rep, settings=settings, cnn=CNN.replace(epochs=4), inner_validation=0.25, seed=1, label="t"
    )
    assert out["prob"].shape == (12,) and len(out["fusion_coef"]) == 4 and out["init"] == "scratch"
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(yt, out["prob"]) > 0.8  # the fused views find the blob on held-out volumes
    weights = tmp_path / "backbone.pt"
    torch.save(MRNetView(width=2).backbone.state_dict(), weights)
    out = fit_mrnet(
        train,
        y,
        rep,
        settings=settings.replace(init_weights=str(weights)),
        cnn=CNN.replace(epochs=1),
        inner_validation=0.25,
        seed=1,
        label="t",
    )
    assert out["init"].startswith(f"file {weights}")
    with pytest.raises(InputDataError, match="no such local file"):
        load_backbone(MRNetView(width=2), tmp_path / "absent.pt")
    with pytest.raises(InputDataError, match="does not fit"):
        load_backbone(MRNetView(width=3), weights)
