"""Pathologies of the synthetic knee: their random geometry (knee frame, mm) and their shapes.

Lesions live in the knee frame, so a lesion shows up in every view whose sampling crosses it.
``difficulty`` d in [0, 1] scales every drawn lesion size by ``size = 1.25 - 0.5 d`` and its
contrast by ``contrast = 1 - 0.6 d``: a lesion is painted as ``I (1 - c o) + c o v`` over the healthy
intensity ``I`` (``o`` its occupancy, ``v`` the lesion's tissue intensity, ``c`` the contrast).

Each lesion is a record (a JSON-serialisable dict, written to the case's truth JSON under
``lesions``) with ``type``, ``code`` (:data:`LESION_CODES`, the value in the truth lesion mask),
``contrast`` and, per type, these keys (lengths in mm, knee frame; ``*_world`` keys, added by
:func:`radpersona.synthetic.simulate_case`, are the same points in the scanner frame):

================ ======================================================================================
type             keys
================ ======================================================================================
acl_tear         ``gap_start``, ``gap_end``: ends of the torn stretch on the ACL's axis; ``gap_mm``:
                 their distance, ``U(5, 8) size``; ``radius_mm``: the fluid gap's radius, 1.3 x the
                 ACL's radius. The gap is a fluid-filled capsule replacing the ligament there.
meniscal_tear    ``side`` (medial 70 % | lateral), ``kind`` (horizontal | radial | longitudinal),
                 ``angle_deg``: tear centre around the meniscus (posterior horn, -130..-50 deg, in 75 %;
                 else anterior, 50..130 deg; -90 deg = posterior); ``half_arc_deg``: ``U(30, 45) size``;
                 ``depth_fraction`` ``U(0.5, 0.8)``, ``radius_fraction`` ``U(0.65, 0.95)``; ``width_mm``:
                 band thickness ``max(1.5, 1.8 size)``; ``r_in_mm``, ``r_out_mm``: the meniscus's inner and
                 outer radius. Horizontal: a band of thickness ``width_mm`` at ``depth_fraction`` of the
                 meniscus height, from the inner edge out to ``r_in + radius_fraction (r_out - r_in)``,
                 over +-``half_arc_deg``. Radial: a cut ``1.5 width_mm`` wide along ``angle_deg`` from the
                 inner edge out to the same radius. Longitudinal: a vertical band of thickness
                 ``width_mm`` at radius ``r_in + depth_fraction (r_out - r_in)`` through the whole height,
                 over +-``half_arc_deg``. Each band has a 0.6 mm edge and is cut to the meniscus.
effusion         ``extent_mm``: ``s = U(0.6, 1.2) size``; the joint recesses distend with fluid: capsule
                 radii + (3, 4, 2.5) s, suprapatellar radii + (5, 7, 9) s (centre moved 2 s anterior and
                 3 s superior), and a posterior recess of radii (22, 3 + 5 s, 6 + 7 s) at (0, -27, 4). The
                 lesion is the fluid beyond the normal capsule and suprapatellar recess.
bone_bruise      ``bone`` (femur | tibia), ``side`` (lateral 65 % | medial), ``centre`` (6-10 mm into the
                 subchondral marrow), ``radii_mm``: three radii ``U(6, 10) size``; ``edge_mm``: ``4 size``,
                 the ill-defined edge; ``wobble``: phases of a +-3 mm sinusoidal perturbation of the
                 distance. Oedema signal, inside marrow only.
cartilage_defect ``bone`` (femur 60 % | tibia), ``side`` (medial 60 % | lateral), ``centre`` on the cartilage
                 surface; ``radius_mm``: ``U(3, 5) size``. A fluid-filled sphere cut to the cartilage.
================ ======================================================================================
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ..vocabulary import LESION_CODES
from .geometry import (
    EDGE_MM,
    Block,
    Grid,
    capsule_bound,
    capsule_sd,
    ellipsoid_bound,
    ellipsoid_sd,
    occupancy,
    wrap_angle,
)
from .labels import CaseLabels

__all__ = ["LESION_CODES", "draw_lesions", "lesion_scales"]


def lesion_scales(difficulty: float) -> tuple[float, float]:
    """(size factor, contrast factor) of lesions at ``difficulty``: ``(1.25 - 0.5 d, 1 - 0.6 d)``."""
    return 1.25 - 0.5 * difficulty, 1.0 - 0.6 * difficulty


def _acl_tear(rng: np.random.Generator, anatomy: Mapping[str, Any], size: float, contrast: float) -> dict[str, Any]:
    acl = anatomy["acl"]
    a, b = np.asarray(acl["a"]), np.asarray(acl["b"])
    length = float(np.linalg.norm(b - a))
    centre_t = float(rng.uniform(0.38, 0.62))
    gap = float(rng.uniform(5.0, 8.0)) * size
    t0, t1 = centre_t - 0.5 * gap / length, centre_t + 0.5 * gap / length
    return {
        "type": "acl_tear",
        "code": LESION_CODES["acl_tear"],
        "gap_start": (a + t0 * (b - a)).tolist(),
        "gap_end": (a + t1 * (b - a)).tolist(),
        "radius_mm": 1.3 * float(acl["radius"]),
        "gap_mm": gap,
        "contrast": contrast,
    }


def _meniscal_tear(
    rng: np.random.Generator, anatomy: Mapping[str, Any], size: float, contrast: float
) -> dict[str, Any]:
    side = "medial" if rng.random() < 0.7 else "lateral"
    kind = str(rng.choice(["horizontal", "radial", "longitudinal"]))
    men = anatomy["menisci"][side]
    # posterior horn most often (angle measured in the xy-plane, -90 deg = posterior)
    angle = float(rng.uniform(-130.0, -50.0) if rng.random() < 0.75 else rng.uniform(50.0, 130.0))
    return {
        "type": "meniscal_tear",
        "code": LESION_CODES["meniscal_tear"],
        "side": side,
        "kind": kind,
        "angle_deg": angle,
        "half_arc_deg": float(rng.uniform(30.0, 45.0)) * size,
        "depth_fraction": float(rng.uniform(0.5, 0.8)),
        "radius_fraction": float(rng.uniform(0.65, 0.95)),
        "width_mm": max(1.5, 1.8 * size),
        "r_in_mm": men["r_in"],
        "r_out_mm": men["r_out"],
        "contrast": contrast,
    }


def _effusion(rng: np.random.Generator, size: float, contrast: float) -> dict[str, Any]:
    s = float(rng.uniform(0.6, 1.2)) * size
    return {"type": "effusion", "code": LESION_CODES["effusion"], "extent_mm": s, "contrast": contrast}


def _bone_bruise(rng: np.random.Generator, anatomy: Mapping[str, Any], size: float, contrast: float) -> dict[str, Any]:
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
    return {
        "type": "bone_bruise",
        "code": LESION_CODES["bone_bruise"],
        "bone": bone,
        "side": side,
        "centre": [float(v) for v in centre],
        "radii_mm": list(radii),
        "edge_mm": 4.0 * size,
        "wobble": [float(v) for v in rng.uniform(0, 2 * math.pi, size=3)],
        "contrast": contrast,
    }


def _cartilage_defect(
    rng: np.random.Generator, anatomy: Mapping[str, Any], size: float, contrast: float
) -> dict[str, Any]:
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
    return {
        "type": "cartilage_defect",
        "code": LESION_CODES["cartilage_defect"],
        "bone": bone,
        "side": side,
        "centre": [float(v) for v in centre],
        "radius_mm": radius,
        "contrast": contrast,
    }


def draw_lesions(
    rng: np.random.Generator, labels: CaseLabels, anatomy: Mapping[str, Any], difficulty: float
) -> list[dict[str, Any]]:
    """Draw the record of every finding of a case (knee frame); an empty list for a normal case.

    Order of the draws: ACL tear, meniscal tear, then the other findings in ``labels.other`` order.
    """
    size, contrast = lesion_scales(difficulty)
    lesions: list[dict[str, Any]] = []
    if labels.acl:
        lesions.append(_acl_tear(rng, anatomy, size, contrast))
    if labels.men:
        lesions.append(_meniscal_tear(rng, anatomy, size, contrast))
    for name in labels.other:
        if name == "effusion":
            lesions.append(_effusion(rng, size, contrast))
        elif name == "bone_bruise":
            lesions.append(_bone_bruise(rng, anatomy, size, contrast))
        elif name == "cartilage_defect":
            lesions.append(_cartilage_defect(rng, anatomy, size, contrast))
    return lesions


# ----------------------------------------------------------------------------------------------
# shapes: each returns the lesion's occupancy (before its cut to the host tissue, which the
# renderer applies) on a block of the evaluation grid
# ----------------------------------------------------------------------------------------------


def effusion_occupancy(
    grid: Grid, lesion: Mapping[str, Any], fluid: Mapping[str, Any]
) -> tuple[np.ndarray, Block] | None:
    """Extra fluid of an effusion (distended recesses minus the normal ones) and its block; None off-grid."""
    cap, sup = fluid["capsule"], fluid["suprapatellar"]
    s = lesion["extent_mm"]
    shapes = [
        (cap["c"], (cap["r"][0] + 3 * s, cap["r"][1] + 4 * s, cap["r"][2] + 2.5 * s)),
        (
            (sup["c"][0], sup["c"][1] + 2 * s, sup["c"][2] + 3 * s),
            (sup["r"][0] + 5 * s, sup["r"][1] + 7 * s, sup["r"][2] + 9 * s),
        ),
        ((0.0, -27.0, 4.0), (22.0, 3.0 + 5 * s, 6.0 + 7 * s)),
    ]
    block = grid.block(*(ellipsoid_bound(c, r) for c, r in shapes))
    if block is None:
        return None
    x, y, z = grid.at(block)
    eff_sd = np.minimum.reduce([ellipsoid_sd(x, y, z, c, r) for c, r in shapes])
    normal_sd = np.minimum(ellipsoid_sd(x, y, z, cap["c"], cap["r"]), ellipsoid_sd(x, y, z, sup["c"], sup["r"]))
    return np.clip(occupancy(eff_sd) - occupancy(normal_sd), 0.0, 1.0), block


def defect_occupancy(lesion: Mapping[str, Any], x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Occupancy of a cartilage defect's sphere at the points ``x, y, z``."""
    f32 = np.float32
    c = lesion["centre"]
    return occupancy(
        np.sqrt((x - f32(c[0])) ** 2 + (y - f32(c[1])) ** 2 + (z - f32(c[2])) ** 2) - f32(lesion["radius_mm"])
    )


