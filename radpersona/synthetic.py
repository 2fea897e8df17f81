"""Synthetic knee-MRI cohort in MRNet v1.0 layout, with ground truth (the pipeline's default dataset).

Every case is ONE analytic 3-D knee in its own knee frame (mm; x lateral, y anterior, z superior,
origin at the joint centre): femur with two condyles and a metaphysis, tibia with a flat plateau,
patella, articular cartilage on all three, wedge-shaped C-shaped medial and lateral menisci, ACL and
PCL (oblique capsules crossing the intercondylar notch), patellar tendon, a little joint fluid, and
fat / muscle soft tissue. Each shape is an (approximate) signed-distance function evaluated with
vectorised numpy; a compactly supported smoothstep turns distance into tissue occupancy, and tissues
are composited in anatomical order ("painter's algorithm") with PD-like intensities (fluid and fat
bright, marrow bright-ish, cartilage intermediate, menisci / ligaments / cortex dark).

A random pose (rotation up to ``MAX_ROTATION_DEG`` per axis, translation up to
``MAX_TRANSLATION_MM``, isotropic scale 0.9-1.1) places the knee in the scanner (world) frame. Each
view samples that same world-frame knee on its own grid: sagittal slices are perpendicular to x,
coronal to y, axial to z; ``matrix x matrix`` in-plane voxels over a 160 mm field of view; the slice
count varies per case and view within ``slices`` and the slab is 95-116 mm (sagittal, coronal) or
108-132 mm (axial) thick, so slices are about 3-6.5 mm apart for the default 20-32 slices. The
analytic field is evaluated on an in-plane grid of at most 1.25 mm (every voxel for ``matrix <=
255``; every second voxel for ``matrix = 256``; local structures only inside their bounding boxes)
and linearly interpolated to the full matrix; then a per-view gain, a smooth multiplicative bias field and Rician noise (drawn at full
resolution) are applied and the result is quantised to uint8.

Pathologies live in the knee frame, so a lesion shows up in every view whose sampling crosses it:

==== ================ ===========================================================================
code finding          model
==== ================ ===========================================================================
1    ACL tear         a gap in the ACL capsule filled with fluid signal
2    meniscal tear    a thin hyperintense band (horizontal, radial or vertical-longitudinal) inside
                      one meniscus that reaches a meniscal surface
3    effusion         distended joint recesses (suprapatellar, capsule, posterior) filled with fluid
4    bone bruise      an ill-defined oedema blob in subchondral femoral or tibial marrow
5    cartilage defect a focal fluid-filled defect in femoral or tibial cartilage
==== ================ ===========================================================================

``difficulty`` in [0, 1] raises noise and bias-field strength and shrinks lesion contrast and size.
Labels: ``acl ~ Bernoulli(p_acl)``, ``men ~ Bernoulli(p_men)``; ``abn = 1`` if either, otherwise
``abn ~ Bernoulli(q)`` with ``q = (p_abn - p_tear) / (1 - p_tear)`` so that ``P(abn) = p_abn``. An
abnormal case without tears gets at least one of findings 3-5; a case with a tear gets "other"
findings with the same probability ``q``, which makes their presence independent of the ACL and
meniscus labels (a whole-volume intensity model can find effusion, but that says nothing about the
ACL or menisci).

The healthy counterpart of each view is the same knee, pose, acquisition and noise realisation with
the lesions switched off; the lesion mask is the lesion whose visible (not painted over) geometric
occupancy exceeds 0.5 at the voxel centre.

A whole-volume first-order model does not solve the cohort. Measured (generator 1.0.0) with
``python benchmarks/synthetic_difficulty.py --n-train 120 --n-valid 60 --matrix 128 --seed 0
--difficulty 0.5`` (8 whole-volume first-order statistics per view, standardised logistic
regression, AUC on the 60 validation cases): abn 0.530, acl 0.618, men 0.532 (``BENCHMARK_AUC``).
That validation split holds only 5 ACL (22 meniscus) positives, so the ACL AUC is noisy (standard
error ~0.13); the same command with ``--seed 1`` (15 ACL, 23 meniscus positives) gave abn 0.540,
acl 0.444, men 0.481. Generation of those 180 cases took 128-145 s with ``--workers 2`` on a
shared, heavily loaded 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from . import VIEWS
from .atomic import atomic_output, write_bytes_atomic
from .errors import ConfigError
from .progress import Progress

logger = logging.getLogger("radpersona")

GENERATOR_VERSION = "1.0.0"

#: Validation AUCs measured by ``benchmarks/synthetic_difficulty.py`` (see the module docstring).
BENCHMARK_AUC: Mapping[str, float] = MappingProxyType({"abn": 0.530, "acl": 0.618, "men": 0.532})

#: MRNet's training-set prevalences (read-only).
DEFAULT_PREVALENCE: Mapping[str, float] = MappingProxyType({"abn": 0.808, "acl": 0.184, "men": 0.351})

FOV_MM = 160.0
MAX_ROTATION_DEG = 10.0
MAX_TRANSLATION_MM = 8.0
SCALE_RANGE = (0.9, 1.1)
COARSE_SPACING_MM = 1.25
EDGE_MM = 1.0
QUANT_SCALE = 255.0 / 1.3

LESION_CODES: dict[str, int] = {
    "acl_tear": 1,
    "meniscal_tear": 2,
    "effusion": 3,
    "bone_bruise": 4,
    "cartilage_defect": 5,
}
OTHER_FINDINGS: tuple[str, ...] = ("effusion", "bone_bruise", "cartilage_defect")
MRNET_LABEL_FILES: dict[str, str] = {"abn": "abnormal", "acl": "acl", "men": "meniscus"}

#: PD-like tissue intensities (before gain, bias and noise), 1.0 ~ brightest fluid.
INTENSITY: dict[str, float] = {
    "air": 0.0,
    "fat": 0.78,
    "muscle": 0.30,
    "fluid": 0.95,
    "marrow": 0.58,
    "cortex": 0.05,
    "cartilage": 0.48,
    "meniscus": 0.07,
    "ligament": 0.12,
    "tendon": 0.08,
    "oedema": 0.90,
}

#: Per view: (slice direction, row direction, column direction) as world unit vectors.
VIEW_AXES: dict[str, tuple[tuple[float, float, float], ...]] = {
    "sagittal": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0), (0.0, -1.0, 0.0)),
    "coronal": ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0), (1.0, 0.0, 0.0)),
    "axial": ((0.0, 0.0, 1.0), (0.0, -1.0, 0.0), (1.0, 0.0, 0.0)),
}
#: Nominal slab thickness (mm) per view; a case draws +-10 % around it.
VIEW_COVERAGE_MM: dict[str, float] = {"sagittal": 105.0, "coronal": 105.0, "axial": 120.0}

_MARKER = ".radpersona_synthetic"
_CASE_FILE = re.compile(r"^\d{4}\.npy$")
_TRUTH_FILE = re.compile(r"^\d{4}(_(sagittal|coronal|axial)_(healthy|lesion)\.npy|\.json)$")


# ----------------------------------------------------------------------------------------------
# labels
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseLabels:
    """Labels of one case and the "other" findings (effusion, bone bruise, cartilage defect)."""

    abn: int
    acl: int
    men: int
    other: tuple[str, ...] = field(default_factory=tuple)


def check_prevalence(prevalence: Mapping[str, float]) -> dict[str, float]:
    """Validate a prevalence mapping (keys abn, acl, men in [0, 1], ``abn >= P(acl or men)``).

    Raises:
        ConfigError: missing/unknown keys, values outside [0, 1], or an abnormal prevalence lower
            than the tear prevalence it must contain.
    """
    keys = set(prevalence)
    if keys != {"abn", "acl", "men"}:
        raise ConfigError(f"synthetic prevalence must have exactly the keys abn, acl, men, not {sorted(keys)}")
    out = {}
    for key in ("abn", "acl", "men"):
        value = float(prevalence[key])
        if not 0.0 <= value <= 1.0 or math.isnan(value):
            raise ConfigError(f"synthetic prevalence {key!r} must lie in [0, 1], not {prevalence[key]!r}")
        out[key] = value
    p_tear = 1.0 - (1.0 - out["acl"]) * (1.0 - out["men"])
    if out["abn"] < p_tear - 1e-12:
        raise ConfigError(
            f"synthetic prevalence 'abn' ({out['abn']}) must be at least P(acl or men) = {p_tear:.4f}, "
            "because every tear is an abnormality"
        )
    return out


def other_finding_probability(prevalence: Mapping[str, float]) -> float:
    """P(abn | no tear) = (p_abn - p_tear) / (1 - p_tear); also used for "other" findings with tears."""
    p = check_prevalence(prevalence)
    p_tear = 1.0 - (1.0 - p["acl"]) * (1.0 - p["men"])
    if p_tear >= 1.0:
        return p["abn"]
    return float(min(1.0, max(0.0, (p["abn"] - p_tear) / (1.0 - p_tear))))


def draw_labels(rng: np.random.Generator, prevalence: Mapping[str, float] = DEFAULT_PREVALENCE) -> CaseLabels:
    """Draw one case's labels and other findings.

    ``acl ~ B(p_acl)``, ``men ~ B(p_men)``, ``abn = 1`` for a tear, else ``abn ~ B(q)`` with
    ``q = P(abn | no tear)``; "other" findings are present with probability ``q`` whatever the tear
    status (always for an abnormal case without a tear), each of effusion, bone bruise and cartilage
    defect with probability 1/2, redrawn until at least one.
    """
    p = check_prevalence(prevalence)
    q = other_finding_probability(p)
    acl = int(rng.random() < p["acl"])
    men = int(rng.random() < p["men"])
    u_abn = rng.random()
    u_other = rng.random()
    if acl or men:
        abn = 1
        has_other = u_other < q
    else:
        abn = int(u_abn < q)
        has_other = bool(abn)
    other: tuple[str, ...] = ()
    if has_other:
        while not other:
            other = tuple(name for name in OTHER_FINDINGS if rng.random() < 0.5)
    return CaseLabels(abn=abn, acl=acl, men=men, other=other)


# ----------------------------------------------------------------------------------------------
# geometry primitives (all in the knee frame, mm; arrays float32)
# ----------------------------------------------------------------------------------------------


def _occ(sd: np.ndarray, width: float = EDGE_MM) -> np.ndarray:
    """Occupancy in [0, 1] from a signed distance (negative inside), smoothstep over ``width`` mm.

    Compactly supported: exactly 1 for ``sd <= -width/2`` and exactly 0 for ``sd >= width/2``.
    """
    t = np.clip(0.5 - sd / np.float32(width), 0.0, 1.0)
    return t * t * (np.float32(3.0) - np.float32(2.0) * t)


def _ellipsoid_sd(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, c: tuple[float, ...], r: tuple[float, ...]
) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipsoid (Quilez's k0 (k0 - 1) / k1 bound)."""
    dx, dy, dz = (x - np.float32(c[0])), (y - np.float32(c[1])), (z - np.float32(c[2]))
    k0 = np.sqrt((dx / r[0]) ** 2 + (dy / r[1]) ** 2 + (dz / r[2]) ** 2)
    k1 = np.sqrt((dx / r[0] ** 2) ** 2 + (dy / r[1] ** 2) ** 2 + (dz / r[2] ** 2) ** 2)
    return k0 * (k0 - np.float32(1.0)) / np.maximum(k1, np.float32(1e-6))


