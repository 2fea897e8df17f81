"""At which working resolution does each synthetic lesion survive? (issue #14, items 2-3)

Simulates a synthetic cohort in memory (:func:`radpersona.synthetic.simulate_case`, nothing written),
with ACL and meniscal tears frequent, and measures with :mod:`radpersona.audit`, per lesion type and
view, at the raw resolution and after preprocessing to each candidate ``preprocess.shape`` (linear
interpolation, percentile normalisation as in ``config.yaml``), optionally after a centre crop of the
in-plane field of view (a hypothetical, not a pipeline option):

- lesion size: stated by the generator (mm), partial-volume equivalent diameter and inscribed
  thickness (mm), lesion voxels (fraction >= ``LESION_FRACTION``);
- lesion-vs-healthy CNR: raw noise estimated on the raw healthy counterpart, carried to each grid
  through the resampling and normalisation scale (validated against the exact noise, which the
  noise-free rendering of the healthy knee gives);
- the share of the lesion inside the persona box and the grid-2 / grid-3 patches holding it (after a
  crop also inside the "scaled" box, whose in-plane fractions are divided by the crop so that it
  covers the same physical region as the configured box on the whole field of view);
- survival (:mod:`radpersona.audit.survival`: >= 4 lesion voxels and ``|CNR| >= 1`` in some view, for
  >= 90 % of the lesion cases), per task (abn: any lesion, acl: ACL tear, men: meniscal tear), and the
  smallest candidate shape at which it holds;
- optionally, for acl and men at a few shapes, the oracle ceiling of patch first-order radiomics
  (:func:`radpersona.audit.oracle_patch_auc`, one column of the modal lesion patch, and one feature
  max-pooled over the patches holding >= 10 % of the training lesions) on the original image and on
  ideal residuals: image
  minus the true healthy counterpart (shares the noise: the lesion alone) and image minus the
  noise-free healthy knee (the best any persona can do: lesion plus noise); and the whole-volume
  first-order floor on the raw volumes.

Prints one JSON object. Usage::

    PYTHONPATH=$PWD python benchmarks/lesion_survival.py --n-cases 60 \
        --oracle-shapes 16x48x48 24x80x80 32x96x96 32x128x128 \
        --out benchmarks/out/lesion_survival.json --rows benchmarks/out/lesion_survival_rows.csv

About 10 minutes of one CPU core for 60 cases (``seconds`` in the JSON is wall time).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radpersona import VIEWS
from radpersona.audit import (
    MIN_CASE_SHARE,
    box_share,
    case_survival,
    centre_crop,
    cohort_survival,
    first_order_floor,
    first_order_table,
    lesion_cnr,
    lesion_fraction_array,
    lesion_size,
    noise_sd,
    oracle_patch_auc,
    preprocess_with_counterparts,
    propagated_noise_sd,
)
from radpersona.features import patch_grid, resolve_bin_width, tissue_threshold
from radpersona.persona.masks import box_slices
from radpersona.preprocess import resize
from radpersona.settings import PreprocessSettings
from radpersona.synthetic import LESION_CODES, QUANT_SCALE, render_view, simulate_case

SHAPES = ("16x48x48", "24x64x64", "32x64x64", "24x80x80", "32x96x96", "32x128x128")
#: lesion units: the five lesion types, and "any" (the abn task's lesion: every code)
UNITS: dict[str, tuple[int, ...]] = {**{name: (code,) for name, code in LESION_CODES.items()}, "any": (1, 2, 3, 4, 5)}
TASK_UNITS = {"abn": "any", "acl": "acl_tear", "men": "meniscal_tear"}
ORACLE_IMAGES = ("original", "residual_counterpart", "residual_clean")


def parse_shape(text: str) -> tuple[int, int, int]:
    """``"32x128x128"`` -> ``(32, 128, 128)``."""
    parts = [int(p) for p in text.lower().split("x")]
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"a shape is SxRxC with positive integers, not {text!r}")
    return (parts[0], parts[1], parts[2])


def shape_name(shape: tuple[int, ...]) -> str:
    """``(32, 128, 128)`` -> ``"32x128x128"``."""
    return "x".join(str(int(s)) for s in shape)


def stated_size_mm(lesion: dict[str, Any], scale: float) -> dict[str, float]:
    """The generator's own size parameters of a lesion, in world mm (times the pose's scale)."""
    kind = lesion["type"]
    if kind == "acl_tear":
        return {"gap_mm": scale * lesion["gap_mm"], "diameter_mm": scale * 2 * lesion["radius_mm"]}
    if kind == "meniscal_tear":
        arc = math.radians(2 * lesion["half_arc_deg"]) * 0.5 * (lesion["r_in_mm"] + lesion["r_out_mm"])
        return {"band_width_mm": scale * lesion["width_mm"], "arc_length_mm": scale * arc}
    if kind == "bone_bruise":
        return {"diameter_mm": scale * 2 * float(np.mean(lesion["radii_mm"])), "edge_mm": scale * lesion["edge_mm"]}
    if kind == "cartilage_defect":
        return {"diameter_mm": scale * 2 * lesion["radius_mm"]}
    if kind == "effusion":
        return {"distension_mm": scale * 3 * lesion["extent_mm"]}  # the capsule grows by 2.5-9 x extent mm
    return {}


def scaled_box(box: tuple[float, ...], crop: float) -> tuple[float, float, float]:
    """The persona box fractions that cover the same physical region after an in-plane crop of ``crop``."""
    return (box[0], min(1.0, box[1] / crop), min(1.0, box[2] / crop))


def true_noise_sd(noisy: np.ndarray, clean: np.ndarray) -> float:
    """Exact noise sd of a stage: sd of (noisy - clean) over unclipped tissue voxels of the clean image."""
    lo, hi = float(noisy.min()), float(noisy.max())
    use = (clean > tissue_threshold(clean, "original")) & (noisy > lo) & (noisy < hi)
    return float((noisy - clean)[use].std())


def patch_first_order(
    volumes: dict[str, dict[str, np.ndarray]], spacing: dict[str, tuple[float, float, float]], box, grid, bin_width
) -> dict[str, float]:
    """First-order features of every patch of every view and image: ``{wide column: value}``."""
    from radpersona.radiomics import extract_features

    out: dict[str, float] = {}
    for view, images in volumes.items():
        patches = patch_grid(box_slices(next(iter(images.values())).shape, box), grid)
        for image, volume in images.items():
            arrays = [volume[sl] for _, sl in patches]
            masks = [np.ones(a.shape, dtype=np.uint8) for a in arrays]
            feats = extract_features(
                arrays, masks, spacing=spacing[view], families=("firstorder",), bin_width=bin_width
            )
            for (ijk, _), (_, row) in zip(patches, feats.iterrows()):
                token = "p" + "".join(str(c) for c in ijk)
                for col, value in row.items():
                    family, name = str(col).split("_", 1)
                    out[f"{view}.{image}.{token}.{family}.{name}"] = float(value)
    return out


def quantiles(values: pd.Series, digits: int = 2) -> dict[str, float | None]:
    """Median and 10th percentile (None when empty)."""
    v = pd.to_numeric(values, errors="coerce").dropna()
    if v.empty:
        return {"median": None, "p10": None}
    return {"median": round(float(v.median()), digits), "p10": round(float(v.quantile(0.1)), digits)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-cases", type=int, default=60)
    parser.add_argument("--n-train", type=int, default=40, help="first cases are training cases (oracle, floor)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--difficulty", type=float, default=0.5)
    parser.add_argument("--matrix", type=int, default=256)
    parser.add_argument("--prevalence", type=float, nargs=3, default=(0.9, 0.5, 0.5), metavar=("ABN", "ACL", "MEN"))
    parser.add_argument("--shapes", type=parse_shape, nargs="+", default=[parse_shape(s) for s in SHAPES])
    parser.add_argument("--crops", type=float, nargs="+", default=(1.0, 0.75, 0.6))
    parser.add_argument("--box", type=float, nargs=3, default=(0.5, 0.3, 0.5))
    parser.add_argument(
        "--oracle-shapes", type=parse_shape, nargs="*", default=[parse_shape(s) for s in ("24x80x80", "32x128x128")]
    )
    parser.add_argument("--oracle-grid", type=int, default=2)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--rows", type=Path, default=None, help="write the per case/view/stage rows (CSV) here")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    start = time.perf_counter()
    prevalence = dict(zip(("abn", "acl", "men"), args.prevalence))
    box = tuple(args.box)
    shapes = [tuple(s) for s in args.shapes]
    # the pipeline's preprocess settings at each candidate shape (linear, percentile as in config.yaml)
    settings = {
        shape: PreprocessSettings.from_config(
            {"shape": list(shape), "interpolation": "linear", "normalisation": "percentile", "percentiles": [0.5, 99.5]}
        )
        for shape in shapes
    }
    oracle_shapes = {tuple(s) for s in args.oracle_shapes}
    bin_width = resolve_bin_width("auto", "percentile")
    rows: list[dict[str, Any]] = []
    noise_rows: list[dict[str, Any]] = []
    stated: dict[str, list[dict[str, float]]] = defaultdict(list)
    labels: dict[str, dict[str, int]] = {}
    raw_volumes: dict[str, dict[str, np.ndarray]] = {}
    oracle_features: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)  # shape -> case -> column -> value
    oracle_main: dict[str, dict[str, dict[str, dict[str, Any]]]] = defaultdict(lambda: defaultdict(dict))
    gains: dict[tuple[tuple[int, ...], tuple[int, ...]], float] = {}

    for index in range(args.n_cases):
        case = f"{index:04d}"
        sim = simulate_case(
            index, seed=args.seed, difficulty=args.difficulty, prevalence=prevalence, matrix=args.matrix
        )
        labels[case] = {"abn": sim.labels.abn, "acl": sim.labels.acl, "men": sim.labels.men}
        present = sorted({les["type"] for les in sim.lesions})
        for les in sim.lesions:
            stated[les["type"]].append(stated_size_mm(les, float(sim.pose["scale"])))
        units = present + (["any"] if present else [])
        raw_volumes[case] = {}
        oracle_volumes: dict[str, dict[str, dict[str, np.ndarray]]] = defaultdict(dict)
        oracle_spacing: dict[str, dict[str, tuple[float, float, float]]] = defaultdict(dict)
        for view in VIEWS:
            render, acq = sim.views[view], sim.acquisitions[view]
            spacing = (float(acq["slice_spacing_mm"]), float(acq["pixel_spacing_mm"]), float(acq["pixel_spacing_mm"]))
            image, healthy, mask = render.image.astype(np.float32), render.healthy.astype(np.float32), render.mask
            raw_volumes[case][view] = render.image
            clean = render_view(
                sim.anatomy, [], sim.pose, {**acq, "noise_sigma": 0.0}, np.random.default_rng(0)
            ).healthy.astype(np.float32)
            sigma_raw = noise_sd(healthy, case=case, view=view)
            noise_rows.append(
                {
                    "case": case,
                    "view": view,
                    "stage": "raw",
                    "estimate_over_known": sigma_raw / (acq["noise_sigma"] * acq["gain"] * QUANT_SCALE),
                    "estimate_over_true": sigma_raw / true_noise_sd(healthy, clean),
                }
            )
            for unit in units:
                frac = lesion_fraction_array(mask, UNITS[unit], mask.shape, case=case, view=view)
                size = lesion_size(frac, spacing, case=case, view=view)
                cnr = lesion_cnr(image, healthy, frac, noise=sigma_raw, case=case, view=view)
                share = box_share(frac, box, case=case, view=view)
                row = _row(unit, case, view, 1.0, "raw", size, cnr, share, 1.0, labels[case], mask.shape, spacing)
                row["box_share_scaled"] = share.share
                row["n_box_voxels_scaled"] = share.n_voxels_in_box
                rows.append(row)
            for crop in args.crops:
                arrays = [centre_crop(a, crop) for a in (image, healthy, mask, clean)]
                img_c, hea_c, mask_c, clean_c = arrays
                for shape in shapes:
                    name = shape_name(shape)
                    pre = preprocess_with_counterparts(
                        img_c,
                        [hea_c, clean_c] if crop == 1.0 else [hea_c],
                        settings[shape],
                        spacing=spacing,
                        case=case,
                        view=view,
                    )
                    hea_pre, clean_pre = pre.counterparts[0], pre.counterparts[-1]
                    key = (img_c.shape, shape)
                    if key not in gains:
                        gains[key] = propagated_noise_sd(
                            1.0, lambda z, s=shape: resize(z, (1.0, 1.0, 1.0), s, "linear")[0], img_c.shape
                        )
                    sigma = sigma_raw * gains[key] * pre.scale
                    if crop == 1.0:
                        exact = true_noise_sd(hea_pre, clean_pre)
                        noise_rows.append(
                            {
                                "case": case,
                                "view": view,
                                "stage": name,
                                "propagated_over_true": sigma / exact,
                                "direct_over_true": noise_sd(hea_pre, case=case, view=view) / exact,
                            }
                        )
                    for unit in units:
                        frac = lesion_fraction_array(mask_c, UNITS[unit], shape, case=case, view=view)
                        size = lesion_size(frac, pre.spacing, case=case, view=view)
                        cnr = lesion_cnr(pre.image, hea_pre, frac, noise=sigma, case=case, view=view)
                        share = box_share(frac, box, case=case, view=view)
                        scaled = box_share(frac, scaled_box(box, crop), grids=(), case=case, view=view)
                        total = np.isin(mask, UNITS[unit]).sum()
                        retained = float(np.isin(mask_c, UNITS[unit]).sum() / total) if total else float("nan")
                        row = _row(
                            unit, case, view, crop, name, size, cnr, share, retained, labels[case], shape, pre.spacing
                        )
                        row["box_share_scaled"] = scaled.share
                        row["n_box_voxels_scaled"] = scaled.n_voxels_in_box
                        rows.append(row)
                        if crop == 1.0 and shape in oracle_shapes and unit in ("acl_tear", "meniscal_tear"):
                            oracle_main[name][unit].setdefault(case, {})[view] = share.main_patch[args.oracle_grid]
                    if crop == 1.0 and shape in oracle_shapes:
                        oracle_volumes[name][view] = {
                            "original": pre.image,
                            "residual_counterpart": pre.image - hea_pre,
                            "residual_clean": pre.image - clean_pre,
                        }
                        oracle_spacing[name][view] = pre.spacing
        for name, volumes in oracle_volumes.items():
            oracle_features[name][case] = patch_first_order(
                volumes, oracle_spacing[name], box, args.oracle_grid, bin_width
            )

    frame = pd.DataFrame(rows)
    if args.rows is not None:
        frame.to_csv(args.rows, index=False)
    noise = pd.DataFrame(noise_rows)
    result: dict[str, Any] = {
        "settings": {
            "n_cases": args.n_cases,
            "n_train": args.n_train,
            "seed": args.seed,
            "difficulty": args.difficulty,
            "matrix": args.matrix,
            "prevalence": prevalence,
            "box": list(box),
            "crops": list(args.crops),
            "shapes": [shape_name(s) for s in shapes],
            "survival": "per case: >= 4 voxels with fraction >= 0.5 and |CNR| >= 1 in some view; "
            f"per task: >= {MIN_CASE_SHARE:.0%} of the lesion cases",
            "quantiles": "median / p10 over the lesion cases of a type; |CNR| over those with >= 1 lesion voxel",
        },
        "n_lesion_cases": {
            u: int(frame.loc[(frame.unit == u) & (frame.stage == "raw"), "case"].nunique()) for u in UNITS
        },
        "noise_check": _noise_summary(noise),
        "stated_size_mm": {
            kind: {key: quantiles(pd.Series([d[key] for d in values]), 1) for key in values[0]}
            for kind, values in stated.items()
        },
    }
    result["lesions"] = _lesion_summary(frame, shapes)
    result["patches"] = _patch_summary(frame, shape_name(shapes[-1]))
    result["survival"] = _survival_summary(frame, shapes, args.crops)
    if oracle_shapes:
        result["oracle"] = _oracle_summary(oracle_features, oracle_main, labels, args)
        result["floor_raw_whole_volume"] = _floor(raw_volumes, labels, args)
    result["seconds"] = round(time.perf_counter() - start, 1)
    text = json.dumps(result, indent=1)
    print(text)
    if args.out is not None:
        args.out.write_text(text + "\n", encoding="utf-8")
    return result


def _noise_summary(noise: pd.DataFrame) -> dict[str, Any]:
    """Per stage: medians / 10th percentiles of the noise ratios measured at that stage."""
    out = {}
    for stage, part in noise.groupby("stage", sort=False):
        cols = [c for c in part.columns if c not in ("case", "view", "stage") and part[c].notna().any()]
        out[stage] = {c: quantiles(part[c], 3) for c in cols}
    return out


def _row(unit, case, view, crop, stage, size, cnr, share, retained, labels, shape, spacing) -> dict[str, Any]:
    """One measurement row."""
    return {
        "unit": unit,
        "case": case,
        "view": view,
        "crop": crop,
        "stage": stage,
        "shape": shape_name(shape),
        "spacing": "x".join(f"{s:.2f}" for s in spacing),
        "n_voxels": size.n_voxels,
        "volume_mm3": size.volume_mm3,
        "equivalent_diameter_mm": size.equivalent_diameter_mm,
        "thickness_mm": size.thickness_mm,
        "cnr": cnr.cnr,
        "contrast": cnr.contrast,
        "noise": cnr.noise,
        "box_share": share.share,
        "n_box_voxels": share.n_voxels_in_box,
        "main_g2": "".join(map(str, share.main_patch[2])) if share.main_patch[2] else None,
        "main_g3": "".join(map(str, share.main_patch[3])) if share.main_patch[3] else None,
        "n_patches_g2": len(share.patches[2]),
        "n_patches_g3": len(share.patches[3]),
        "crop_retained": retained,
        **{f"label_{k}": v for k, v in labels.items()},
    }


def _setting(crop: float, stage: str) -> str:
    return stage if crop == 1.0 else f"crop{crop:g}/{stage}"


def _lesion_summary(frame: pd.DataFrame, shapes) -> dict[str, Any]:
    """Per unit, view and setting: medians / 10th percentiles of voxels, CNR, box share, mm sizes."""
    out: dict[str, Any] = {}
    for unit, by_unit in frame.groupby("unit", sort=False):
        out[unit] = {}
        for view, by_view in by_unit.groupby("view", sort=False):
            per: dict[str, Any] = {}
            for (crop, stage), part in by_view.groupby(["crop", "stage"], sort=False):
                entry = {
                    "voxels": quantiles(part["n_voxels"], 1),
                    "cnr": quantiles(part["cnr"].abs(), 2),
                    "box_share": quantiles(part["box_share"], 2),
                    "box_voxels": quantiles(part["n_box_voxels"], 1),
                }
                if stage == "raw":
                    entry["equivalent_diameter_mm"] = quantiles(part["equivalent_diameter_mm"], 1)
                    entry["thickness_mm"] = quantiles(part["thickness_mm"], 1)
                    entry["spacing_mm"] = part["spacing"].mode().iloc[0]
                else:
                    entry["thickness_mm"] = quantiles(part["thickness_mm"], 1)
                if crop != 1.0:
                    entry["crop_retained"] = quantiles(part["crop_retained"], 2)
                    entry["scaled_box_share"] = quantiles(part["box_share_scaled"], 2)
                per[_setting(crop, stage)] = entry
            out[unit][view] = per
    return out


def _patch_summary(frame: pd.DataFrame, stage: str) -> dict[str, Any]:
    """Per unit and view at ``stage`` (no crop): share of cases whose main lesion patch is each patch."""
    part = frame[(frame.crop == 1.0) & (frame.stage == stage)]
    out: dict[str, Any] = {"stage": stage}
    for unit, by_unit in part.groupby("unit", sort=False):
        out[unit] = {}
        for view, by_view in by_unit.groupby("view", sort=False):
            entry = {}
            for grid in (2, 3):
                counts = Counter(by_view[f"main_g{grid}"].fillna("outside"))
                n = len(by_view)
                entry[f"g{grid}_main"] = {p: round(c / n, 2) for p, c in counts.most_common(4)}
                entry[f"g{grid}_patches_touched"] = quantiles(by_view[f"n_patches_g{grid}"], 1)
            out[unit][view] = entry
    return out


def _survival_summary(frame: pd.DataFrame, shapes, crops) -> dict[str, Any]:
    """Per task and setting: share of lesion cases whose lesion survives (anywhere / inside the box)."""
    out: dict[str, Any] = {}
    order = sorted(shapes, key=lambda s: (int(np.prod(s)), s))
    base = int(np.prod((16, 48, 48)))
    for task, unit in TASK_UNITS.items():
        part = frame[frame.unit == unit]
        entry: dict[str, Any] = {}
        for (crop, stage), sub in part.groupby(["crop", "stage"], sort=False):
            anywhere = cohort_survival(case_survival(sub))
            in_box = cohort_survival(case_survival(sub, n_column="n_box_voxels"))
            entry[_setting(crop, stage)] = {
                "share": round(anywhere["share"], 3),
                "share_in_box": round(in_box["share"], 3),
                "n_cases": anywhere["n_cases"],
            }
            if crop != 1.0:
                scaled = cohort_survival(case_survival(sub, n_column="n_box_voxels_scaled"))
                entry[_setting(crop, stage)]["share_in_scaled_box"] = round(scaled["share"], 3)
        smallest = {}
        for crop in crops:
            for basis in ("share", "share_in_box") + (("share_in_scaled_box",) if crop != 1.0 else ()):
                found = next(
                    (
                        shape_name(s)
                        for s in order
                        if entry.get(_setting(crop, shape_name(s)), {}).get(basis, 0) >= MIN_CASE_SHARE
                    ),
                    None,
                )
                smallest[f"{_setting(crop, 'shape')}:{basis}"] = found
        entry["smallest_surviving_shape"] = smallest
        out[task] = entry
    out["voxels_relative_to_16x48x48"] = {shape_name(s): round(int(np.prod(s)) / base, 2) for s in order}
    return out


def _oracle_summary(features, main, labels, args) -> dict[str, Any]:
    """Oracle ceiling of patch first-order radiomics per task, shape and image type."""
    lab = pd.DataFrame.from_dict(labels, orient="index")
    train = pd.Series(np.arange(len(lab)) < args.n_train, index=lab.index)
    out: dict[str, Any] = {"grid": args.oracle_grid, "split": f"train {int(train.sum())} / valid {int((~train).sum())}"}
    for task, unit in (("acl", "acl_tear"), ("men", "meniscal_tear")):
        out[task] = {}
        for name, per_case in features.items():
            table = pd.DataFrame.from_dict(per_case, orient="index")
            table.index.name = "case"
            out[task][name] = {}
            for pooling, image in [(p, i) for p in ("modal", "max") for i in ORACLE_IMAGES]:
                key = f"{pooling}/{image}"
                try:
                    res = oracle_patch_auc(
                        table,
                        lab[task],
                        train,
                        main[name][unit],
                        pooling=pooling,
                        min_share=0.1,
                        images=[image],
                        n_boot=args.n_boot,
                        seed=11,
                    )
                except ValueError as exc:
                    out[task][name][key] = {"error": str(exc)}
                    continue
                out[task][name][key] = {
                    "lesion_patches": {
                        v: "|".join("".join(map(str, p)) for p in ps) for v, ps in res.lesion_patches.items()
                    },
                    "feature": f"{'-' if res.sign < 0 else ''}{res.feature}",
                    "auc_train": round(res.auc_train, 3),
                    "auc_valid": round(res.auc_valid, 3),
                    "ci": [round(res.ci_low, 3), round(res.ci_high, 3)],
                    "optimistic_auc_valid": round(res.optimistic_auc_valid, 3),
                    "n_valid_pos": res.n_valid_pos,
                }
    return out


def _floor(volumes, labels, args) -> dict[str, Any]:
    """Whole-volume first-order logistic-regression floor on the raw uint8 volumes."""
    table = first_order_table(volumes, value_range=(0, 256))
    lab = pd.DataFrame.from_dict(labels, orient="index")
    train = pd.Series(np.arange(len(lab)) < args.n_train, index=lab.index)
    out = {}
    for task in ("abn", "acl", "men"):
        try:
            res = first_order_floor(table, lab[task], train, n_boot=args.n_boot, seed=11)
        except ValueError as exc:
            out[task] = {"error": str(exc)}
            continue
        out[task] = {"auc_valid": round(res.auc_valid, 3), "ci": [round(res.ci_low, 3), round(res.ci_high, 3)]}
    return out


if __name__ == "__main__":
    main()
