"""One synthetic case from its seed, and the cohort written in MRNet layout with its ground truth.

Each case draws from ``numpy.random.SeedSequence([seed, index])`` only, so it is reproducible on its
own and never depends on other cases. The sequence spawns four independent streams (labels,
anatomy + pose, lesions, acquisition); the acquisition stream spawns one per view, split into
acquisition parameters and noise, so the healthy twin shares every draw but the lesions.

Files: the MRNet layout under the dataset folder (:class:`radpersona.sources.mrnet.MRNetLayout`:
``{split}/{view}/{case}.npy``, uint8 ``(slices, matrix, matrix)``, and the six label CSVs), and the
truth under the results folder (:class:`radpersona.layout.Layout`: per case and view the healthy
counterpart and the lesion code mask, ``.npy`` uint8, and the case's JSON record: labels, lesions,
pose, anatomy, acquisition, seeds, generator version). Which files are up to date is decided by
Snakemake's ``synthesize`` rule, which declares every one of them: the generator writes them all.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..atomic import atomic_output, write_bytes_atomic
from ..errors import ConfigError
from ..layout import Layout
from ..progress import Progress
from ..sources.mrnet import MRNetLayout
from ..vocabulary import LESION_CODES, SPLITS, TASKS, VIEWS
from .acquisition import ViewRender, draw_acquisition, render_view
from .anatomy import INTENSITY, draw_anatomy, draw_pose, knee_to_world
from .labels import DEFAULT_PREVALENCE, CaseLabels, draw_labels
from .lesions import draw_lesions

logger = logging.getLogger("radpersona")

GENERATOR_VERSION = "1.1.0"
"""Version of the generator, recorded with every case (1.1.0: lesion sizes named in mm in the truth
records; images, masks and every drawn value as in 1.0.0)."""

_MARKER = ".radpersona_synthetic"
_CASE_FILE = re.compile(r"^\d{4}\.npy$")
_TRUTH_FILE = re.compile(r"^\d{4}(_\w+\.npy|\.json)$")


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


def _case_streams(index: int, seed: int) -> list[np.random.SeedSequence]:
    """The four independent streams of case ``index`` (labels, anatomy and pose, lesions, acquisition)."""
    return np.random.SeedSequence([int(seed), int(index)]).spawn(4)


def case_labels(index: int, *, seed: int, prevalence: Mapping[str, float] = DEFAULT_PREVALENCE) -> CaseLabels:
    """The labels :func:`simulate_case` draws for case ``index`` (its labels stream only; nothing rendered):
    how many tears a cohort's split holds is known before it is generated."""
    return draw_labels(np.random.default_rng(_case_streams(index, seed)[0]), prevalence)


def simulate_case(
    index: int,
    *,
    seed: int,
    difficulty: float = 0.5,
    prevalence: Mapping[str, float] = DEFAULT_PREVALENCE,
    slices: tuple[int, int] = (20, 32),
    matrix: int = 256,
) -> CaseSimulation:
    """Draw and render case ``index`` from ``SeedSequence([seed, index])`` alone (see the module docstring).

    Lesion records get the world (scanner) coordinates of their points: ``gap_start_world``,
    ``gap_end_world`` (ACL tear), ``centre_world`` (bone bruise, cartilage defect).
    """
    label_ss, anatomy_ss, lesion_ss, acq_ss = _case_streams(index, seed)
    labels = draw_labels(np.random.default_rng(label_ss), prevalence)
    anatomy_rng = np.random.default_rng(anatomy_ss)
    anatomy = draw_anatomy(anatomy_rng)
    pose = draw_pose(anatomy_rng)
    lesions = draw_lesions(np.random.default_rng(lesion_ss), labels, anatomy, float(difficulty))
    acquisitions: dict[str, dict[str, Any]] = {}
    views: dict[str, ViewRender] = {}
    for view, vss in zip(VIEWS, acq_ss.spawn(len(VIEWS))):
        acq_seed, noise_seed = vss.spawn(2)
        acq = draw_acquisition(np.random.default_rng(acq_seed), view, slices, matrix, float(difficulty))
        acquisitions[view] = acq
        views[view] = render_view(anatomy, lesions, pose, acq, np.random.default_rng(noise_seed))
    for lesion in lesions:
        for key in ("gap_start", "gap_end", "centre"):
            if key in lesion:
                lesion[f"{key}_world"] = knee_to_world(np.asarray(lesion[key]), pose).tolist()
    return CaseSimulation(index, labels, anatomy, pose, lesions, acquisitions, views)