def _ellipse2d_sd(x: np.ndarray, y: np.ndarray, c: tuple[float, float], rx: Any, ry: Any) -> np.ndarray:
    """Approximate signed distance to an elliptic cylinder along z (radii may vary per point)."""
    dx, dy = x - np.float32(c[0]), y - np.float32(c[1])
    k = np.sqrt((dx / rx) ** 2 + (dy / ry) ** 2)
    return (k - np.float32(1.0)) * np.minimum(rx, ry)


def _capsule_sd(
    x: np.ndarray, y: np.ndarray, z: np.ndarray, a: tuple[float, ...], b: tuple[float, ...], radius: float
) -> np.ndarray:
    """Exact signed distance to a capsule (segment ``a``-``b`` with ``radius``)."""
    ba = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    bb = float(ba @ ba)
    px, py, pz = x - np.float32(a[0]), y - np.float32(a[1]), z - np.float32(a[2])
    h = np.clip((px * ba[0] + py * ba[1] + pz * ba[2]) / np.float32(bb), 0.0, 1.0)
    return np.sqrt((px - h * ba[0]) ** 2 + (py - h * ba[1]) ** 2 + (pz - h * ba[2]) ** 2) - np.float32(radius)


def _smooth_min(a: np.ndarray, b: np.ndarray, k: float) -> np.ndarray:
    """Polynomial smooth minimum (smooth union of two distance fields) with blend radius ``k``."""
    h = np.clip(0.5 + 0.5 * (b - a) / np.float32(k), 0.0, 1.0)
    return b * (1 - h) + a * h - np.float32(k) * h * (1 - h)


# ----------------------------------------------------------------------------------------------
# anatomy, pose, lesions (random draws)
# ----------------------------------------------------------------------------------------------


def _draw_anatomy(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one knee's anatomy (knee frame, mm): mild per-case variation of every structure."""

    def j(lo: float = 0.94, hi: float = 1.06) -> float:
        return float(rng.uniform(lo, hi))

    jf, jt, jm, jp, jl = j(), j(), j(), j(), j()
    fc_t = float(rng.uniform(1.8, 2.6))
    tc_t = float(rng.uniform(1.6, 2.3))
    plateau = -3.0
    med_r = (14.0 * jf, 24.0 * jf, 18.0 * jf)
    lat_r = (13.0 * jf, 23.0 * jf, 18.5 * jf)
    anatomy = {
        "leg_radii": (58.0 * jl, 54.0 * jl),
        "fat_mm": float(rng.uniform(5.0, 11.0)),
        "femur": {
            "medial_condyle": {"c": (-21.0 * jf, -8.0, 3.0 + med_r[2]), "r": med_r},
            "lateral_condyle": {"c": (21.0 * jf, -8.0, 3.5 + lat_r[2]), "r": lat_r},
            "metaphysis": {"c": (0.0, -2.0, 34.0 * jf), "r": (38.0 * jf, 26.0 * jf, 16.0 * jf)},
            "shaft": {"a": (0.0, 0.0, 40.0), "b": (0.0, 2.0, 160.0), "radius": 14.0 * jf},
            "cartilage_mm": fc_t,
        },
        "tibia": {
            "plateau_z": plateau,
            "centre": (0.0, -4.0),
            "radii": (40.0 * jt, 30.0 * jt),
            "shaft": {"a": (0.0, -2.0, -30.0), "b": (0.0, -2.0, -160.0), "radius": 16.0 * jt},
            "cartilage_mm": tc_t,
        },
        "patella": {"c": (0.0, 36.0 * jp, 30.0), "r": (21.0 * jp, 8.0 * jp, 17.0 * jp), "cartilage_mm": 3.0},
        "menisci": {
            "medial": {
                "c": (-20.0 * jt, -4.0),
                "r_in": 8.0 * jm,
                "r_out": 17.0 * jm,
                "height": 6.5 * jm,
                "open_deg": 35.0,
                "notch_angle_deg": 0.0,
            },
            "lateral": {
                "c": (20.0 * jt, -4.0),
                "r_in": 7.5 * jm,
                "r_out": 16.0 * jm,
                "height": 6.0 * jm,
                "open_deg": 20.0,
                "notch_angle_deg": 180.0,
            },
            "z_bottom": plateau + tc_t,
        },
        "acl": {"a": (7.0, -17.0, 15.0), "b": (-2.0, 9.0, plateau), "radius": 4.5 * j(0.9, 1.1)},
        "pcl": {"a": (-7.0, -4.0, 13.0), "b": (-1.0, -24.0, plateau - 5.0), "radius": 5.5 * j(0.9, 1.1)},
        "patellar_tendon": {"a": (0.0, 38.0 * jp, 14.0), "b": (0.0, 30.0, -28.0), "radius": 4.0},
        "fluid": {
            "capsule": {"c": (0.0, -4.0, 0.0), "r": (42.0, 31.0, 4.5)},
            "suprapatellar": {"c": (0.0, 21.0, 50.0), "r": (20.0, 3.5, 13.0)},
        },
        "fat_pads": {
            "hoffa": {"c": (0.0, 24.0, -2.0), "r": (20.0, 9.0, 12.0)},
            "popliteal": {"c": (0.0, -34.0, 2.0), "r": (16.0, 10.0, 30.0)},
            "prepatellar": {"c": (0.0, 44.0, 25.0), "r": (30.0, 8.0, 35.0)},
            "notch": {"c": (0.0, -6.0, 12.0), "r": (8.0, 18.0, 8.0)},
        },
    }
    return anatomy


def _rotation_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation ``Rz @ Ry @ Rx`` from angles (degrees) about x, y, z."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _draw_pose(rng: np.random.Generator) -> dict[str, Any]:
    """Draw the knee's pose in the scanner: rotation, translation (mm) and isotropic scale."""
    angles = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, size=3)
    translation = rng.uniform(-MAX_TRANSLATION_MM, MAX_TRANSLATION_MM, size=3)
    scale = float(rng.uniform(*SCALE_RANGE))
    return {
        "rotation_deg": angles.tolist(),
        "rotation": _rotation_matrix(angles).tolist(),
        "translation_mm": translation.tolist(),
        "scale": scale,
    }


