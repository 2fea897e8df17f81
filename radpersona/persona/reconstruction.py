"""Reconstruction studies of the healthy persona (paper, tables 2 and 3) and counterfactual fidelity.

**Configurations** (``persona.reconstruction.configs``: name -> overrides) vary the box size
(``box``), its location (``location``: ``central``, or ``random``: one origin per case drawn from
``derive_case_seed(location_seed, case)``, the same for every model), the views (``views``: ``all``
= the three views as channels, or one of sagittal | coronal | axial) and registration (``reg``: reg |
noreg). Unset keys take ``persona.box``, central, all and the first of ``registration.variants``.
Every model of ``persona.reconstruction.models`` (ddpm | gan | vit_ae) is trained per configuration
on the healthy training cases (abn = 0, split train) with the same boxes (``persona.train_masks``)
and intensity mapping; the DDPM of a configuration with the pipeline's box and all views *is* the
pipeline's ``models/ddpm_{reg}.pt`` (same training), so the default run trains no extra DDPM.

**Held-out healthy reconstruction**: on the healthy cases of the valid split (abn = 0, never seen in
training), each model inpaints its configuration's box and is compared with the original, on the
preprocess intensity scale: MSE and 3-D SSIM inside the box (``region = box``: both images cropped
to the box) and over the whole volume (``region = volume``; outside the box every model equals the
input, so this mostly dilutes the box figures, as in the paper). SSIM is skimage's
``structural_similarity`` per view (``data_range`` = width of ``persona.intensity_range``, a
uniform window of 7 voxels, or the largest odd size that fits the crop), averaged over the views.

**Held-out healthy counterparts** (synthetic source only, ``study = heldout_counterpart``): the true
healthy counterpart of every lesion case of the valid split (below) is a held-out healthy volume as well;
each model inpaints its box and is compared with it exactly as above. With MRNet's prevalence the valid
split holds few healthy cases (2 of 16 in the demo cohort), too few for a paired test; these add one
pair per lesion case. A counterpart takes its lesion case's box origin and sampling seed.

**Counterfactual fidelity** (synthetic source only): on the lesion cases of the valid split, the
truth folder's healthy counterpart and lesion mask (raw MRNet geometry) are brought onto the model's
grid exactly as the image was (``truth_on_grid``: the preprocess resize, the original's own
normalisation statistics, and for ``reg`` the case's reg_aladin affine applied with ``reg_resample``
using cubic interpolation, which reproduces the registered volume to ~1e-5). The persona is then
compared with the *true healthy* volume, inside the lesion voxels that lie in the box
(``region = lesion``; SSIM = mean of the box's SSIM map over those voxels) and in the box
(``region = box``), and ``contrast_removed = 1 - mean|persona - healthy| / mean|original - healthy|``
over those lesion voxels (1: the lesion is gone and replaced by the true healthy tissue; 0: the persona
kept the lesion; below 0: worse than keeping it). Lesion voxels are voxels whose resampled lesion
occupancy is at least 0.5; a case without lesion voxels in the box, or whose lesion has no visible
contrast there (mean|original - healthy| < 1e-3), contributes no counterfactual rows.

Outputs: per configuration a long CSV (``model, config, case, region, mse, ssim`` as in the data
contract, plus ``study`` (heldout_healthy | heldout_counterpart | counterfactual), ``contrast_removed``, ``n_voxels``,
``views``, ``reg``, ``box``, ``box_origin``, ``seed``) and a figure; then
``results/tables/reconstruction.csv`` (all configurations) and ``reconstruction_summary.csv`` /
``.md`` (mean ± sd per configuration, study, region and model, and the paired two-sided Wilcoxon
signed-rank test of the DDPM against each baseline over the same cases).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona import VIEWS
from radpersona.errors import ConfigError, InputDataError, RadpersonaError
from radpersona.persona.masks import box_size, box_slices, random_box_origin
from radpersona.truth import reg_resample

from ..atomic import atomic_output, write_csv_atomic

__all__ = [
    "ReconModel",
    "Location",
    "ReconConfig",
    "STUDY_HEALTHY",
    "STUDY_COUNTERPART",
    "STUDY_COUNTERFACTUAL",
    "RESULT_COLUMNS",
    "validate_reconstruction",
    "resolve_configs",
    "reuses_pipeline_ddpm",
    "ddpm_settings",
    "box_origins",
    "ssim_3d",
    "region_metrics",
    "counterfactual_metrics",
    "truth_on_grid",
    "reconstruct",
    "evaluate_config",
    "summarise",
    "summary_markdown",
    "plot_config",
    "stage_train_reconstruction_model",
    "stage_evaluate_reconstruction_config",
    "stage_reconstruction_tables",
]

logger = logging.getLogger("radpersona")

STUDY_HEALTHY = "heldout_healthy"
STUDY_COUNTERPART = "heldout_counterpart"
STUDY_COUNTERFACTUAL = "counterfactual"
RESULT_COLUMNS = [
    "model",
    "config",
    "case",
    "region",
    "mse",
    "ssim",
    "study",
    "contrast_removed",
    "n_voxels",
    "views",
    "reg",
    "box",
    "box_origin",
    "seed",
]
LESION_OCCUPANCY = 0.5
MIN_LESION_CONTRAST = 1e-3


class ReconModel(StrEnum):
    """Models of the reconstruction study."""

    DDPM = "ddpm"
    GAN = "gan"
    VIT_AE = "vit_ae"


class Location(StrEnum):
    """Where the evaluated box lies."""

    CENTRAL = "central"
    RANDOM = "random"


@dataclass(frozen=True)
class ReconConfig:
    """One configuration of the study (a row of the paper's table 3)."""

    name: str
    box: tuple[float, float, float]
    location: str
    views: tuple[str, ...]
    reg: str
    all_views: bool = True

    @property
    def view_label(self) -> str:
        """``all`` for all of the source's views, else the single view's name."""
        return "all" if self.all_views else "+".join(self.views)


# --------------------------------------------------------------------------------- configuration
_CONFIG_KEYS = {"box", "location", "views", "reg"}


def validate_reconstruction(section: Mapping[str, Any]) -> None:
    """Check ``persona.reconstruction`` (models, configs, seeds; the baselines' sections).

    Raises:
        ConfigError: naming the key and the bad value.
    """
    from radpersona.persona.baselines import validate_baseline_settings

    where = "persona.reconstruction"
    if not isinstance(section, Mapping):
        raise ConfigError(f"{where} must be a mapping, not {section!r}")
    models = section.get("models")
    if not isinstance(models, Sequence) or isinstance(models, str) or not models:
        raise ConfigError(f"{where}.models must be a non-empty list of {[m.value for m in ReconModel]}, not {models!r}")
    for m in models:
        if m not in ReconModel.__members__.values():
            raise ConfigError(f"{where}.models: {m!r} is not one of {[x.value for x in ReconModel]}")
    if len(set(models)) != len(models):
        raise ConfigError(f"{where}.models lists a model twice: {list(models)!r}")
    configs = section.get("configs")
    if not isinstance(configs, Mapping) or not configs:
        raise ConfigError(f"{where}.configs must be a non-empty mapping name -> overrides, not {configs!r}")
    for name, over in configs.items():
        if not isinstance(name, str) or not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"{where}.configs: name {name!r} must be letters, digits, '_' or '-'")
        if not isinstance(over, Mapping):
            raise ConfigError(f"{where}.configs.{name} must be a mapping of overrides, not {over!r}")
        unknown = set(over) - _CONFIG_KEYS
        if unknown:
            raise ConfigError(
                f"{where}.configs.{name}: unknown keys {sorted(unknown)} (allowed: {sorted(_CONFIG_KEYS)})"
            )
    seed = section.get("location_seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}.location_seed must be a non-negative integer, not {seed!r}")
    for kind in ("gan", "vit_ae"):
        if kind in models:
            validate_baseline_settings(kind, section.get(kind))