def case_id(index: int) -> str:
    """MRNet-style 4-digit zero-padded case id."""
    return f"{index:04d}"


def cohort_cases(n_train: int, n_valid: int) -> pd.DataFrame:
    """Every case of a cohort: columns case, split (train ids ``0000 .. n_train-1``, valid ids follow)."""
    return pd.DataFrame(
        {
            "case": [case_id(i) for i in range(n_train + n_valid)],
            "split": ["train"] * n_train + ["valid"] * n_valid,
        }
    )


def _save_npy(path: str | Path, array: np.ndarray) -> None:
    """Save a ``.npy`` atomically."""
    with atomic_output(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


@dataclass(frozen=True)
class _CaseJob:
    """Everything one worker needs to generate one case (picklable)."""

    index: int
    split: str
    mrnet_root: str
    results: str
    seed: int
    difficulty: float
    prevalence: tuple[tuple[str, float], ...]
    slices: tuple[int, int]
    matrix: int


def _parameters_hash(job: _CaseJob) -> str:
    """Hash of the generator version and every parameter that determines a case's files (provenance)."""
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


def _generate_case(job: _CaseJob) -> dict[str, Any]:
    """Generate one case's images and truth; return its cohort row."""
    cid = case_id(job.index)
    mrnet, layout = MRNetLayout(job.mrnet_root), Layout(job.results)
    sim = simulate_case(
        job.index,
        seed=job.seed,
        difficulty=job.difficulty,
        prevalence=dict(job.prevalence),
        slices=job.slices,
        matrix=job.matrix,
    )
    labels = sim.labels
    lesion_voxels: dict[str, dict[str, int]] = {}
    for view in VIEWS:
        rendered = sim.views[view]
        _save_npy(layout.truth(cid, view, "healthy"), rendered.healthy)
        _save_npy(layout.truth(cid, view, "lesion"), rendered.mask)
        _save_npy(mrnet.volume(job.split, view, cid), rendered.image)
        counts = np.bincount(rendered.mask.ravel(), minlength=6)
        lesion_voxels[view] = {name: int(counts[code]) for name, code in LESION_CODES.items()}
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
        "lesions": sim.lesions,
        "lesion_codes": dict(LESION_CODES),
        "lesion_voxels": lesion_voxels,
        "pose": sim.pose,
        "anatomy": sim.anatomy,
        "intensity": INTENSITY,
        "views": sim.acquisitions,
        "parameters_sha256": _parameters_hash(job),
    }
    write_bytes_atomic(layout.truth_record(cid), json.dumps(meta, indent=1).encode())
    return {"case": cid, "split": job.split, "abn": labels.abn, "acl": labels.acl, "men": labels.men}


def _claim_folder(root: Path, what: str) -> None:
    """Create ``root`` with a marker, refusing a folder holding files this generator did not write.

    Empty sub-folders (Snakemake creates the folders of a rule's outputs before the rule runs) do not
    count.
    """
    root.mkdir(parents=True, exist_ok=True)
    marker = root / _MARKER
    if not marker.exists():
        if any(p.is_file() or p.is_symlink() for p in root.rglob("*")):
            raise ConfigError(
                f"{what} {str(root)!r} is not empty and was not written by radpersona.synthetic "
                f"(no {_MARKER} marker); refusing to overwrite it"
            )
        write_bytes_atomic(marker, json.dumps({"generator_version": GENERATOR_VERSION}).encode())