def knee_to_world(points: np.ndarray, pose: Mapping[str, Any]) -> np.ndarray:
    """Map knee-frame points ``(..., 3)`` (mm) to world (scanner) coordinates: ``s R q + t``."""
    rot = np.asarray(pose["rotation"], dtype=np.float64)
    return float(pose["scale"]) * np.asarray(points, dtype=np.float64) @ rot.T + np.asarray(pose["translation_mm"])


def _lesion_scales(difficulty: float) -> tuple[float, float]:
    """(size factor, contrast factor) of lesions at ``difficulty``: both shrink as it grows."""
    return 1.25 - 0.5 * difficulty, 1.0 - 0.6 * difficulty


def _draw_lesions(
    rng: np.random.Generator, labels: CaseLabels, anatomy: Mapping[str, Any], difficulty: float
) -> list[dict[str, Any]]:
    """Draw the geometry of every finding of a case (knee frame); an empty list for a normal case."""
    size, contrast = _lesion_scales(difficulty)
    lesions: list[dict[str, Any]] = []
    if labels.acl:
        acl = anatomy["acl"]
        a, b = np.asarray(acl["a"]), np.asarray(acl["b"])
        length = float(np.linalg.norm(b - a))
        centre_t = float(rng.uniform(0.38, 0.62))
        gap = float(rng.uniform(5.0, 8.0)) * size
        t0, t1 = centre_t - 0.5 * gap / length, centre_t + 0.5 * gap / length
        lesions.append(
            {
                "type": "acl_tear",
                "code": LESION_CODES["acl_tear"],
                "gap_start": (a + t0 * (b - a)).tolist(),
                "gap_end": (a + t1 * (b - a)).tolist(),
                "radius": 1.3 * float(acl["radius"]),
                "gap_mm": gap,
                "contrast": contrast,
            }
        )
    if labels.men:
        side = "medial" if rng.random() < 0.7 else "lateral"
        kind = str(rng.choice(["horizontal", "radial", "longitudinal"]))
        men = anatomy["menisci"][side]
        # posterior horn most often (angle measured in the xy-plane, -90 deg = posterior)
        angle = float(rng.uniform(-130.0, -50.0) if rng.random() < 0.75 else rng.uniform(50.0, 130.0))
        lesions.append(
            {
                "type": "meniscal_tear",
                "code": LESION_CODES["meniscal_tear"],
                "side": side,
                "kind": kind,
                "angle_deg": angle,
                "half_arc_deg": float(rng.uniform(30.0, 45.0)) * size,
                "depth_fraction": float(rng.uniform(0.5, 0.8)),
                "radius_fraction": float(rng.uniform(0.65, 0.95)),
                "width_mm": max(1.5, 1.8 * size),
                "r_in": men["r_in"],
                "r_out": men["r_out"],
                "contrast": contrast,
            }
        )
    for name in labels.other:
        if name == "effusion":
            s = float(rng.uniform(0.6, 1.2)) * size
            lesions.append({"type": "effusion", "code": LESION_CODES["effusion"], "extent": s, "contrast": contrast})
        elif name == "bone_bruise":
            bone = "femur" if rng.random() < 0.5 else "tibia"
            side = "lateral" if rng.random() < 0.65 else "medial"
            sx = 1.0 if side == "lateral" else -1.0
            if bone == "femur":
                cond = anatomy["femur"][f"{side}_condyle"]
                bottom = cond["c"][2] - cond["r"][2]
                centre = (
                    cond["c"][0] + rng.uniform(-4, 4),
                    cond["c"][1] + rng.uniform(-8, 8),
                    bottom + rng.uniform(6, 10),
                )
            else:
                centre = (
                    sx * 20.0 + rng.uniform(-5, 5),
                    -4.0 + rng.uniform(-12, 8),
                    anatomy["tibia"]["plateau_z"] - rng.uniform(6, 10),
                )
            radii = tuple(float(rng.uniform(6.0, 10.0)) * size for _ in range(3))
            lesions.append(
                {
                    "type": "bone_bruise",
                    "code": LESION_CODES["bone_bruise"],
                    "bone": bone,
                    "side": side,
                    "centre": [float(v) for v in centre],
                    "radii": list(radii),
                    "edge_mm": 4.0 * size,
                    "wobble": [float(v) for v in rng.uniform(0, 2 * math.pi, size=3)],
                    "contrast": contrast,
                }
            )
        elif name == "cartilage_defect":
            bone = "femur" if rng.random() < 0.6 else "tibia"
            side = "medial" if rng.random() < 0.6 else "lateral"
            radius = float(rng.uniform(3.0, 5.0)) * size
            if bone == "femur":
                cond = anatomy["femur"][f"{side}_condyle"]
                (cx, cy, cz), (rx, ry, rz) = cond["c"], cond["r"]
                t = anatomy["femur"]["cartilage_mm"]
                dx, dy = float(rng.uniform(-0.3, 0.3)) * rx, float(rng.uniform(-0.35, 0.2)) * ry
                inner = max(0.05, 1.0 - (dx / (rx + t)) ** 2 - (dy / (ry + t)) ** 2)
                centre = (cx + dx, cy + dy, cz - (rz + t) * math.sqrt(inner))
            else:
                sx = -1.0 if side == "medial" else 1.0
                centre = (
                    sx * 20.0 + float(rng.uniform(-6, 6)),
                    -4.0 + float(rng.uniform(-8, 8)),
                    anatomy["tibia"]["plateau_z"] + anatomy["tibia"]["cartilage_mm"],
                )
            lesions.append(
                {
                    "type": "cartilage_defect",
                    "code": LESION_CODES["cartilage_defect"],
                    "bone": bone,
                    "side": side,
                    "centre": [float(v) for v in centre],
                    "radius": radius,
                    "contrast": contrast,
                }
            )
    return lesions


# ----------------------------------------------------------------------------------------------
# acquisition (per view) and rendering
# ----------------------------------------------------------------------------------------------