def resolve_configs(
    persona: Mapping[str, Any], default_reg: str, source_views: Sequence[str] = VIEWS
) -> dict[str, ReconConfig]:
    """The configurations of ``persona.reconstruction.configs`` with every default filled in.

    Args:
        persona: the ``persona`` section (``box`` and ``reconstruction``).
        default_reg: the registration branch of a configuration that sets no ``reg``.
        source_views: the views the source has (``views: all`` means these).

    Raises:
        ConfigError: a bad override (box, location, views or reg), naming the configuration.
    """
    section = persona["reconstruction"]
    validate_reconstruction(section)
    out: dict[str, ReconConfig] = {}
    for name, over in section["configs"].items():
        where = f"persona.reconstruction.configs.{name}"
        box = over.get("box", persona["box"])
        try:
            box_size((64, 64, 64), box)
        except ConfigError as exc:
            raise ConfigError(f"{where}.box: {exc}") from None
        location = over.get("location", Location.CENTRAL.value)
        if location not in Location.__members__.values():
            raise ConfigError(f"{where}.location must be one of {[x.value for x in Location]}, not {location!r}")
        views = over.get("views", "all")
        if views == "all":
            view_tuple = tuple(source_views)
        elif views in source_views:
            view_tuple = (views,)
        else:
            raise ConfigError(
                f"{where}.views must be 'all' or one of the source's views {list(source_views)}, not {views!r}"
            )
        reg = over.get("reg", default_reg)
        if reg not in ("reg", "noreg"):
            raise ConfigError(f"{where}.reg must be reg or noreg, not {reg!r}")
        out[name] = ReconConfig(
            name,
            tuple(float(b) for b in box),
            str(location),
            view_tuple,
            str(reg),  # type: ignore[arg-type]
            views == "all",
        )
    return out


def reuses_pipeline_ddpm(cfg: ReconConfig, persona: Mapping[str, Any]) -> bool:
    """True when the pipeline's ``models/ddpm_{reg}.pt`` is this configuration's DDPM (same box, all views)."""
    return tuple(float(b) for b in persona["box"]) == cfg.box and cfg.all_views