def defect_block(grid: Grid, lesion: Mapping[str, Any]) -> Block | None:
    """Block of a (femoral) cartilage defect's sphere."""
    return grid.block((lesion["centre"], lesion["radius_mm"] + EDGE_MM))


def bruise_occupancy(grid: Grid, lesion: Mapping[str, Any]) -> tuple[np.ndarray, Block] | None:
    """Occupancy of a bone bruise (wobbly ellipsoid, soft edge ``edge_mm``) and its block; None off-grid."""
    f32 = np.float32
    c, r, w, edge = lesion["centre"], lesion["radii_mm"], lesion["wobble"], lesion["edge_mm"]
    # the wobble shifts the distance by at most 3 mm
    block = grid.block((c, max(r) + (0.5 * edge + 3.0) * max(r) / min(r) + 1.0))
    if block is None:
        return None
    x, y, z = grid.at(block)
    sd = ellipsoid_sd(x, y, z, c, r)
    sd = sd + f32(1.5) * (
        np.sin(x * f32(0.35) + f32(w[0])) * np.sin(y * f32(0.3) + f32(w[1])) + np.sin(z * f32(0.4) + f32(w[2]))
    )
    return occupancy(sd, edge), block


class MeniscusFrame(NamedTuple):
    """Cylindrical coordinates of one meniscus's block (about its centre) and its height profile."""

    dx: np.ndarray
    dy: np.ndarray
    rho: np.ndarray
    theta: np.ndarray
    z: np.ndarray
    z_bottom: np.float32
    top: np.ndarray
    r_in: float
    width: float