def coarse_factor(matrix: int) -> int:
    """In-plane subsampling factor ``f`` of the analytic evaluation (1 up to matrix 255, 2 for 256).

    The largest divisor of ``matrix`` not above ``matrix // 128``, so the evaluation grid spacing
    ``FOV / (matrix / f)`` stays at or below about ``COARSE_SPACING_MM``.
    """
    f = max(1, matrix // int(round(FOV_MM / COARSE_SPACING_MM)))
    while matrix % f:
        f -= 1
    return f


def _draw_acquisition(
    rng: np.random.Generator, view: str, slices: tuple[int, int], matrix: int, difficulty: float
) -> dict[str, Any]:
    """Draw one view's acquisition: slice count and spacing, gain, noise, bias-field coefficients."""
    n_slices = int(rng.integers(slices[0], slices[1] + 1))
    coverage = VIEW_COVERAGE_MM[view] * float(rng.uniform(0.9, 1.1))
    spacing = coverage / n_slices
    pixel = FOV_MM / matrix
    axes = np.asarray(VIEW_AXES[view], dtype=np.float64)
    affine = np.eye(4)
    affine[:3, 0] = axes[0] * spacing
    affine[:3, 1] = axes[1] * pixel
    affine[:3, 2] = axes[2] * pixel
    centre_index = np.array([(n_slices - 1) / 2, (matrix - 1) / 2, (matrix - 1) / 2])
    affine[:3, 3] = -affine[:3, :3] @ centre_index
    bias_strength = 0.05 + 0.25 * difficulty
    return {
        "view": view,
        "shape": [n_slices, matrix, matrix],
        "slice_spacing_mm": spacing,
        "pixel_spacing_mm": pixel,
        "axes": axes.tolist(),
        "affine": affine.tolist(),
        "gain": float(rng.uniform(0.85, 1.15)),
        "noise_sigma": 0.015 + 0.05 * difficulty,
        "bias_coefficients": (rng.normal(0.0, 1.0, size=9) * bias_strength / 3.0).tolist(),
    }


def view_affine(meta: Mapping[str, Any], view: str) -> np.ndarray:
    """4x4 affine from a view's voxel index ``(slice, row, col, 1)`` to world mm, read from a case's truth JSON."""
    return np.asarray(meta["views"][view]["affine"], dtype=np.float64)


Block = tuple[slice, slice, slice]


class _Grid:
    """Knee-frame coordinates of a view's evaluation grid, linear in the voxel index.

    ``q(index) = offset + linear @ index``; the columns of ``linear`` are orthogonal (a scaled
    rotation of the view's axes), which makes the index-space bounding box of a sphere exact.
    """

    def __init__(self, shape: tuple[int, int, int], linear: np.ndarray, offset: np.ndarray) -> None:
        self.shape = shape
        self.linear, self.offset = linear, offset
        self.inverse = np.linalg.inv(linear)
        self.step = np.linalg.norm(linear, axis=0)  # mm per index step along each array axis
        idx = [
            np.arange(n, dtype=np.float64).reshape([-1 if k == a else 1 for k in range(3)]) for a, n in enumerate(shape)
        ]
        self.x, self.y, self.z = (
            (offset[i] + linear[i, 0] * idx[0] + linear[i, 1] * idx[1] + linear[i, 2] * idx[2]).astype(np.float32)
            for i in range(3)
        )

    def block(self, *spheres: tuple[Any, float]) -> Block | None:
        """Array block covering the union of spheres ``(centre, radius)`` (knee mm); None if outside."""
        lo = np.full(3, np.inf)
        hi = np.full(3, -np.inf)
        for centre, radius in spheres:
            c = self.inverse @ (np.asarray(centre, dtype=np.float64) - self.offset)
            half = float(radius) / self.step
            lo, hi = np.minimum(lo, c - half), np.maximum(hi, c + half)
        start = np.maximum(np.floor(lo), 0).astype(int)
        stop = np.minimum(np.ceil(hi) + 1, self.shape).astype(int)
        if np.any(stop <= start):
            return None
        return (slice(start[0], stop[0]), slice(start[1], stop[1]), slice(start[2], stop[2]))

    def at(self, block: Block) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Coordinates (views, no copy) inside ``block``."""
        return self.x[block], self.y[block], self.z[block]


FULL: Block = (slice(None), slice(None), slice(None))


def _ellipsoid_bound(c: Any, r: Any, edge: float = EDGE_MM) -> tuple[Any, float]:
    """Sphere outside which ``_ellipsoid_sd >= edge / 2`` (no occupancy): ``R + (edge/2) R / r_min + 1``."""
    big, small = max(r), min(r)
    return c, big + 0.5 * edge * big / small + 1.0


def _capsule_bound(a: Any, b: Any, radius: float, edge: float = EDGE_MM) -> tuple[Any, float]:
    """Sphere enclosing a capsule's non-zero occupancy."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a + b) / 2, float(np.linalg.norm(b - a)) / 2 + radius + 0.5 * edge + 0.5


def _wrap_angle(angle: np.ndarray) -> np.ndarray:
    """Absolute angle difference wrapped to [0, pi]."""
    return np.abs((angle + np.float32(math.pi)) % np.float32(2 * math.pi) - np.float32(math.pi))


class _Canvas:
    """Painter's-algorithm compositor of a healthy and a lesioned image, tracking lesion visibility."""

    def __init__(self, shape: tuple[int, ...], with_lesions: bool) -> None:
        self.healthy = np.zeros(shape, dtype=np.float32)
        self.lesioned = np.zeros(shape, dtype=np.float32) if with_lesions else None
        self.visible: dict[int, np.ndarray] = {}

    def paint(self, occ: np.ndarray, value: float, where: Block = FULL) -> None:
        """Paint an anatomical tissue with occupancy ``occ`` (on ``where``) on both images."""
        keep, add = 1 - occ, occ * np.float32(value)
        # I (1 - o) + o v: exactly I where o == 0 and exactly v where o == 1 (twins stay bit-equal)
        self.healthy[where] *= keep
        self.healthy[where] += add
        if self.lesioned is not None:
            self.lesioned[where] *= keep
            self.lesioned[where] += add
        for vis in self.visible.values():
            vis[where] *= keep

    def paint_lesion(self, code: int, occ: np.ndarray, value: float, contrast: float, where: Block = FULL) -> None:
        """Paint a lesion (lesioned image only) at ``contrast`` times full strength; track its visibility."""
        if self.lesioned is None:
            raise RuntimeError("canvas created without lesions")
        strength = np.float32(contrast) * occ
        self.lesioned[where] *= 1 - strength
        self.lesioned[where] += strength * np.float32(value)
        for vis in self.visible.values():
            vis[where] *= 1 - occ
        if code not in self.visible:
            self.visible[code] = np.zeros_like(self.healthy)
        self.visible[code][where] += occ
        np.clip(self.visible[code], 0.0, 1.0, out=self.visible[code])


def _render(grid: _Grid, anatomy: Mapping[str, Any], lesions: list[dict[str, Any]]) -> _Canvas:
    """Evaluate the knee (and its lesions) on ``grid``; return the composited canvas.

    Local structures are evaluated only inside the index-space bounding box of a sphere that
    encloses their non-zero occupancy.
    """
    canvas = _Canvas(grid.shape, with_lesions=bool(lesions))
    by_type: dict[str, list[dict[str, Any]]] = {}
    for lesion in lesions:
        by_type.setdefault(lesion["type"], []).append(lesion)
    f32 = np.float32
    I = INTENSITY  # noqa: E741
    x, y, z = grid.x, grid.y, grid.z

    def paint_ellipsoid(c: Any, r: Any, value: float) -> None:
        b = grid.block(_ellipsoid_bound(c, r))
        if b is not None:
            canvas.paint(_occ(_ellipsoid_sd(*grid.at(b), c, r)), value, b)

    # soft tissue
    rx, ry = anatomy["leg_radii"]
    canvas.paint(_occ(_ellipse2d_sd(x, y, (0.0, -6.0), rx, ry)), I["fat"])
    fat = anatomy["fat_mm"]
    canvas.paint(_occ(_ellipse2d_sd(x, y, (0.0, -6.0), rx - fat, ry - fat)), I["muscle"])
    for pad in anatomy["fat_pads"].values():
        paint_ellipsoid(pad["c"], pad["r"], I["fat"])

    # joint fluid (and effusion: the extra fluid over the normal amount)
    fluid = anatomy["fluid"]
    cap, sup = fluid["capsule"], fluid["suprapatellar"]
    paint_ellipsoid(cap["c"], cap["r"], I["fluid"])
    paint_ellipsoid(sup["c"], sup["r"], I["fluid"])
    for les in by_type.get("effusion", []):
        s = les["extent"]
        shapes = [
            (cap["c"], (cap["r"][0] + 3 * s, cap["r"][1] + 4 * s, cap["r"][2] + 2.5 * s)),
            (
                (sup["c"][0], sup["c"][1] + 2 * s, sup["c"][2] + 3 * s),
                (sup["r"][0] + 5 * s, sup["r"][1] + 7 * s, sup["r"][2] + 9 * s),
            ),
            ((0.0, -27.0, 4.0), (22.0, 3.0 + 5 * s, 6.0 + 7 * s)),
        ]
        b = grid.block(*(_ellipsoid_bound(c, r) for c, r in shapes))
        if b is None:
            continue
        xb, yb, zb_ = grid.at(b)
        eff_sd = np.minimum.reduce([_ellipsoid_sd(xb, yb, zb_, c, r) for c, r in shapes])
        normal_sd = np.minimum(
            _ellipsoid_sd(xb, yb, zb_, cap["c"], cap["r"]), _ellipsoid_sd(xb, yb, zb_, sup["c"], sup["r"])
        )
        extra = np.clip(_occ(eff_sd) - _occ(normal_sd), 0.0, 1.0)
        canvas.paint_lesion(les["code"], extra, I["fluid"], les["contrast"], b)

    # tibia: cartilage, cortex, marrow (+ defects, bruises)
    tib = anatomy["tibia"]
    pz = f32(tib["plateau_z"])
    depth = np.clip((pz - z) / f32(35.0), 0.0, 1.0)
    taper = f32(1.0) - f32(0.45) * depth * depth
    trx, try_ = tib["radii"]
    head_sd = np.maximum(_ellipse2d_sd(x, y, tib["centre"], trx * taper, try_ * taper), z - pz)
    tibia_sd = _smooth_min(
        head_sd, _capsule_sd(x, y, z, tib["shaft"]["a"], tib["shaft"]["b"], tib["shaft"]["radius"]), 5.0
    )
    tc = tib["cartilage_mm"]
    tcart_block = grid.block(((tib["centre"][0], tib["centre"][1], tib["plateau_z"]), max(trx, try_) + tc + 2.0))
    tibia_occ = _occ(tibia_sd)
    if tcart_block is not None:
        xb, yb, zb_ = grid.at(tcart_block)
        tcart_sd = np.maximum.reduce(
            [
                _ellipse2d_sd(xb, yb, tib["centre"], trx - 4.0, try_ - 4.0),
                zb_ - (pz + f32(tc)),
                (pz - f32(0.5)) - zb_,
                f32(7.0) - np.abs(xb),
            ]
        )
        tcart_occ = _occ(tcart_sd)
        canvas.paint(tcart_occ, I["cartilage"], tcart_block)
        for les in by_type.get("cartilage_defect", []):
            if les["bone"] == "tibia":
                c = les["centre"]
                d = _occ(
                    np.sqrt((xb - f32(c[0])) ** 2 + (yb - f32(c[1])) ** 2 + (zb_ - f32(c[2])) ** 2) - f32(les["radius"])
                )
                canvas.paint_lesion(
                    les["code"], d * tcart_occ * (1 - tibia_occ[tcart_block]), I["fluid"], les["contrast"], tcart_block
                )
    canvas.paint(tibia_occ, I["cortex"])
    tib_marrow = _occ(tibia_sd + f32(1.2))
    canvas.paint(tib_marrow, I["marrow"])

    def bruise(les: Mapping[str, Any], marrow: np.ndarray) -> None:
        c, r, w, edge = les["centre"], les["radii"], les["wobble"], les["edge_mm"]
        # the wobble shifts the distance by at most 3 mm
        b = grid.block((c, max(r) + (0.5 * edge + 3.0) * max(r) / min(r) + 1.0))
        if b is None:
            return
        xb, yb, zb_ = grid.at(b)
        sd = _ellipsoid_sd(xb, yb, zb_, c, r)
        sd = sd + f32(1.5) * (
            np.sin(xb * f32(0.35) + f32(w[0])) * np.sin(yb * f32(0.3) + f32(w[1])) + np.sin(zb_ * f32(0.4) + f32(w[2]))
        )
        canvas.paint_lesion(les["code"], _occ(sd, edge) * marrow[b], I["oedema"], les["contrast"], b)

    for les in by_type.get("bone_bruise", []):
        if les["bone"] == "tibia":
            bruise(les, tib_marrow)

    # femur
    fem = anatomy["femur"]
    med, lat = fem["medial_condyle"], fem["lateral_condyle"]
    med_sd = _ellipsoid_sd(x, y, z, med["c"], med["r"])
    lat_sd = _ellipsoid_sd(x, y, z, lat["c"], lat["r"])
    meta = fem["metaphysis"]
    meta_sd = _ellipsoid_sd(x, y, z, meta["c"], meta["r"])
    femur_sd = _smooth_min(
        _smooth_min(np.minimum(med_sd, lat_sd), meta_sd, 6.0),
        _capsule_sd(x, y, z, fem["shaft"]["a"], fem["shaft"]["b"], fem["shaft"]["radius"]),
        6.0,
    )
    t = fem["cartilage_mm"]
    cond_dil_sd = np.minimum(
        _ellipsoid_sd(x, y, z, med["c"], tuple(v + t for v in med["r"])),
        _ellipsoid_sd(x, y, z, lat["c"], tuple(v + t for v in lat["r"])),
    )
    troch_sd = np.maximum.reduce(
        [_ellipsoid_sd(x, y, z, meta["c"], tuple(v + t for v in meta["r"])), f32(12.0) - y, z - f32(45.0)]
    )
    fcart_sd = np.minimum(np.maximum(cond_dil_sd, z - f32(max(med["c"][2], lat["c"][2]) + 4.0)), troch_sd)
    fcart_occ = _occ(fcart_sd)
    canvas.paint(fcart_occ, I["cartilage"])
    femur_occ = _occ(femur_sd)
    for les in by_type.get("cartilage_defect", []):
        if les["bone"] == "femur":
            c = les["centre"]
            b = grid.block((c, les["radius"] + EDGE_MM))
            if b is None:
                continue
            xb, yb, zb_ = grid.at(b)
            d = _occ(
                np.sqrt((xb - f32(c[0])) ** 2 + (yb - f32(c[1])) ** 2 + (zb_ - f32(c[2])) ** 2) - f32(les["radius"])
            )
            canvas.paint_lesion(les["code"], d * fcart_occ[b] * (1 - femur_occ[b]), I["fluid"], les["contrast"], b)
    canvas.paint(femur_occ, I["cortex"])
    fem_marrow = _occ(femur_sd + f32(1.2))
    canvas.paint(fem_marrow, I["marrow"])
    for les in by_type.get("bone_bruise", []):
        if les["bone"] == "femur":
            bruise(les, fem_marrow)

    # patella
    pat = anatomy["patella"]
    pat_dil = tuple(v + pat["cartilage_mm"] for v in pat["r"])
    b = grid.block(_ellipsoid_bound(pat["c"], pat_dil))
    if b is not None:
        xb, yb, zb_ = grid.at(b)
        pcart_sd = np.maximum(_ellipsoid_sd(xb, yb, zb_, pat["c"], pat_dil), yb - f32(pat["c"][1] - 2.0))
        canvas.paint(_occ(pcart_sd), I["cartilage"], b)
        pat_sd = _ellipsoid_sd(xb, yb, zb_, pat["c"], pat["r"])
        canvas.paint(_occ(pat_sd), I["cortex"], b)
        canvas.paint(_occ(pat_sd + f32(1.2)), I["marrow"], b)

    # menisci (outside the femoral cartilage surface)
    men = anatomy["menisci"]
    zb = f32(men["z_bottom"])
    for side in ("medial", "lateral"):
        m = men[side]
        b = grid.block(
            (
                (m["c"][0], m["c"][1], men["z_bottom"] + m["height"] / 2),
                math.hypot(m["r_out"] + 1.5, m["height"] / 2 + 1.5),
            )
        )
        if b is None:
            continue
        xb, yb, zz = grid.at(b)
        dx, dy = xb - f32(m["c"][0]), yb - f32(m["c"][1])
        rho = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        width = m["r_out"] - m["r_in"]
        slope = m["height"] / width
        top = zb + f32(m["height"]) * np.clip((rho - f32(m["r_in"])) / f32(width), 0.0, 1.0)
        dtheta = _wrap_angle(theta - f32(math.radians(m["notch_angle_deg"])))
        men_sd = np.maximum.reduce(
            [
                f32(m["r_in"]) - rho,
                rho - f32(m["r_out"]),
                zb - zz,
                (zz - top) / f32(math.sqrt(1.0 + slope * slope)),
                (f32(math.radians(m["open_deg"])) - dtheta) * rho,
                -cond_dil_sd[b],
            ]
        )
        men_occ = _occ(men_sd)
        canvas.paint(men_occ, I["meniscus"], b)
        for les in by_type.get("meniscal_tear", []):
            if les["side"] != side:
                continue
            ang = math.radians(les["angle_deg"])
            dang = _wrap_angle(theta - f32(ang))
            half_w = f32(les["width_mm"] / 2.0)
            reach = f32(m["r_in"] + les["radius_fraction"] * width)
            if les["kind"] == "horizontal":
                zmid = zb + f32(les["depth_fraction"]) * (top - zb)
                band = np.maximum.reduce(
                    [np.abs(zz - zmid) - half_w, rho - reach, (dang - f32(math.radians(les["half_arc_deg"]))) * rho]
                )
            elif les["kind"] == "radial":
                perp = np.abs(f32(-math.sin(ang)) * dx + f32(math.cos(ang)) * dy)
                along = f32(math.cos(ang)) * dx + f32(math.sin(ang)) * dy
                band = np.maximum.reduce([perp - f32(1.5) * half_w, rho - reach, -along])
            else:  # vertical longitudinal: a cylindrical band at constant radius reaching both surfaces
                r0 = f32(m["r_in"] + les["depth_fraction"] * width)
                band = np.maximum(np.abs(rho - r0) - half_w, (dang - f32(math.radians(les["half_arc_deg"]))) * rho)
            canvas.paint_lesion(les["code"], _occ(band, 0.6) * men_occ, I["fluid"], les["contrast"], b)

    # ligaments and tendon
    for name, value in (("pcl", I["ligament"]), ("acl", I["ligament"]), ("patellar_tendon", I["tendon"])):
        lig = anatomy[name]
        b = grid.block(_capsule_bound(lig["a"], lig["b"], lig["radius"]))
        if b is not None:
            canvas.paint(_occ(_capsule_sd(*grid.at(b), lig["a"], lig["b"], lig["radius"])), value, b)
    for les in by_type.get("acl_tear", []):
        b = grid.block(_capsule_bound(les["gap_start"], les["gap_end"], les["radius"]))
        if b is not None:
            gap = _occ(_capsule_sd(*grid.at(b), les["gap_start"], les["gap_end"], les["radius"]))
            canvas.paint_lesion(les["code"], gap, I["fluid"], les["contrast"], b)
    return canvas


def _upsample(volume: np.ndarray, factor: int) -> np.ndarray:
    """Linear in-plane upsampling by an integer ``factor`` with pixel-area (grid-mode) alignment."""
    if factor == 1:
        return volume
    for axis in (1, 2):
        n = volume.shape[axis]
        pos = (np.arange(n * factor) + 0.5) / factor - 0.5
        i0 = np.floor(pos).astype(np.int64)
        w = (pos - i0).astype(np.float32)
        i1 = np.clip(i0 + 1, 0, n - 1)
        i0 = np.clip(i0, 0, n - 1)
        shape = [1, 1, 1]
        shape[axis] = -1
        w = w.reshape(shape)
        volume = np.take(volume, i0, axis=axis) * (1 - w) + np.take(volume, i1, axis=axis) * w
    return volume


def _view_grid(acq: Mapping[str, Any], pose: Mapping[str, Any], factor: int) -> _Grid:
    """Knee-frame evaluation grid of a view: every slice, in-plane pixel-area centres of ``factor``-sized cells."""
    n_slices, matrix, _ = acq["shape"]
    affine = np.asarray(acq["affine"])
    # coarse index (s, i, j) -> fine index (s, (i + 0.5) f - 0.5, (j + 0.5) f - 0.5)
    coarse_to_fine = np.diag([1.0, float(factor), float(factor)])
    shift = np.array([0.0, 0.5 * factor - 0.5, 0.5 * factor - 0.5])
    inv = np.asarray(pose["rotation"]).T / float(pose["scale"])  # world -> knee: R^T (p - t) / s
    linear = inv @ affine[:3, :3] @ coarse_to_fine
    offset = inv @ (affine[:3, :3] @ shift + affine[:3, 3] - np.asarray(pose["translation_mm"]))
    return _Grid((n_slices, matrix // factor, matrix // factor), linear, offset)


def _bias_field(acq: Mapping[str, Any], shape: tuple[int, ...]) -> np.ndarray:
    """Smooth multiplicative bias field ``exp(sum_k b_k m_k)`` over quadratic monomials of the grid."""
    u = np.linspace(-1, 1, shape[0], dtype=np.float32).reshape(-1, 1, 1)
    v = np.linspace(-1, 1, shape[1], dtype=np.float32).reshape(1, -1, 1)
    w = np.linspace(-1, 1, shape[2], dtype=np.float32).reshape(1, 1, -1)
    b = [np.float32(value) for value in acq["bias_coefficients"]]
    log_field = (
        b[0] * u
        + b[1] * v
        + b[2] * w
        + b[3] * u * v
        + b[4] * v * w
        + b[5] * u * w
        + b[6] * u * u
        + b[7] * v * v
        + b[8] * w * w
    )
    return np.exp(log_field).astype(np.float32)


def _pad_block(lo: np.ndarray, hi: np.ndarray, pad: int, shape: tuple[int, ...]) -> Block:
    """Coarse block ``[lo, hi)`` padded in-plane (axes 1, 2) by ``pad`` pixels, clipped to ``shape``."""
    return (
        slice(int(lo[0]), int(hi[0])),
        slice(max(0, int(lo[1]) - pad), min(shape[1], int(hi[1]) + pad)),
        slice(max(0, int(lo[2]) - pad), min(shape[2], int(hi[2]) + pad)),
    )


def _fine_block(block: Block, factor: int) -> Block:
    """Fine-grid block covering a coarse block (in-plane axes scaled by ``factor``)."""
    if block == FULL:
        return FULL
    return (
        block[0],
        slice(block[1].start * factor, block[1].stop * factor),
        slice(block[2].start * factor, block[2].stop * factor),
    )


class ViewRender(NamedTuple):
    """One rendered view: image, healthy twin, lesion label mask (all uint8) and lesion influence.

    ``influence`` is True wherever any lesion has non-zero visible occupancy (after interpolation);
    outside it ``image == healthy`` exactly.
    """

    image: np.ndarray
    healthy: np.ndarray
    mask: np.ndarray
    influence: np.ndarray


def render_view(
    anatomy: Mapping[str, Any],
    lesions: list[dict[str, Any]],
    pose: Mapping[str, Any],
    acq: Mapping[str, Any],
    noise_rng: np.random.Generator,
) -> ViewRender:
    """Render one view of ``acq["shape"]``: image, healthy twin, lesion mask, lesion influence.

    The image and its healthy twin share pose, acquisition, bias field and the Rician noise
    realisation drawn from ``noise_rng``; they differ only where a lesion is painted.
    """
    n_slices, matrix, _ = acq["shape"]
    factor = coarse_factor(matrix)
    grid = _view_grid(acq, pose, factor)
    canvas = _render(grid, anatomy, lesions)
    field_ = _bias_field(acq, grid.shape) * np.float32(acq["gain"])
    sigma = np.float32(acq["noise_sigma"] * acq["gain"])
    shape = (n_slices, matrix, matrix)
    n_re = noise_rng.standard_normal(shape, dtype=np.float32) * sigma
    n_im = noise_rng.standard_normal(shape, dtype=np.float32) * sigma

    def finish(signal: np.ndarray, block: Block = FULL) -> np.ndarray:
        """Signal (coarse ``block``) -> field, upsampling, Rician noise, uint8 (fine block)."""
        full = _upsample(signal[block] * field_[block], factor)
        fine = _fine_block(block, factor)
        magnitude = np.hypot(full + n_re[fine], n_im[fine])
        return np.clip(np.rint(magnitude * np.float32(QUANT_SCALE)), 0, 255).astype(np.uint8)

    healthy = finish(canvas.healthy)
    image = healthy.copy()
    mask = np.zeros(shape, dtype=np.uint8)
    influence = np.zeros(shape, dtype=bool)
    if canvas.visible:
        codes = sorted(canvas.visible)
        coarse_stack = np.stack([canvas.visible[c] for c in codes])
        touched = np.argwhere(np.any(coarse_stack > 0, axis=0))
        if len(touched):
            # lesions are local: redo the lesioned image only around them. Interpolation reaches one
            # coarse pixel, so fine pixels of the bounding box padded by 1 can differ; computing them
            # needs the box padded by 2 (identical arithmetic to a full-volume computation).
            lo, hi = touched.min(axis=0), touched.max(axis=0) + 1
            outer = _pad_block(lo, hi, 2, grid.shape)
            inner = _pad_block(lo, hi, 1, grid.shape)
            keep = tuple(
                slice(i.start - o.start, i.stop - o.start)
                for i, o in zip(_fine_block(inner, factor), _fine_block(outer, factor))
            )
            fine_inner = _fine_block(inner, factor)
            image[fine_inner] = finish(canvas.lesioned, outer)[keep]
            stack = np.stack([_upsample(v[outer], factor)[keep] for v in coarse_stack])
            influence[fine_inner] = np.any(stack > 0, axis=0)
            best = np.argmax(stack, axis=0)
            best_val = np.take_along_axis(stack, best[None], axis=0)[0]
            mask[fine_inner] = np.where(best_val > 0.5, np.asarray(codes, dtype=np.uint8)[best], 0)
    return ViewRender(image, healthy, mask, influence)


@dataclass
class CaseSimulation:
    """Everything drawn and rendered for one case (nothing written to disk)."""

    index: int
    labels: CaseLabels
    anatomy: dict[str, Any]
    pose: dict[str, Any]
    lesions: list[dict[str, Any]]
    acquisitions: dict[str, dict[str, Any]]
    views: dict[str, ViewRender]


def simulate_case(
    index: int,
    *,
    seed: int,
    difficulty: float = 0.5,
    prevalence: Mapping[str, float] = DEFAULT_PREVALENCE,
    slices: tuple[int, int] = (20, 32),
    matrix: int = 256,
) -> CaseSimulation:
    """Draw and render case ``index`` from ``SeedSequence([seed, index])`` alone.

    The sequence spawns four independent streams (labels, anatomy + pose, lesions, acquisition);
    the acquisition stream spawns one per view, split into acquisition parameters and noise, so the
    healthy twin shares every draw but the lesions, and a case never depends on other cases.
    """
    ss = np.random.SeedSequence([int(seed), int(index)])
    label_ss, anatomy_ss, lesion_ss, acq_ss = ss.spawn(4)
    labels = draw_labels(np.random.default_rng(label_ss), prevalence)
    anatomy_rng = np.random.default_rng(anatomy_ss)
    anatomy = _draw_anatomy(anatomy_rng)
    pose = _draw_pose(anatomy_rng)
    lesions = _draw_lesions(np.random.default_rng(lesion_ss), labels, anatomy, float(difficulty))
    acquisitions: dict[str, dict[str, Any]] = {}
    views: dict[str, ViewRender] = {}
    for view, vss in zip(VIEWS, acq_ss.spawn(len(VIEWS))):
        acq_seed, noise_seed = vss.spawn(2)
        acq = _draw_acquisition(np.random.default_rng(acq_seed), view, slices, matrix, float(difficulty))
        acquisitions[view] = acq
        views[view] = render_view(anatomy, lesions, pose, acq, np.random.default_rng(noise_seed))
    for lesion in lesions:
        for key in ("gap_start", "gap_end", "centre"):
            if key in lesion:
                lesion[f"{key}_world"] = knee_to_world(np.asarray(lesion[key]), pose).tolist()
    return CaseSimulation(index, labels, anatomy, pose, lesions, acquisitions, views)


# ----------------------------------------------------------------------------------------------
# cohort
# ----------------------------------------------------------------------------------------------


def case_id(index: int) -> str:
    """MRNet-style 4-digit zero-padded case id."""
    return f"{index:04d}"


_atomic_write_bytes = write_bytes_atomic


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """Save a ``.npy`` atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


@dataclass(frozen=True)
class _CaseJob:
    """Everything one worker needs to generate one case (picklable)."""

    index: int
    split: str
    mrnet_root: str
    truth_root: str
    seed: int
    difficulty: float
    prevalence: tuple[tuple[str, float], ...]
    slices: tuple[int, int]
    matrix: int


def _job_hash(job: _CaseJob) -> str:
    """Hash of everything that determines a case's files (used to skip an up-to-date case)."""
    payload = {
        "version": GENERATOR_VERSION,
        "index": job.index,
        "split": job.split,
        "seed": job.seed,
        "difficulty": job.difficulty,
        "prevalence": list(job.prevalence),
        "slices": list(job.slices),
        "matrix": job.matrix,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _case_paths(job: _CaseJob) -> dict[str, Path]:
    """Every file a case writes."""
    cid = case_id(job.index)
    paths = {"json": Path(job.truth_root) / f"{cid}.json"}
    for view in VIEWS:
        paths[f"image_{view}"] = Path(job.mrnet_root) / job.split / view / f"{cid}.npy"
        paths[f"healthy_{view}"] = Path(job.truth_root) / f"{cid}_{view}_healthy.npy"
        paths[f"lesion_{view}"] = Path(job.truth_root) / f"{cid}_{view}_lesion.npy"
    return paths


def _generate_case(job: _CaseJob) -> dict[str, Any]:
    """Generate (or keep, if up to date) one case's images and truth; return its cohort row."""
    cid = case_id(job.index)
    paths = _case_paths(job)
    digest = _job_hash(job)
    if all(p.exists() for p in paths.values()):
        try:
            meta = json.loads(paths["json"].read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            meta = {}
        if meta.get("parameters_sha256") == digest:
            lab = meta["labels"]
            return {
                "case": cid,
                "split": job.split,
                "abn": lab["abn"],
                "acl": lab["acl"],
                "men": lab["men"],
                "skipped": True,
            }

    sim = simulate_case(
        job.index,
        seed=job.seed,
        difficulty=job.difficulty,
        prevalence=dict(job.prevalence),
        slices=job.slices,
        matrix=job.matrix,
    )
    labels, lesions, pose = sim.labels, sim.lesions, sim.pose
    lesion_voxels: dict[str, dict[str, int]] = {}
    for view in VIEWS:
        rendered = sim.views[view]
        _atomic_save_npy(paths[f"healthy_{view}"], rendered.healthy)
        _atomic_save_npy(paths[f"lesion_{view}"], rendered.mask)
        _atomic_save_npy(paths[f"image_{view}"], rendered.image)
        counts = np.bincount(rendered.mask.ravel(), minlength=6)
        lesion_voxels[view] = {name: int(counts[code]) for name, code in LESION_CODES.items()}
    views_meta = sim.acquisitions
    anatomy = sim.anatomy
    meta = {
        "case": cid,
        "index": job.index,
        "split": job.split,
        "generator": "radpersona.synthetic",
        "generator_version": GENERATOR_VERSION,
        "seed": job.seed,
        "case_seed_sequence_entropy": [job.seed, job.index],
        "difficulty": job.difficulty,
        "prevalence": dict(job.prevalence),
        "labels": {"abn": labels.abn, "acl": labels.acl, "men": labels.men, "other_findings": list(labels.other)},
        "lesions": lesions,
        "lesion_codes": LESION_CODES,
        "lesion_voxels": lesion_voxels,
        "pose": pose,
        "anatomy": anatomy,
        "intensity": INTENSITY,
        "views": views_meta,
        "parameters_sha256": digest,
    }
    _atomic_write_bytes(paths["json"], json.dumps(meta, indent=1).encode())
    return {"case": cid, "split": job.split, "abn": labels.abn, "acl": labels.acl, "men": labels.men, "skipped": False}


def _claim_folder(root: Path, what: str) -> None:
    """Create ``root`` with a marker, refusing a non-empty folder this generator did not write."""
    root.mkdir(parents=True, exist_ok=True)
    marker = root / _MARKER
    if not marker.exists():
        if any(p.name != _MARKER for p in root.iterdir()):
            raise ConfigError(
                f"{what} {str(root)!r} is not empty and was not written by radpersona.synthetic "
                f"(no {_MARKER} marker); refusing to overwrite it"
            )
        _atomic_write_bytes(marker, json.dumps({"generator_version": GENERATOR_VERSION}).encode())


def _remove_stale(mrnet_root: Path, truth_root: Path, keep: Mapping[str, set[str]]) -> int:
    """Delete generated files of cases no longer in the cohort (folders carry our marker)."""
    removed = 0
    for split in ("train", "valid"):
        for view in VIEWS:
            folder = mrnet_root / split / view
            if folder.is_dir():
                for p in folder.iterdir():
                    if _CASE_FILE.match(p.name) and p.stem not in keep[split]:
                        p.unlink()
                        removed += 1
    every = keep["train"] | keep["valid"]
    for p in truth_root.iterdir():
        if _TRUTH_FILE.match(p.name) and p.name[:4] not in every:
            p.unlink()
            removed += 1
    return removed


def generate_cohort(
    mrnet_root: Path,
    truth_root: Path,
    *,
    n_train: int,
    n_valid: int,
    seed: int,
    difficulty: float = 0.5,
    prevalence: Mapping[str, float] = DEFAULT_PREVALENCE,
    slices: tuple[int, int] = (20, 32),
    matrix: int = 256,
    workers: int = 1,
) -> pd.DataFrame:
    """Write a synthetic knee cohort in MRNet v1.0 layout plus its ground truth; return the cohort.

    Layout: ``mrnet_root/{train,valid}/{axial,coronal,sagittal}/NNNN.npy`` (uint8, ``(slices, matrix,
    matrix)``) and ``mrnet_root/{split}-{abnormal,acl,meniscus}.csv`` (no header, ``NNNN,label``);
    train ids are ``0000 .. n_train-1``, valid ids follow. ``truth_root`` holds per case and view
    ``{case}_{view}_healthy.npy`` and ``{case}_{view}_lesion.npy`` (codes in ``LESION_CODES``) and
    ``{case}.json`` (labels, lesions, pose, acquisition, seeds, generator version).

    Each case draws from ``numpy.random.SeedSequence([seed, index])`` only, so it is reproducible on
    its own. Files are written atomically; a case whose files exist with the same parameters is kept
    as is, and generated files of cases outside the cohort are removed (idempotent).

    Args:
        mrnet_root: output dataset folder (created; must be empty or written by this generator).
        truth_root: ground-truth folder (same rule).
        n_train: number of training cases (>= 1).
        n_valid: number of validation cases (>= 0).
        seed: cohort seed.
        difficulty: in [0, 1]; more noise / bias, smaller and fainter lesions as it grows.
        prevalence: P(abn), P(acl), P(men); ``abn >= P(acl or men)``.
        slices: inclusive range of slice counts per case and view.
        matrix: in-plane size (voxels) of every view.
        workers: processes generating cases in parallel (results do not depend on it).

    Returns:
        DataFrame with columns case (str), split, abn, acl, men (int), patient (str).

    Raises:
        ConfigError: an invalid argument, or an output folder holding foreign files.
    """
    if int(n_train) != n_train or n_train < 1:
        raise ConfigError(f"synthetic n_train must be a positive integer, not {n_train!r}")
    if int(n_valid) != n_valid or n_valid < 0:
        raise ConfigError(f"synthetic n_valid must be a non-negative integer, not {n_valid!r}")
    if n_train + n_valid > 10000:
        raise ConfigError(f"synthetic n_train + n_valid must be at most 10000 (4-digit ids), not {n_train + n_valid}")
    if not 0.0 <= float(difficulty) <= 1.0:
        raise ConfigError(f"synthetic difficulty must lie in [0, 1], not {difficulty!r}")
    if len(slices) != 2 or int(slices[0]) < 1 or int(slices[1]) < int(slices[0]):
        raise ConfigError(f"synthetic slices must be (low, high) with 1 <= low <= high, not {slices!r}")
    if int(matrix) != matrix or matrix < 16:
        raise ConfigError(f"synthetic matrix must be an integer >= 16, not {matrix!r}")
    if int(workers) != workers or workers < 1:
        raise ConfigError(f"synthetic workers must be a positive integer, not {workers!r}")
    prev = check_prevalence(prevalence)
    mrnet_root, truth_root = Path(mrnet_root), Path(truth_root)
    _claim_folder(mrnet_root, "synthetic mrnet_root")
    _claim_folder(truth_root, "synthetic truth_root")

    jobs = [
        _CaseJob(
            index=i,
            split="train" if i < n_train else "valid",
            mrnet_root=str(mrnet_root),
            truth_root=str(truth_root),
            seed=int(seed),
            difficulty=float(difficulty),
            prevalence=tuple(sorted(prev.items())),
            slices=(int(slices[0]), int(slices[1])),
            matrix=int(matrix),
        )
        for i in range(n_train + n_valid)
    ]
    bar = Progress("synthetic cohort", total=len(jobs), unit="case")
    rows: list[dict[str, Any]] = []
    if workers == 1:
        for job in jobs:
            rows.append(_generate_case(job))
            bar.update(1)
    else:
        with ProcessPoolExecutor(max_workers=int(workers)) as pool:
            for row in pool.map(_generate_case, jobs, chunksize=1):
                rows.append(row)
                bar.update(1)
    skipped = sum(bool(r.pop("skipped")) for r in rows)
    table = pd.DataFrame(rows, columns=["case", "split", "abn", "acl", "men"])
    table["patient"] = "synthetic-" + table["case"]
    for col in ("abn", "acl", "men"):
        table[col] = table[col].astype("int64")

    for split in ("train", "valid"):
        part = table[table["split"] == split]
        for task, name in MRNET_LABEL_FILES.items():
            text = "".join(f"{c},{v}\n" for c, v in zip(part["case"], part[task]))
            _atomic_write_bytes(mrnet_root / f"{split}-{name}.csv", text.encode())
    removed = _remove_stale(
        mrnet_root,
        truth_root,
        {s: set(table.loc[table["split"] == s, "case"]) for s in ("train", "valid")},
    )
    logger.info(
        "synthetic cohort: %d cases (%d train, %d valid) in %s, %d kept up to date, %d stale files removed",
        len(table),
        n_train,
        n_valid,
        mrnet_root,
        skipped,
        removed,
    )
    return table
