"""The real PyRadiomics 3.1 as a reference backend (``backend="pyradiomics"``), one item at a time.

Settings match the engine: fixed bin width, voxelArrayShift, distances [1], symmetrical GLCM,
gldm_a 0, no resampling or normalisation, label 1 on ``mask > 0``. ``minimumROIDimensions`` is 1 so
that line-shaped ROIs are computed (PyRadiomics' default 2 refuses them); a single voxel is refused
by PyRadiomics itself. Deprecated features the engine reports (StandardDeviation, Compactness1,
Compactness2) are enabled explicitly.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np


def _sitk_image(array: np.ndarray, spacing: tuple[float, float, float]):
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(array)
    image.SetSpacing((float(spacing[2]), float(spacing[1]), float(spacing[0])))  # (x, y, z) = (cols, rows, slices)
    return image


def extract_with_pyradiomics(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    spacing: tuple[float, float, float],
    names: dict[str, list[str]],
    bin_width: float,
    voxel_array_shift: float,
) -> tuple[list[dict[str, float]], list[str]]:
    """Run PyRadiomics on every item; returns per item {"family_Feature": value} and a status string."""
    from radiomics import featureextractor

    logging.getLogger("radiomics").setLevel(logging.ERROR)
    extractor = featureextractor.RadiomicsFeatureExtractor(
        binWidth=bin_width,
        voxelArrayShift=voxel_array_shift,
        distances=[1],
        symmetricalGLCM=True,
        gldm_a=0,
        label=1,
        minimumROIDimensions=1,
        additionalInfo=False,
    )
    extractor.disableAllFeatures()
    extractor.enableFeaturesByName(**names)
    rows: list[dict[str, float]] = []
    status: list[str] = []
    for image, mask in zip(images, masks):
        roi = np.asarray(mask) > 0
        if not roi.any():
            rows.append({})
            status.append("empty mask")
            continue
        try:
            result = extractor.execute(
                _sitk_image(np.asarray(image, dtype=np.float64), spacing),
                _sitk_image(roi.astype(np.uint8), spacing),
            )
        except ValueError as err:
            rows.append({})
            status.append("single voxel" if "single voxel" in str(err) else f"pyradiomics refused: {err}")
            continue
        rows.append({k[len("original_") :]: float(v) for k, v in result.items() if k.startswith("original_")})
        status.append("ok")
    return rows, status