def _remove_stale(mrnet_root: Path, truth_root: Path, keep: Mapping[str, set[str]]) -> int:
    """Delete generated files of cases no longer in the cohort (both folders carry our marker).

    Left in place they would be volumes without a label, which ingest refuses.
    """
    removed = 0
    for split in SPLITS:
        for view in VIEWS:
            folder = mrnet_root / split / view
            if folder.is_dir():
                for p in folder.iterdir():
                    if _CASE_FILE.match(p.name) and p.stem not in keep[split]:
                        p.unlink()
                        removed += 1
    every = set().union(*keep.values())
    for p in truth_root.iterdir():
        if _TRUTH_FILE.match(p.name) and p.name[:4] not in every:
            p.unlink()
            removed += 1
    return removed


def generate_cohort(
    mrnet_root: str | Path,
    layout: Layout,
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

    Writes ``mrnet_root/{split}/{view}/{case}.npy`` and ``mrnet_root/{split}-{abnormal,acl,meniscus}.csv``
    (no header, ``NNNN,label``), and per case ``layout.truth(case, view, kind)`` for every view and
    kind in :data:`radpersona.vocabulary.TRUTH_KINDS` (lesion codes: :data:`LESION_CODES`) and
    ``layout.truth_record(case)``. Files are written atomically; generated files of cases outside the
    cohort are removed. The settings (``synthetic`` in the configuration) are checked by
    :class:`radpersona.settings.SyntheticSettings`.

    Args:
        mrnet_root: output dataset folder (created; must hold no files or be written by this generator).
        layout: the results folder; its synthetic truth folder follows the same rule.
        n_train: number of training cases.
        n_valid: number of validation cases.
        seed: cohort seed.
        difficulty: in [0, 1]; more noise / bias, smaller and fainter lesions as it grows.
        prevalence: P(abn), P(acl), P(men); ``abn >= P(acl or men)``.
        slices: inclusive range of slice counts per case and view.
        matrix: in-plane size (voxels) of every view.
        workers: processes generating cases in parallel (results do not depend on it).

    Returns:
        DataFrame with columns case (str), split, abn, acl, men (int), patient (str).

    Raises:
        ConfigError: an output folder holding foreign files.
    """
    mrnet_root = Path(mrnet_root)
    truth_root = Path(layout.synthetic_truth_dir())
    _claim_folder(mrnet_root, "synthetic mrnet_root")
    _claim_folder(truth_root, "synthetic truth_root")
    cases = cohort_cases(n_train, n_valid)
    prev = {key: float(prevalence[key]) for key in TASKS}
    jobs = [
        _CaseJob(
            index=index,
            split=split,
            mrnet_root=str(mrnet_root),
            results=layout.root,
            seed=int(seed),
            difficulty=float(difficulty),
            prevalence=tuple(sorted(prev.items())),
            slices=(int(slices[0]), int(slices[1])),
            matrix=int(matrix),
        )
        for index, split in enumerate(cases["split"])
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
    table = pd.DataFrame(rows, columns=["case", "split", "abn", "acl", "men"])
    table["patient"] = "synthetic-" + table["case"]
    for col in TASKS:
        table[col] = table[col].astype("int64")

    mrnet = MRNetLayout(str(mrnet_root))
    for split in SPLITS:
        part = table[table["split"] == split]
        for task in TASKS:
            text = "".join(f"{c},{v}\n" for c, v in zip(part["case"], part[task]))
            write_bytes_atomic(mrnet.labels(split, task), text.encode())
    removed = _remove_stale(
        mrnet_root,
        truth_root,
        {s: set(table.loc[table["split"] == s, "case"]) for s in SPLITS},
    )
    logger.info(
        "synthetic cohort: %d cases (%d train, %d valid) in %s and %s, %d stale files removed",
        len(table),
        n_train,
        n_valid,
        mrnet_root,
        truth_root,
        removed,
    )
    return table
