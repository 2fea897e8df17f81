"""Feature set, docstrings, input validation and the GPU path of the radiomics engine."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from radpersona.errors import ConfigError, InputDataError
from radpersona.radiomics import ALL_FAMILIES, FAMILY_MODULES, extract_features, feature_names

EXTRAS = {"firstorder_StandardDeviation", "shape_Compactness1", "shape_Compactness2"}


def test_columns_are_pyradiomics_defaults_plus_extras():
    radiomics = pytest.importorskip("radiomics")
    from radiomics import firstorder, glcm, gldm, glrlm, glszm, ngtdm, shape

    classes = {
        "firstorder": firstorder.RadiomicsFirstOrder,
        "shape": shape.RadiomicsShape,
        "glcm": glcm.RadiomicsGLCM,
        "glrlm": glrlm.RadiomicsGLRLM,
        "glszm": glszm.RadiomicsGLSZM,
        "gldm": gldm.RadiomicsGLDM,
        "ngtdm": ngtdm.RadiomicsNGTDM,
    }
    assert radiomics.__version__.lstrip("v").startswith("3.1")
    defaults = {
        f"{fam}_{name}"
        for fam, cls in classes.items()
        for name, deprecated in cls.getFeatureNames().items()
        if not deprecated
    }
    assert set(feature_names()) == defaults | EXTRAS
    counts = {fam: len(FAMILY_MODULES[fam].FEATURES) for fam in ALL_FAMILIES}
    assert counts == {"firstorder": 19, "shape": 16, "glcm": 24, "glrlm": 16, "glszm": 16, "gldm": 14, "ngtdm": 5}


def test_every_feature_has_a_formula_docstring():
    for fam, module in FAMILY_MODULES.items():
        for name, fn in module.FEATURES.items():
            doc = inspect.getdoc(fn) or ""
            assert "=" in doc and name.lower()[:4] in doc.lower().replace(" ", ""), f"{fam}.{name}: {doc!r}"


def test_rows_follow_items_and_families_subset():
    rng = np.random.default_rng(1)
    imgs = [rng.normal(100, 30, (5, 6, 7)), rng.normal(100, 30, (3, 9, 4))]
    masks = [np.ones((5, 6, 7), bool), rng.random((3, 9, 4)) > 0.3]
    both = extract_features(imgs, masks, families=("firstorder",))
    assert both.shape == (2, 19)
    one = extract_features(imgs[1:], masks[1:], families=("firstorder",))
    np.testing.assert_allclose(both.iloc[1].to_numpy(), one.iloc[0].to_numpy(), rtol=1e-12)
    assert both.loc[0, "firstorder_Mean"] == pytest.approx(imgs[0].mean(), rel=1e-12)


def test_invalid_input_is_rejected_with_a_clear_error():
    img = np.zeros((3, 3, 3))
    with pytest.raises(InputDataError, match="same shape|one shape"):
        extract_features([img], [np.ones((3, 3, 2))])
    with pytest.raises(ConfigError, match="unknown radiomics families"):
        extract_features([img], [np.ones((3, 3, 3))], families=("wavelet",))
    with pytest.raises(ConfigError, match="bin_width"):
        extract_features([img], [np.ones((3, 3, 3))], bin_width=0)
    with pytest.raises(ConfigError, match="backend"):
        extract_features([img], [np.ones((3, 3, 3))], backend="numpy")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_float32_agrees_with_cpu_float64(cases):
    images = [c[1] for c in cases]
    masks = [c[2] for c in cases]
    cpu = extract_features(images, masks, spacing=(2.0, 0.8, 0.8))
    gpu = extract_features(images, masks, spacing=(2.0, 0.8, 0.8), device="cuda", dtype="float32")
    a, b = gpu.to_numpy(), cpu.to_numpy()
    both_nan = np.isnan(a) & np.isnan(b)
    close = np.abs(a - b) <= 1e-3 * np.abs(b) + 1e-3
    assert (close | both_nan).all(), list(gpu.columns[~(close | both_nan).all(0)])
