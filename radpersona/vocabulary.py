"""The names every part of radpersona shares: views, tasks, image kinds, families, baselines, options.

Each list of names lives here once. The config schema's enums, the Snakemake rules' wildcard
constraints, the settings objects and the package all read them from this module (a test checks that
the schema's enums equal these tuples). Torch-free and dependency-free, so that parsing the workflow
imports nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType

VIEWS: tuple[str, ...] = ("sagittal", "coronal", "axial")
"""The three MRI views, in the order of every per-view list (channels, columns, files)."""

TASKS: tuple[str, ...] = ("abn", "acl", "men")
"""Diagnostic tasks: abnormality, ACL tear, meniscal tear (MRNet's labels)."""

SPLITS: tuple[str, ...] = ("train", "valid")
"""Cohort splits: train (cross-validated, models fitted) and valid (reported)."""

IMAGE_KINDS: tuple[str, ...] = ("original", "persona", "residual")
"""Images radiomics are extracted from: the scan, its healthy persona, and scan - persona."""

RADIOMIC_FAMILIES: tuple[str, ...] = ("firstorder", "shape", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
"""PyRadiomics feature families, in the engine's order."""

LOCATION_FAMILY = "location"
"""Pseudo-family of the patch indices ``i``, ``j``, ``k`` in the feature tables."""

REG_VARIANTS: tuple[str, ...] = ("reg", "noreg")
"""Registration branches: NiftyReg-registered volumes, or the preprocessed ones unregistered."""

GRIDS: tuple[int, ...] = (1, 2, 3)
"""Patch grids ``n`` (``n x n x n`` patches over the persona box)."""

SOURCE_KINDS: tuple[str, ...] = ("synthetic", "mrnet", "kneemri", "manifest")
"""Where a cohort comes from."""

TRUTH_KINDS: tuple[str, ...] = ("healthy", "lesion")
"""Truth arrays of a synthetic case and view: the healthy counterpart and the lesion code mask."""

LESION_CODES: Mapping[str, int] = MappingProxyType(
    {"acl_tear": 1, "meniscal_tear": 2, "effusion": 3, "bone_bruise": 4, "cartilage_defect": 5}
)
"""Findings of the synthetic cohort and their codes in the truth lesion masks (0: no lesion)."""

CLASSICAL_BASELINES: tuple[str, ...] = ("lr_l1", "lr_l2", "svm", "rf")
"""Classical radiomics baselines (scikit-learn on an experiment's feature table)."""

CNN_BASELINES: tuple[str, ...] = ("mrnet", "elnet")
"""End-to-end CNN baselines (on volumes)."""

BASELINES: tuple[str, ...] = CLASSICAL_BASELINES + CNN_BASELINES
"""Every baseline name ``baselines.run`` accepts."""

PERSONA_MODELS: tuple[str, ...] = ("ddpm", "gan", "vit_ae")
"""Inpainters of the reconstruction study; ``ddpm`` is the pipeline's persona model."""

DEVICES: tuple[str, ...] = ("cpu", "cuda", "auto")
"""Compute devices a setting may name (``auto``: CUDA when available)."""


class Representation(StrEnum):
    """Which radiomic images form the fingerprint's candidate vector ``r``."""

    PATH_PERSONA = "path_persona"  # Eq. 17: [r_path, r_persona]
    RESIDUAL = "residual"  # r_residual (original - persona)
    ORIGINAL = "original"  # classical radiomics on the scan alone


REPRESENTATION_IMAGES: dict[str, tuple[str, ...]] = {
    Representation.PATH_PERSONA.value: ("original", "persona"),
    Representation.RESIDUAL.value: ("residual",),
    Representation.ORIGINAL.value: ("original",),
}
"""Image kinds each representation reads from the wide table."""


class PredictionType(StrEnum):
    """What the persona U-Net predicts (MONAI's scheduler ``prediction_type``)."""

    EPSILON = "epsilon"
    V_PREDICTION = "v_prediction"
    SAMPLE = "sample"  # x0: the paper's L_recon at every noise level


class SamplerKind(StrEnum):
    """Reverse process used to sample personas."""

    DDPM = "ddpm"
    DDIM = "ddim"


class PersonaProtocol(StrEnum):
    """Which persona model makes each case's persona (``PersonaSettings.protocol``)."""

    CROSS_FIT = "cross_fit"  # per CV fold a DDPM trained without it; the valid cases the all-cases DDPM
    PAPER = "paper"  # one DDPM on every healthy training case makes every persona (the paper's)
    EXTERNAL = "external"  # persona.checkpoint: a DDPM trained elsewhere, which never saw this cohort


class MaskMode(StrEnum):
    """Where training boxes of the persona model are placed."""

    CENTRAL = "central"
    RANDOM = "random"
    MIXED = "mixed"


class BetaPenalty(StrEnum):
    """Norm of the population coefficients in Eq. 8."""

    L2 = "l2"  # lambda_beta * ||beta||_2 (the paper)
    SQUARED = "squared"  # lambda_beta * ||beta||_2^2 (ridge; matches scikit-learn's l2 penalty)


class ThresholdProtocol(StrEnum):
    """Where the decision threshold of reported predictions comes from."""

    INNER = "inner"  # Youden's J on the inner validation split of the training fold
    OPTIMISTIC = "optimistic"  # the caller re-thresholds on the reported split (labelled optimistic)