def meniscal_tear_band(lesion: Mapping[str, Any], frame: MeniscusFrame) -> np.ndarray:
    """Signed distance of a meniscal tear's band (see the module docstring for the three kinds)."""
    f32 = np.float32
    ang = math.radians(lesion["angle_deg"])
    dang = wrap_angle(frame.theta - f32(ang))
    half_w = f32(lesion["width_mm"] / 2.0)
    reach = f32(frame.r_in + lesion["radius_fraction"] * frame.width)
    rho = frame.rho
    if lesion["kind"] == "horizontal":
        zmid = frame.z_bottom + f32(lesion["depth_fraction"]) * (frame.top - frame.z_bottom)
        return np.maximum.reduce(
            [np.abs(frame.z - zmid) - half_w, rho - reach, (dang - f32(math.radians(lesion["half_arc_deg"]))) * rho]
        )
    if lesion["kind"] == "radial":
        perp = np.abs(f32(-math.sin(ang)) * frame.dx + f32(math.cos(ang)) * frame.dy)
        along = f32(math.cos(ang)) * frame.dx + f32(math.sin(ang)) * frame.dy
        parts: list[np.ndarray] = [perp - f32(1.5) * half_w, rho - reach, -along]
        return np.maximum.reduce(parts)
    # vertical longitudinal: a cylindrical band at constant radius reaching both surfaces
    r0 = f32(frame.r_in + lesion["depth_fraction"] * frame.width)
    return np.maximum(np.abs(rho - r0) - half_w, (dang - f32(math.radians(lesion["half_arc_deg"]))) * rho)


def acl_gap_occupancy(grid: Grid, lesion: Mapping[str, Any]) -> tuple[np.ndarray, Block] | None:
    """Occupancy of an ACL tear's fluid gap (a capsule) and its block; None off-grid."""
    block = grid.block(capsule_bound(lesion["gap_start"], lesion["gap_end"], lesion["radius_mm"]))
    if block is None:
        return None
    return occupancy(capsule_sd(*grid.at(block), lesion["gap_start"], lesion["gap_end"], lesion["radius_mm"])), block
