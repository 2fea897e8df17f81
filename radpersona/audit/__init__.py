"""Signal audit (issue #14): how much lesion signal survives each stage, for cohorts with truth.

Pure functions on arrays and tables (no files, no Snakemake, no torch), one question each:

- :mod:`.grid` — bring image, healthy counterpart and lesion mask onto a working grid as the
  pipeline does (resize, normalisation, lesion fractions), and centre-crop the field of view;
- :mod:`.lesion` — a lesion's voxel count and size in mm on a grid; its share inside the persona box
  and the patches holding it;
- :mod:`.contrast` — noise sd (estimated at the raw stage, propagated through later stages),
  lesion-vs-healthy contrast-to-noise ratio at a stage, residual inside versus outside the lesion;
- :mod:`.survival` — the rule "a lesion survives a stage" (>= 4 lesion voxels and ``|CNR| >= 1`` in
  some view, for >= 90 % of the lesion cases);
- :mod:`.oracle` — the oracle ceiling of patch radiomics (best single feature of the lesion patch,
  chosen on train, AUC on valid);
- :mod:`.floor` — the whole-volume first-order logistic-regression floor.

Stages compare as long as each stage's image, counterpart and lesion fraction share one grid: the
truth module (:func:`radpersona.truth.healthy_on_grid`, :func:`radpersona.truth.lesion_fraction`)
provides them for the preprocessed and registered grids from the pipeline's files.
"""

from radpersona.audit.contrast import (
    LesionContrast,
    ResidualContrast,
    lesion_cnr,
    noise_sd,
    propagated_noise_sd,
    residual_contrast,
)
from radpersona.audit.floor import (
    FIRST_ORDER_STATS,
    FloorResult,
    first_order_floor,
    first_order_table,
    whole_volume_first_order,
)
from radpersona.audit.grid import (
    Preprocessed,
    centre_crop,
    intensity_scale,
    lesion_fraction_array,
    preprocess_with_counterparts,
)
from radpersona.audit.lesion import BoxShare, LesionSize, box_share, lesion_size
from radpersona.audit.oracle import (
    OracleCeiling,
    lesion_patch_sets,
    modal_patch,
    oracle_patch_auc,
    patch_columns,
    single_feature_aucs,
)
from radpersona.audit.survival import (
    MIN_CASE_SHARE,
    MIN_CNR,
    MIN_VOXELS,
    case_survival,
    cohort_survival,
    survives,
)

__all__ = [
    "FIRST_ORDER_STATS",
    "MIN_CASE_SHARE",
    "MIN_CNR",
    "MIN_VOXELS",
    "BoxShare",
    "FloorResult",
    "LesionContrast",
    "LesionSize",
    "OracleCeiling",
    "ResidualContrast",
    "box_share",
    "case_survival",
    "centre_crop",
    "cohort_survival",
    "first_order_floor",
    "first_order_table",
    "lesion_cnr",
    "lesion_fraction_array",
    "lesion_patch_sets",
    "lesion_size",
    "modal_patch",
    "noise_sd",
    "oracle_patch_auc",
    "patch_columns",
    "preprocess_with_counterparts",
    "propagated_noise_sd",
    "intensity_scale",
    "Preprocessed",
    "residual_contrast",
    "single_feature_aucs",
    "survives",
    "whole_volume_first_order",
]
