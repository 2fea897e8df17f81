"""Painting the knee and its lesions on a view's evaluation grid (painter's algorithm).

Tissues are composited in anatomical order, each over what is already painted: ``I <- I (1 - o) +
o v`` with ``o`` the tissue's occupancy and ``v`` its intensity (:data:`INTENSITY`). The order is:
soft tissue (leg fat, muscle, fat pads), joint fluid (+ effusion), tibia (cartilage + defects,
cortex, marrow + bruises), femur (the same), patella, menisci (+ tears), ligaments and patellar
tendon (+ ACL tear). A lesion is painted, at its contrast, right after its host tissue, so that the
tissues painted later cover it as they cover that tissue.

Two images are painted at once: the healthy one and the lesioned one (identical where no lesion is
painted), and per lesion code its *visible* occupancy (painted occupancy, reduced by everything
painted over it), from which the lesion mask is made.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .anatomy import INTENSITY
from .geometry import (
    FULL,
    Block,
    Grid,
    capsule_bound,
    capsule_sd,
    ellipse2d_sd,
    ellipsoid_bound,
    ellipsoid_sd,
    occupancy,
    smooth_min,
    wrap_angle,
)
from .lesions import (
    MeniscusFrame,
    acl_gap_occupancy,
    bruise_occupancy,
    defect_block,
    defect_occupancy,
    effusion_occupancy,
    meniscal_tear_band,
)

Lesions = Sequence[Mapping[str, Any]]
f32 = np.float32


class Canvas:
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


def _paint_ellipsoid(canvas: Canvas, grid: Grid, c: Any, r: Any, value: float) -> None:
    block = grid.block(ellipsoid_bound(c, r))
    if block is not None:
        canvas.paint(occupancy(ellipsoid_sd(*grid.at(block), c, r)), value, block)


def paint_soft_tissue(canvas: Canvas, grid: Grid, anatomy: Mapping[str, Any]) -> None:
    """The leg (fat, then muscle inside the subcutaneous fat layer) and the fat pads."""
    rx, ry = anatomy["leg_radii"]
    canvas.paint(occupancy(ellipse2d_sd(grid.x, grid.y, (0.0, -6.0), rx, ry)), INTENSITY["fat"])
    fat = anatomy["fat_mm"]
    canvas.paint(occupancy(ellipse2d_sd(grid.x, grid.y, (0.0, -6.0), rx - fat, ry - fat)), INTENSITY["muscle"])
    for pad in anatomy["fat_pads"].values():
        _paint_ellipsoid(canvas, grid, pad["c"], pad["r"], INTENSITY["fat"])


def paint_joint_fluid(canvas: Canvas, grid: Grid, fluid: Mapping[str, Any], effusions: Lesions) -> None:
    """The normal joint fluid (capsule, suprapatellar recess), then effusions: the extra fluid over it."""
    cap, sup = fluid["capsule"], fluid["suprapatellar"]
    _paint_ellipsoid(canvas, grid, cap["c"], cap["r"], INTENSITY["fluid"])
    _paint_ellipsoid(canvas, grid, sup["c"], sup["r"], INTENSITY["fluid"])
    for lesion in effusions:
        painted = effusion_occupancy(grid, lesion, fluid)
        if painted is not None:
            extra, block = painted
            canvas.paint_lesion(lesion["code"], extra, INTENSITY["fluid"], lesion["contrast"], block)


def _paint_bruise(canvas: Canvas, grid: Grid, lesion: Mapping[str, Any], marrow: np.ndarray) -> None:
    """A bone bruise: oedema inside the marrow."""
    painted = bruise_occupancy(grid, lesion)
    if painted is not None:
        occ, block = painted
        canvas.paint_lesion(lesion["code"], occ * marrow[block], INTENSITY["oedema"], lesion["contrast"], block)


def paint_tibia(canvas: Canvas, grid: Grid, tibia: Mapping[str, Any], defects: Lesions, bruises: Lesions) -> None:
    """Tibia: plateau cartilage (+ defects, cut to cartilage outside bone), cortex, marrow (+ bruises).

    The tibial head is an elliptic cylinder below the plateau tapering with depth (radii times
    ``1 - 0.45 min(1, depth / 35 mm)^2``), smoothly united (5 mm) with the shaft; the cortex is its
    outer 1.2 mm; the cartilage a slab of the plateau's thickness over the head, inset 4 mm, with the
    notch (|x| < 7 mm) left free.
    """
    x, y, z = grid.x, grid.y, grid.z
    pz = f32(tibia["plateau_z"])
    depth = np.clip((pz - z) / f32(35.0), 0.0, 1.0)
    taper = f32(1.0) - f32(0.45) * depth * depth
    trx, try_ = tibia["radii"]
    head_sd = np.maximum(ellipse2d_sd(x, y, tibia["centre"], trx * taper, try_ * taper), z - pz)
    shaft = tibia["shaft"]
    tibia_sd = smooth_min(head_sd, capsule_sd(x, y, z, shaft["a"], shaft["b"], shaft["radius"]), 5.0)
    tc = tibia["cartilage_mm"]
    tcart_block = grid.block(((tibia["centre"][0], tibia["centre"][1], tibia["plateau_z"]), max(trx, try_) + tc + 2.0))
    tibia_occ = occupancy(tibia_sd)
    if tcart_block is not None:
        xb, yb, zb = grid.at(tcart_block)
        tcart_sd = np.maximum.reduce(
            [
                ellipse2d_sd(xb, yb, tibia["centre"], trx - 4.0, try_ - 4.0),
                zb - (pz + f32(tc)),
                (pz - f32(0.5)) - zb,
                f32(7.0) - np.abs(xb),
            ]
        )
        tcart_occ = occupancy(tcart_sd)
        canvas.paint(tcart_occ, INTENSITY["cartilage"], tcart_block)
        for lesion in defects:
            d = defect_occupancy(lesion, xb, yb, zb)
            canvas.paint_lesion(
                lesion["code"],
                d * tcart_occ * (1 - tibia_occ[tcart_block]),
                INTENSITY["fluid"],
                lesion["contrast"],
                tcart_block,
            )
    canvas.paint(tibia_occ, INTENSITY["cortex"])
    marrow = occupancy(tibia_sd + f32(1.2))
    canvas.paint(marrow, INTENSITY["marrow"])
    for lesion in bruises:
        _paint_bruise(canvas, grid, lesion, marrow)


def paint_femur(canvas: Canvas, grid: Grid, femur: Mapping[str, Any], defects: Lesions, bruises: Lesions) -> np.ndarray:
    """Femur: cartilage (+ defects), cortex, marrow (+ bruises); returns the cartilage surface's distance.

    The bone is the union of the two condyles, smoothly united (6 mm) with the metaphysis and the shaft.
    Cartilage covers the condyles below 4 mm above the higher condyle centre (condyles dilated by the
    cartilage thickness) and the trochlea (the dilated metaphysis in front of y = 12 mm and below
    z = 45 mm). The returned distance to the dilated condyles bounds the menisci from above.
    """
    x, y, z = grid.x, grid.y, grid.z
    med, lat = femur["medial_condyle"], femur["lateral_condyle"]
    med_sd = ellipsoid_sd(x, y, z, med["c"], med["r"])
    lat_sd = ellipsoid_sd(x, y, z, lat["c"], lat["r"])
    meta = femur["metaphysis"]
    meta_sd = ellipsoid_sd(x, y, z, meta["c"], meta["r"])
    shaft = femur["shaft"]
    femur_sd = smooth_min(
        smooth_min(np.minimum(med_sd, lat_sd), meta_sd, 6.0),
        capsule_sd(x, y, z, shaft["a"], shaft["b"], shaft["radius"]),
        6.0,
    )
    t = femur["cartilage_mm"]
    cond_dil_sd = np.minimum(
        ellipsoid_sd(x, y, z, med["c"], tuple(v + t for v in med["r"])),
        ellipsoid_sd(x, y, z, lat["c"], tuple(v + t for v in lat["r"])),
    )
    troch_sd = np.maximum.reduce(
        [ellipsoid_sd(x, y, z, meta["c"], tuple(v + t for v in meta["r"])), f32(12.0) - y, z - f32(45.0)]
    )
    fcart_sd = np.minimum(np.maximum(cond_dil_sd, z - f32(max(med["c"][2], lat["c"][2]) + 4.0)), troch_sd)
    fcart_occ = occupancy(fcart_sd)
    canvas.paint(fcart_occ, INTENSITY["cartilage"])
    femur_occ = occupancy(femur_sd)
    for lesion in defects:
        block = defect_block(grid, lesion)
        if block is None:
            continue
        d = defect_occupancy(lesion, *grid.at(block))
        canvas.paint_lesion(
            lesion["code"], d * fcart_occ[block] * (1 - femur_occ[block]), INTENSITY["fluid"], lesion["contrast"], block
        )
    canvas.paint(femur_occ, INTENSITY["cortex"])
    marrow = occupancy(femur_sd + f32(1.2))
    canvas.paint(marrow, INTENSITY["marrow"])
    for lesion in bruises:
        _paint_bruise(canvas, grid, lesion, marrow)
    return cond_dil_sd


def paint_patella(canvas: Canvas, grid: Grid, patella: Mapping[str, Any]) -> None:
    """Patella: posterior cartilage (the dilated ellipsoid behind its centre - 2 mm), cortex, marrow."""
    pat_dil = tuple(v + patella["cartilage_mm"] for v in patella["r"])
    block = grid.block(ellipsoid_bound(patella["c"], pat_dil))
    if block is None:
        return
    x, y, z = grid.at(block)
    pcart_sd = np.maximum(ellipsoid_sd(x, y, z, patella["c"], pat_dil), y - f32(patella["c"][1] - 2.0))
    canvas.paint(occupancy(pcart_sd), INTENSITY["cartilage"], block)
    pat_sd = ellipsoid_sd(x, y, z, patella["c"], patella["r"])
    canvas.paint(occupancy(pat_sd), INTENSITY["cortex"], block)
    canvas.paint(occupancy(pat_sd + f32(1.2)), INTENSITY["marrow"], block)


def paint_menisci(
    canvas: Canvas, grid: Grid, menisci: Mapping[str, Any], femoral_cartilage_sd: np.ndarray, tears: Lesions
) -> None:
    """Menisci (+ tears): C-shaped wedges on the tibial cartilage, outside the femoral cartilage surface.

    Each meniscus lies between radii ``r_in`` and ``r_out`` about its centre, on the tibial cartilage
    (``z_bottom``), under a top that rises linearly from ``z_bottom`` at ``r_in`` to ``z_bottom + height``
    at ``r_out`` (a wedge), and is open over ``open_deg`` towards the notch.
    """
    zb = f32(menisci["z_bottom"])
    for side in ("medial", "lateral"):
        m = menisci[side]
        block = grid.block(
            (
                (m["c"][0], m["c"][1], menisci["z_bottom"] + m["height"] / 2),
                math.hypot(m["r_out"] + 1.5, m["height"] / 2 + 1.5),
            )
        )
        if block is None:
            continue
        x, y, z = grid.at(block)
        dx, dy = x - f32(m["c"][0]), y - f32(m["c"][1])
        rho = np.sqrt(dx * dx + dy * dy)
        theta = np.arctan2(dy, dx)
        width = m["r_out"] - m["r_in"]
        slope = m["height"] / width
        top = zb + f32(m["height"]) * np.clip((rho - f32(m["r_in"])) / f32(width), 0.0, 1.0)
        dtheta = wrap_angle(theta - f32(math.radians(m["notch_angle_deg"])))
        men_sd = np.maximum.reduce(
            [
                f32(m["r_in"]) - rho,
                rho - f32(m["r_out"]),
                zb - z,
                (z - top) / f32(math.sqrt(1.0 + slope * slope)),
                (f32(math.radians(m["open_deg"])) - dtheta) * rho,
                -femoral_cartilage_sd[block],
            ]
        )
        men_occ = occupancy(men_sd)
        canvas.paint(men_occ, INTENSITY["meniscus"], block)
        frame = MeniscusFrame(dx, dy, rho, theta, z, zb, top, m["r_in"], width)
        for lesion in tears:
            if lesion["side"] != side:
                continue
            band = meniscal_tear_band(lesion, frame)
            canvas.paint_lesion(
                lesion["code"], occupancy(band, 0.6) * men_occ, INTENSITY["fluid"], lesion["contrast"], block
            )


def paint_ligaments(canvas: Canvas, grid: Grid, anatomy: Mapping[str, Any], acl_tears: Lesions) -> None:
    """PCL, ACL and patellar tendon (capsules), then ACL tears: fluid gaps in the ACL."""
    for name, value in (
        ("pcl", INTENSITY["ligament"]),
        ("acl", INTENSITY["ligament"]),
        ("patellar_tendon", INTENSITY["tendon"]),
    ):
        lig = anatomy[name]
        block = grid.block(capsule_bound(lig["a"], lig["b"], lig["radius"]))
        if block is not None:
            canvas.paint(occupancy(capsule_sd(*grid.at(block), lig["a"], lig["b"], lig["radius"])), value, block)
    for lesion in acl_tears:
        painted = acl_gap_occupancy(grid, lesion)
        if painted is not None:
            gap, block = painted
            canvas.paint_lesion(lesion["code"], gap, INTENSITY["fluid"], lesion["contrast"], block)


def render_knee(grid: Grid, anatomy: Mapping[str, Any], lesions: Lesions) -> Canvas:
    """Evaluate the knee (and its lesions) on ``grid``; return the composited canvas.

    Local structures are evaluated only inside the index-space bounding box of a sphere that
    encloses their non-zero occupancy.
    """
    canvas = Canvas(grid.shape, with_lesions=bool(lesions))

    def of(kind: str, bone: str | None = None) -> list[Mapping[str, Any]]:
        return [les for les in lesions if les["type"] == kind and (bone is None or les["bone"] == bone)]

    paint_soft_tissue(canvas, grid, anatomy)
    paint_joint_fluid(canvas, grid, anatomy["fluid"], of("effusion"))
    paint_tibia(canvas, grid, anatomy["tibia"], of("cartilage_defect", "tibia"), of("bone_bruise", "tibia"))
    femoral_cartilage_sd = paint_femur(
        canvas, grid, anatomy["femur"], of("cartilage_defect", "femur"), of("bone_bruise", "femur")
    )
    paint_patella(canvas, grid, anatomy["patella"])
    paint_menisci(canvas, grid, anatomy["menisci"], femoral_cartilage_sd, of("meniscal_tear"))
    paint_ligaments(canvas, grid, anatomy, of("acl_tear"))
    return canvas