def ddpm_settings(persona: Mapping[str, Any], cfg: ReconConfig) -> dict[str, Any]:
    """The ``persona`` settings that train this configuration's DDPM (its box; no reconstruction section)."""
    settings = {k: v for k, v in persona.items() if k not in ("reconstruction", "sample")}
    settings["box"] = list(cfg.box)
    return settings


def box_origins(
    cfg: ReconConfig, shape: Sequence[int], cases: Sequence[str], seed: int
) -> list[tuple[int, int, int] | None]:
    """Per case the box origin: ``None`` (central) or a seeded random origin (same for every model)."""
    if cfg.location == Location.CENTRAL:
        return [None] * len(cases)
    from radpersona.persona.sample import derive_case_seed

    return [
        random_box_origin(shape, cfg.box, np.random.Generator(np.random.PCG64(derive_case_seed(seed, c))))
        for c in cases
    ]


# --------------------------------------------------------------------------------------- metrics
def _win_size(shape: Sequence[int]) -> int | None:
    smallest = min(int(s) for s in shape)
    if smallest < 3:
        return None
    return min(7, smallest if smallest % 2 else smallest - 1)


def ssim_3d(reference: np.ndarray, test: np.ndarray, data_range: float, within: np.ndarray | None = None) -> float:
    """3-D SSIM per view (skimage, uniform window), averaged over views.

    Args:
        reference, test: (C, D, H, W) arrays.
        data_range: intensity range of the scale.
        within: optional boolean (D, H, W) mask: the mean of the SSIM map over these voxels instead
            of the usual mean over the map (border cropped by skimage).

    Returns:
        SSIM, or NaN if the volume is smaller than 3 voxels on an axis or ``within`` is empty.
    """
    from skimage.metrics import structural_similarity

    win = _win_size(reference.shape[1:])
    if win is None or (within is not None and not within.any()):
        return float("nan")
    a, b = reference.astype(np.float64), test.astype(np.float64)
    if within is None:
        return float(structural_similarity(a, b, data_range=data_range, channel_axis=0, win_size=win))
    _, smap = structural_similarity(a, b, data_range=data_range, channel_axis=0, win_size=win, full=True)
    return float(smap[:, within].mean())


def region_metrics(
    target: np.ndarray, recon: np.ndarray, box: tuple[slice, slice, slice], data_range: float
) -> dict[str, dict[str, float]]:
    """MSE and SSIM of ``recon`` against ``target`` (both (C, D, H, W)) in the box and over the volume."""
    crop = (slice(None), *box)
    t_box, r_box = target[crop], recon[crop]
    return {
        "box": {
            "mse": float(np.mean((t_box.astype(np.float64) - r_box) ** 2)),
            "ssim": ssim_3d(t_box, r_box, data_range),
            "n_voxels": int(t_box[0].size),
        },
        "volume": {
            "mse": float(np.mean((target.astype(np.float64) - recon) ** 2)),
            "ssim": ssim_3d(target, recon, data_range),
            "n_voxels": int(target[0].size),
        },
    }


def counterfactual_metrics(
    original: np.ndarray,
    healthy: np.ndarray,
    lesion: np.ndarray,
    recon: np.ndarray,
    box: tuple[slice, slice, slice],
    data_range: float,
) -> dict[str, dict[str, float]] | None:
    """Persona vs the true healthy volume in the lesion (within the box) and the box; contrast removed.

    Args:
        original, healthy, recon: (C, D, H, W) on the model grid.
        lesion: boolean (C, D, H, W) lesion voxels (per view).
        box: the box slices.
        data_range: intensity range of the scale.

    Returns:
        ``{"lesion": {...}, "box": {...}}`` with ``mse``, ``ssim``, ``n_voxels`` and, for the lesion,
        ``contrast_removed``; ``None`` if no lesion voxel with visible contrast lies in the box.
    """
    crop = (slice(None), *box)
    o, h, r, les = (a[crop].astype(np.float64) for a in (original, healthy, recon, lesion))
    les = les.astype(bool)
    if not les.any():
        return None
    before = float(np.mean(np.abs(o[les] - h[les])))
    if before < MIN_LESION_CONTRAST:
        return None
    after = float(np.mean(np.abs(r[les] - h[les])))
    win = _win_size(h.shape[1:])
    if win is None:
        ssim_les = float("nan")
    else:
        from skimage.metrics import structural_similarity

        _, smap = structural_similarity(h, r, data_range=data_range, channel_axis=0, win_size=win, full=True)
        ssim_les = float(smap[les].mean())
    return {
        "lesion": {
            "mse": float(np.mean((r[les] - h[les]) ** 2)),
            "ssim": ssim_les,
            "n_voxels": int(les.sum()),
            "contrast_removed": 1.0 - after / before,
        },
        "box": {"mse": float(np.mean((r - h) ** 2)), "ssim": ssim_3d(h, r, data_range), "n_voxels": int(h[0].size)},
    }


