"""The analytic knee: its structures (drawn per case), tissue intensities, and its pose in the scanner.

One knee per case in its own knee frame (mm; x lateral, y anterior, z superior, origin at the joint
centre): femur with two condyles, a metaphysis and a shaft; tibia with a flat plateau tapering into
its shaft; patella; articular cartilage on all three; wedge-shaped C-shaped medial and lateral
menisci; ACL and PCL (oblique capsules crossing the intercondylar notch); patellar tendon; joint fluid
(capsule and suprapatellar recess); fat pads (Hoffa, popliteal, prepatellar, notch); fat and muscle
soft tissue of the leg. Every dimension varies per case by a factor drawn around 1 (see
:func:`draw_anatomy`). :mod:`radpersona.synthetic.render` paints these structures.

A random pose places the knee in the scanner (world) frame: ``p = s R q + t`` with ``R = Rz Ry Rx``
(each angle uniform within +-``MAX_ROTATION_DEG``), ``t`` uniform within +-``MAX_TRANSLATION_MM`` per
axis and ``s`` uniform in ``SCALE_RANGE``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

MAX_ROTATION_DEG = 10.0
"""Largest rotation of the knee about each scanner axis (degrees)."""
MAX_TRANSLATION_MM = 8.0
"""Largest translation of the knee along each scanner axis (mm)."""
SCALE_RANGE = (0.9, 1.1)
"""Range of the knee's isotropic scale."""

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
"""PD-like tissue intensities (before gain, bias and noise), 1.0 ~ brightest fluid: fluid and fat bright,
marrow bright-ish, cartilage intermediate, menisci, ligaments and cortex dark."""


def draw_anatomy(rng: np.random.Generator) -> dict[str, Any]:
    """Draw one knee's anatomy (knee frame, mm): mild per-case variation of every structure.

    Femur, tibia, menisci, patella and leg are scaled by factors uniform in [0.94, 1.06], the ACL's and
    PCL's radius by one in [0.9, 1.1]; femoral cartilage is 1.8-2.6 mm and tibial cartilage 1.6-2.3 mm
    thick, subcutaneous fat 5-11 mm.
    """

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


def rotation_matrix(angles_deg: np.ndarray) -> np.ndarray:
    """Rotation ``Rz @ Ry @ Rx`` from angles (degrees) about x, y, z."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def draw_pose(rng: np.random.Generator) -> dict[str, Any]:
    """Draw the knee's pose in the scanner: rotation, translation (mm) and isotropic scale."""
    angles = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, size=3)
    translation = rng.uniform(-MAX_TRANSLATION_MM, MAX_TRANSLATION_MM, size=3)
    scale = float(rng.uniform(*SCALE_RANGE))
    return {
        "rotation_deg": angles.tolist(),
        "rotation": rotation_matrix(angles).tolist(),
        "translation_mm": translation.tolist(),
        "scale": scale,
    }


def knee_to_world(points: np.ndarray, pose: Mapping[str, Any]) -> np.ndarray:
    """Map knee-frame points ``(..., 3)`` (mm) to world (scanner) coordinates: ``s R q + t``."""
    rot = np.asarray(pose["rotation"], dtype=np.float64)
    return float(pose["scale"]) * np.asarray(points, dtype=np.float64) @ rot.T + np.asarray(pose["translation_mm"])