# ---------------------------------------------------------------------------- truth on the grid
def _normalise_like(resized_original: np.ndarray, array: np.ndarray, preprocess: Mapping[str, Any]) -> np.ndarray:
    """Normalise ``array`` with the statistics that preprocess took from the original image."""
    method = preprocess["normalisation"]
    if method == "none":
        return array.astype(np.float32)
    if method == "zscore":
        return ((array - resized_original.mean()) / resized_original.std()).astype(np.float32)
    if method == "minmax":
        lo, hi = float(resized_original.min()), float(resized_original.max())
    elif method == "percentile":
        lo, hi = (float(v) for v in np.percentile(resized_original, list(preprocess["percentiles"])))
    else:
        raise ConfigError(f"preprocess.normalisation {method!r} is not supported by the truth mapping")
    return ((np.clip(array, lo, hi) - lo) / (hi - lo)).astype(np.float32)


def truth_on_grid(
    case: str,
    view: str,
    *,
    truth_dir: Path,
    raw_dir: Path,
    pre_dir: Path,
    preprocess: Mapping[str, Any],
    reg_dir: Path | None = None,
    reference_dir: Path | None = None,
    registered: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The true healthy volume and lesion occupancy of one case and view on the model's grid.

    Applies the preprocess resize (``preprocess.shape``, ``interpolation``) to the truth arrays and the
    original's own normalisation statistics to the healthy one; checks that doing the same to the raw
    image reproduces ``pre_dir/{case}_{view}.nii.gz`` (else the settings differ from the run's). With
    ``reg_dir`` (the reg branch) and ``registered``, applies ``reg_dir/{case}_{view}.aff.txt`` with
    reg_resample on ``reference_dir/reference_{view}.nii.gz`` (cubic for the image, as reg_aladin
    resamples; linear for the lesion occupancy). ``registered=False`` (QC kept the case unregistered)
    leaves the preprocessed grid as it is.

    Returns:
        ``(healthy, lesion_occupancy)``, float32 arrays of the model grid's shape.

    Raises:
        InputDataError: missing or mismatching files, naming case, view and file.
    """
    from radpersona.preprocess import normalise, resize
    from radpersona.volume import read_volume

    healthy_path = Path(truth_dir) / f"{case}_{view}_healthy.npy"
    lesion_path = Path(truth_dir) / f"{case}_{view}_lesion.npy"
    for p in (healthy_path, lesion_path):
        if not p.is_file():
            raise InputDataError("synthetic truth file not found", case=case, view=view, path=p)
    healthy_raw = np.load(healthy_path, allow_pickle=False).astype(np.float32)
    lesion_raw = (np.load(lesion_path, allow_pickle=False) > 0).astype(np.float32)
    original_raw, spacing = read_volume(Path(raw_dir) / f"{case}_{view}.nii.gz", case=case, view=view)
    if healthy_raw.shape != original_raw.shape or lesion_raw.shape != original_raw.shape:
        raise InputDataError(
            f"truth shapes {healthy_raw.shape}/{lesion_raw.shape} differ from the raw volume {original_raw.shape}",
            case=case,
            view=view,
            path=healthy_path,
        )
    shape, interp = preprocess["shape"], preprocess["interpolation"]
    original, new_spacing = resize(original_raw, spacing, shape, interp)
    healthy, _ = resize(healthy_raw, spacing, shape, interp)
    lesion, _ = resize(lesion_raw, spacing, shape, "linear")
    pre_path = Path(pre_dir) / f"{case}_{view}.nii.gz"
    pre, pre_spacing = read_volume(pre_path, case=case, view=view)
    check = normalise(original, preprocess["normalisation"], preprocess["percentiles"], case=case, view=view)
    if check.shape != pre.shape or float(np.max(np.abs(check - pre))) > 1e-4:
        raise InputDataError(
            "re-preprocessing the raw volume does not reproduce the preprocessed file: the preprocess settings "
            "given to the reconstruction study differ from the run's",
            case=case,
            view=view,
            path=pre_path,
            value=float(np.max(np.abs(check - pre))) if check.shape == pre.shape else check.shape,
        )
    healthy = _normalise_like(original, healthy, preprocess)
    if reg_dir is not None and registered:
        affine = Path(reg_dir) / f"{case}_{view}.aff.txt"
        reference = Path(reference_dir or "") / f"reference_{view}.nii.gz"
        for p in (affine, reference):
            if not p.is_file():
                raise InputDataError("registration file not found", case=case, view=view, path=p)
        healthy = reg_resample(healthy, pre_spacing, reference, affine, interpolation=3, case=case, view=view)
        lesion = reg_resample(lesion, pre_spacing, reference, affine, interpolation=1, case=case, view=view)
    return healthy.astype(np.float32), lesion.astype(np.float32)


def _was_registered(qc_dir: Path | None, case: str, view: str) -> bool:
    """False if the registration QC says the case's view was kept unregistered."""
    if qc_dir is None:
        return True
    path = Path(qc_dir) / f"{case}.parquet"
    if not path.is_file():
        raise InputDataError("registration QC file not found", case=case, view=view, path=path)
    qc = pd.read_parquet(path)
    rows = qc[qc["view"] == view]
    return not (len(rows) and "kept unregistered" in str(rows["status"].iloc[0]))


# --------------------------------------------------------------------------------- reconstruction
def reconstruct(
    model: str,
    checkpoint: Path,
    volumes: np.ndarray,
    cases: Sequence[str],
    origins: Sequence[tuple[int, int, int] | None],
    cfg: ReconConfig,
    persona: Mapping[str, Any],
    device: str,
) -> tuple[np.ndarray, list[int]]:
    """Inpaint the box of every case with one model; returns the reconstructions and per-case seeds.

    DDPM: ``sample_personas`` with ``persona.sample`` (sampler, steps, batch size) and the pipeline's
    per-case seeds ``derive_case_seed(persona.sample.seed, case)``; cases sharing a box origin are
    sampled together (the result does not depend on the batch). Baselines are deterministic; their
    recorded seed is their training seed.
    """
    if model == ReconModel.DDPM:
        from radpersona.persona.sample import derive_case_seed, sample_personas

        sample = persona["sample"]
        seeds = [derive_case_seed(int(sample["seed"]), c) for c in cases]
        out = np.empty_like(volumes)
        groups: dict[Any, list[int]] = {}
        for i, o in enumerate(origins):
            groups.setdefault(o, []).append(i)
        for origin, idx in groups.items():
            out[idx] = sample_personas(
                volumes[idx],
                checkpoint=Path(checkpoint),
                box=list(cfg.box),
                sampler=sample["sampler"],
                steps=int(sample["steps"]),
                seeds=[seeds[i] for i in idx],
                batch_size=int(sample["batch_size"]),
                device=device,
                origin=origin,
            )
        return out, seeds
    from radpersona.persona.baselines import inpaint_baseline, load_baseline

    _, meta = load_baseline(Path(checkpoint), "cpu")
    out = inpaint_baseline(
        volumes,
        checkpoint=Path(checkpoint),
        box=list(cfg.box),
        origins=list(origins),
        batch_size=int(persona["sample"]["batch_size"]),
        device=device,
    )
    return out, [int(meta["seed"])] * len(cases)


def _origin_text(origin: tuple[int, int, int] | None, shape: Sequence[int], box: Sequence[float]) -> str:
    sl = box_slices(shape, box, origin=origin)
    return ",".join(str(s.start) for s in sl)


def evaluate_config(
    cfg: ReconConfig,
    *,
    models: Mapping[str, Path],
    healthy: np.ndarray,
    healthy_cases: Sequence[str],
    lesion_data: Mapping[str, tuple[np.ndarray, np.ndarray, np.ndarray]] | None,
    persona: Mapping[str, Any],
    device: str = "cpu",
) -> tuple[pd.DataFrame, dict[str, dict[str, np.ndarray]]]:
    """Run every model of one configuration on the held-out healthy and the lesion cases.

    Args:
        cfg: the configuration.
        models: model name -> checkpoint.
        healthy: (N, C, D, H, W) held-out healthy cases (the configuration's views).
        healthy_cases: their ids.
        lesion_data: case -> (original, true healthy, lesion occupancy), each (C, D, H, W) on the model
            grid; ``None`` or empty for a source without truth.
        persona: the ``persona`` section.
        device: cpu | cuda | auto.

    Returns:
        The long result table (``RESULT_COLUMNS``) and, per model, the reconstructions of every case
        (case -> (C, D, H, W)) for the figure.
    """
    lo, hi = (float(v) for v in persona.get("intensity_range", [0.0, 1.0]))
    data_range = hi - lo
    seed = int(persona["reconstruction"]["location_seed"])
    lesion_data = dict(lesion_data or {})
    lesion_cases = list(lesion_data)
    # inputs, in order: the healthy valid cases, the lesion cases, and the lesion cases' true healthy
    # counterparts (held-out healthy volumes too, never trained on); one study per input
    inputs = [healthy[i] for i in range(len(healthy_cases))]
    inputs += [lesion_data[c][0] for c in lesion_cases] + [lesion_data[c][1] for c in lesion_cases]
    cases = list(healthy_cases) + lesion_cases + lesion_cases
    studies = [STUDY_HEALTHY] * len(healthy_cases) + [STUDY_COUNTERFACTUAL] * len(lesion_cases)
    studies += [STUDY_COUNTERPART] * len(lesion_cases)
    volumes = np.stack(inputs).astype(np.float32)
    shape = tuple(int(s) for s in volumes.shape[2:])
    origins = box_origins(cfg, shape, cases, seed)
    rows: list[dict[str, Any]] = []
    recons: dict[str, dict[str, np.ndarray]] = {}
    for model, checkpoint in models.items():
        recon, seeds = reconstruct(model, checkpoint, volumes, cases, origins, cfg, persona, device)
        # the figure shows what the pipeline makes: personas of the valid cases as they are
        recons[model] = {c: recon[i] for i, (c, st) in enumerate(zip(cases, studies)) if st != STUDY_COUNTERPART}
        for i, (case, study) in enumerate(zip(cases, studies)):
            base = {
                "model": model,
                "config": cfg.name,
                "case": case,
                "views": cfg.view_label,
                "reg": cfg.reg,
                "box": "x".join(f"{b:g}" for b in cfg.box),
                "box_origin": _origin_text(origins[i], shape, cfg.box),
                "seed": int(seeds[i]),
            }
            box = box_slices(shape, cfg.box, origin=origins[i])
            if study != STUDY_COUNTERFACTUAL:
                for region, m in region_metrics(volumes[i], recon[i], box, data_range).items():
                    rows.append({**base, "region": region, "study": study, "contrast_removed": float("nan"), **m})
                continue
            original, truth, occupancy = lesion_data[case]
            found = counterfactual_metrics(original, truth, occupancy >= LESION_OCCUPANCY, recon[i], box, data_range)
            for region, m in (found or {}).items():
                rows.append(
                    {
                        **base,
                        "region": region,
                        "study": study,
                        "contrast_removed": m.pop("contrast_removed", float("nan")),
                        **m,
                    }
                )
    table = pd.DataFrame(rows, columns=RESULT_COLUMNS)
    return table, recons


# ---------------------------------------------------------------------------------------- tables
def _wilcoxon(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    diff = a - b
    if len(diff) < 2 or not np.any(diff != 0) or not np.all(np.isfinite(diff)):
        return float("nan")
    return float(wilcoxon(a, b, alternative="two-sided").pvalue)


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean ± sd per configuration, study, region and model, and the paired Wilcoxon test vs the DDPM.

    Columns: ``config, study, region, model, n, mse_mean, mse_sd, ssim_mean, ssim_sd,
    contrast_removed_mean, contrast_removed_sd`` (counterfactual lesion rows; NaN elsewhere),
    ``contrast_removed_pooled`` (the per-case values weighted by their lesion voxel counts),
    ``p_mse_vs_ddpm, p_ssim_vs_ddpm`` (two-sided Wilcoxon signed-rank over the cases both models
    have; NaN for the DDPM itself, with fewer than 2 pairs or all differences zero).
    """
    out = []
    keys = ["config", "study", "region"]
    for (config, study, region), grp in table.groupby(keys, sort=False):
        ddpm = grp[grp["model"] == ReconModel.DDPM].set_index("case")
        for model, sub in grp.groupby("model", sort=False):
            row: dict[str, Any] = {"config": config, "study": study, "region": region, "model": model, "n": len(sub)}
            for metric in ("mse", "ssim", "contrast_removed"):
                vals = sub[metric].to_numpy(np.float64)
                vals = vals[np.isfinite(vals)]
                row[f"{metric}_mean"] = float(vals.mean()) if len(vals) else float("nan")
                row[f"{metric}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
            cr = sub[["contrast_removed", "n_voxels"]].dropna()
            row["contrast_removed_pooled"] = (
                float(np.average(cr["contrast_removed"], weights=cr["n_voxels"])) if len(cr) else float("nan")
            )
            for metric in ("mse", "ssim"):
                if model == ReconModel.DDPM or ddpm.empty:
                    row[f"p_{metric}_vs_ddpm"] = float("nan")
                    continue
                paired = sub[["case", metric]].merge(ddpm[[metric]].reset_index(), on="case", suffixes=("", "_ddpm"))
                row[f"p_{metric}_vs_ddpm"] = _wilcoxon(paired[f"{metric}_ddpm"].to_numpy(), paired[metric].to_numpy())
            out.append(row)
    return pd.DataFrame(out)


def summary_markdown(summary: pd.DataFrame) -> str:
    """A Markdown table of the summary (mean ± sd, p-values of the paired Wilcoxon test vs the DDPM)."""

    def pm(mean: float, sd: float, digits: int) -> str:
        if not math.isfinite(mean):
            return ""
        return f"{mean:.{digits}f} ± {sd:.{digits}f}" if math.isfinite(sd) else f"{mean:.{digits}f}"

    def p(v: float) -> str:
        return "" if not math.isfinite(v) else f"{v:.3g}"

    head = [
        "config",
        "study",
        "region",
        "model",
        "n",
        "MSE",
        "SSIM",
        "contrast removed",
        "p MSE vs ddpm",
        "p SSIM vs ddpm",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.itertuples(index=False):
        lines.append(
            "| "
            + " | ".join(
                [
                    str(r.config),
                    str(r.study),
                    str(r.region),
                    str(r.model),
                    str(r.n),
                    pm(r.mse_mean, r.mse_sd, 5),
                    pm(r.ssim_mean, r.ssim_sd, 3),
                    pm(r.contrast_removed_mean, r.contrast_removed_sd, 3),
                    p(r.p_mse_vs_ddpm),
                    p(r.p_ssim_vs_ddpm),
                ]
            )
            + " |"
        )
    note = (
        "\n\nMSE on the preprocess intensity scale; SSIM: 3-D SSIM per view, mean over views. `heldout_healthy`: "
        "reconstruction of the box of healthy valid cases vs the original. `heldout_counterpart`: the same, with the "
        "true healthy counterparts of the synthetic lesion cases of the valid split as inputs. `counterfactual`: "
        "persona of the lesion case vs its true healthy counterpart (`lesion`: lesion voxels inside the box). contrast removed = "
        "1 - mean|persona - healthy| / mean|original - healthy| over the lesion voxels. p: two-sided paired Wilcoxon "
        "signed-rank test of the DDPM against the model of the row over the same cases.\n"
    )
    return "\n".join(lines) + note


_atomic_csv = write_csv_atomic


# ---------------------------------------------------------------------------------------- figure
def plot_config(
    cfg: ReconConfig,
    case: str,
    original: np.ndarray,
    recons: Mapping[str, np.ndarray],
    truth: np.ndarray | None,
    origin: tuple[int, int, int] | None,
    out: Path,
    intensity_range: Sequence[float] = (0.0, 1.0),
) -> None:
    """Figure of one case: per view (rows) the box's middle slice of the original, the true healthy
    volume (if known), each model's reconstruction and the DDPM residual (original − persona).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    shape = original.shape[1:]
    sl = box_slices(shape, cfg.box, origin=origin)
    k = (sl[0].start + sl[0].stop - 1) // 2
    panels: list[tuple[str, np.ndarray, str]] = [("original", original, "gray")]
    if truth is not None:
        panels.append(("truth (healthy)", truth, "gray"))
    for model, rec in recons.items():
        panels.append((f"{model} persona" if model == ReconModel.DDPM else f"{model} reconstruction", rec, "gray"))
    if ReconModel.DDPM in recons:
        panels.append(("ddpm residual", original - recons[ReconModel.DDPM], "RdBu_r"))
    lo, hi = float(intensity_range[0]), float(intensity_range[1])
    rows, cols = len(cfg.views), len(panels)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for v, view in enumerate(cfg.views):
        for j, (title, arr, cmap) in enumerate(panels):
            ax = axes[v, j]
            if cmap == "RdBu_r":
                lim = max(1e-6, float(np.abs(arr[v, k]).max()))
                ax.imshow(arr[v, k], cmap=cmap, vmin=-lim, vmax=lim)
            else:
                ax.imshow(arr[v, k], cmap=cmap, vmin=lo, vmax=hi)
            ax.add_patch(
                Rectangle(
                    (sl[2].start - 0.5, sl[1].start - 0.5),
                    sl[2].stop - sl[2].start,
                    sl[1].stop - sl[1].start,
                    fill=False,
                    edgecolor="yellow",
                    linewidth=0.8,
                )
            )
            ax.set_xticks([])
            ax.set_yticks([])
            if v == 0:
                ax.set_title(title, fontsize=8)
            if j == 0:
                ax.set_ylabel(f"{view}\nslice {k}", fontsize=8)
    fig.suptitle(
        f"reconstruction config {cfg.name}: case {case}, box {'x'.join(f'{b:g}' for b in cfg.box)} "
        f"{cfg.location}, views {cfg.view_label}, {cfg.reg}",
        fontsize=9,
    )
    fig.tight_layout()
    try:
        with atomic_output(out) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        plt.close(fig)


# ---------------------------------------------------------------------------------------- stages
def _torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(max(1, int(n)))


def stage_train_reconstruction_model(
    cohort_path: str | Path,
    volumes: str | Path,
    checkpoint: str | Path,
    model: str,
    config_name: str,
    persona: Mapping[str, Any],
    default_reg: str,
    threads: int,
    source_views: Sequence[str] = VIEWS,
) -> None:
    """Train one model of one configuration on the healthy training cases (abn = 0, split train)."""
    from radpersona.volume import load_stack

    _torch_threads(threads)
    cfg = resolve_configs(persona, default_reg, source_views)[config_name]
    cohort = pd.read_parquet(cohort_path)
    healthy = cohort[(cohort["split"] == "train") & (cohort["abn"] == 0)]["case"].tolist()
    if len(healthy) < 2:
        raise RadpersonaError(
            f"reconstruction config {config_name}: needs at least 2 healthy training cases, found {len(healthy)}"
        )
    stack, _ = load_stack(
        [[Path(volumes) / f"{c}_{v}.nii.gz" for v in cfg.views] for c in healthy], healthy, cfg.views
    )
    logger.info(
        "train %s for reconstruction config %s: %d healthy training cases, volumes %s",
        model,
        config_name,
        len(healthy),
        stack.shape,
    )
    device = str(persona["device"])
    if model == ReconModel.DDPM:
        from radpersona.persona.train import train_ddpm

        summary = train_ddpm(stack, settings=ddpm_settings(persona, cfg), checkpoint=Path(checkpoint), device=device)
    else:
        from radpersona.persona.baselines import train_baseline

        section = persona["reconstruction"][model]
        summary = train_baseline(
            model,
            stack,
            persona=ddpm_settings(persona, cfg),
            section=section,
            checkpoint=Path(checkpoint),
            device=device,
        )
    logger.info("train %s (%s): %s", model, config_name, summary)


def stage_evaluate_reconstruction_config(
    cohort_path: str | Path,
    config_name: str,
    models: Mapping[str, str],
    volumes: str | Path,
    out_csv: str | Path,
    out_figure: str | Path,
    persona: Mapping[str, Any],
    preprocess: Mapping[str, Any],
    default_reg: str,
    threads: int,
    source_views: Sequence[str] = VIEWS,
    truth_dir: str | Path | None = None,
    raw_dir: str | Path | None = None,
    pre_dir: str | Path | None = None,
    reference_dir: str | Path | None = None,
    qc_dir: str | Path | None = None,
) -> None:
    """Evaluate one configuration: held-out healthy reconstruction and counterfactual fidelity; figure.

    Args:
        volumes: the configuration's volumes folder (``reg/`` or ``pre/``).
        models: model name -> checkpoint.
        truth_dir, raw_dir, pre_dir: synthetic truth, raw and preprocessed volumes (counterfactual;
            ``truth_dir=None`` skips it). reference_dir, qc_dir: for the reg branch.
    """
    from radpersona.volume import load_stack

    _torch_threads(threads)
    cfg = resolve_configs(persona, default_reg, source_views)[config_name]
    cohort = pd.read_parquet(cohort_path)
    valid = cohort[cohort["split"] == "valid"]
    healthy_cases = valid[valid["abn"] == 0]["case"].tolist()
    if not healthy_cases:
        raise RadpersonaError(
            f"reconstruction config {config_name}: the valid split has no healthy case (abn = 0) to evaluate on"
        )
    healthy, _ = load_stack(
        [[Path(volumes) / f"{c}_{v}.nii.gz" for v in cfg.views] for c in healthy_cases], healthy_cases, cfg.views
    )
    lesion_data: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    if truth_dir is not None:
        lesion_cases = valid[valid["abn"] == 1]["case"].tolist()
        if lesion_cases:
            originals, _ = load_stack(
        [[Path(volumes) / f"{c}_{v}.nii.gz" for v in cfg.views] for c in lesion_cases], lesion_cases, cfg.views
    )
        reg_dir = Path(volumes) if cfg.reg == "reg" else None
        for n, case in enumerate(lesion_cases):
            truths, occs = [], []
            for view in cfg.views:
                registered = _was_registered(Path(qc_dir) if qc_dir and reg_dir else None, case, view)
                h, o = truth_on_grid(
                    case,
                    view,
                    truth_dir=Path(truth_dir),
                    raw_dir=Path(raw_dir or ""),
                    pre_dir=Path(pre_dir or ""),
                    preprocess=preprocess,
                    reg_dir=reg_dir,
                    reference_dir=Path(reference_dir or ""),
                    registered=registered,
                )
                truths.append(h)
                occs.append(o)
            lesion_data[case] = (originals[n], np.stack(truths), np.stack(occs))
    table, recons = evaluate_config(
        cfg,
        models={m: Path(p) for m, p in models.items()},
        healthy=healthy,
        healthy_cases=healthy_cases,
        lesion_data=lesion_data,
        persona=persona,
        device=str(persona["device"]),
    )
    _atomic_csv(table, Path(out_csv))
    for (study, region, model), grp in table.groupby(["study", "region", "model"], sort=False):
        logger.info(
            "reconstruction %s %s %s %s: n %d, MSE %.5f, SSIM %.3f%s",
            config_name,
            study,
            region,
            model,
            len(grp),
            grp["mse"].mean(),
            grp["ssim"].mean(),
            f", contrast removed {grp['contrast_removed'].mean():.3f}"
            if study == STUDY_COUNTERFACTUAL and region == "lesion"
            else "",
        )
    # figure: the first counterfactual case (it has a truth), else the first held-out healthy case
    cf = table[table["study"] == STUDY_COUNTERFACTUAL]["case"]
    case = str(cf.iloc[0]) if len(cf) else healthy_cases[0]
    if case in lesion_data:
        original, truth = lesion_data[case][0], lesion_data[case][1]
    else:
        original, truth = healthy[healthy_cases.index(case)], None
    origin = box_origins(cfg, original.shape[1:], [case], int(persona["reconstruction"]["location_seed"]))[0]
    plot_config(
        cfg,
        case,
        original,
        {m: r[case] for m, r in recons.items()},
        truth,
        origin,
        Path(out_figure),
        persona.get("intensity_range", [0.0, 1.0]),
    )


def stage_reconstruction_tables(
    parts: Sequence[str], out_csv: str | Path, out_summary_csv: str | Path, out_md: str | Path
) -> None:
    """Concatenate the configurations' tables; write the summary with the paired Wilcoxon tests."""
    table = pd.concat([pd.read_csv(p, dtype={"case": str}) for p in parts], ignore_index=True)
    _atomic_csv(table, Path(out_csv))
    summary = summarise(table)
    _atomic_csv(summary, Path(out_summary_csv))
    Path(out_md).write_text(summary_markdown(summary), encoding="utf-8")
    logger.info("reconstruction summary:\n%s", summary.to_string(index=False))
