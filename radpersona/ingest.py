"""Ingest: read a source cohort, check it, and write the cohort table and raw NIfTI volumes.

Sources (``source.kind``):

- ``mrnet`` — the MRNet v1.0 layout (:mod:`radpersona.sources.mrnet`). MRNet ships no voxel spacing:
  volumes get a nominal 1 mm spacing.
- ``synthetic`` — the generated cohort (:mod:`radpersona.synthetic`), read through the MRNet reader.
- ``kneemri`` — the Rijeka KneeMRI dataset (:mod:`radpersona.sources.kneemri`): sagittal only,
  pickled volumes read with a restricted unpickler, a seeded patient-level train/valid split.
- ``manifest`` — a CSV of NIfTI files or DICOM series folders (:mod:`radpersona.sources.manifest`).

A source has the views it has (:func:`source_views`); the cohort table's path, shape and spacing
columns of an absent view are null. ``source.exclude`` leaves named cases out (e.g. an exam an
ingest error named as corrupted); they are recorded in the cohort table's Parquet metadata.

The workflow ingests per case (:func:`ingest_case_row`: raw volumes and a one-row record) and then
per cohort (:func:`assemble_cohort`: folds, the cohort table), so that ``snakemake --keep-going``
finishes every other case when one case's files are bad; :func:`ingest` does both in one call. A
failed case leaves none of its raw volumes behind. The files each case reads are known when the
workflow is parsed (:func:`list_cases`, :func:`source_table_files`), so its rule declares them.

Cohort table columns beyond the contract: ``shape_{view}`` (original array shape ``SxRxC``),
``spacing_{view}`` (original spacing in mm, ``SxRxC`` order, nominal ``1x1x1`` for MRNet and
KneeMRI), ``truth_dir`` (synthetic: :meth:`radpersona.layout.Layout.synthetic_truth_dir`), and for
KneeMRI ``knee``, ``acl_diagnosis``, ``roi_x``, ``roi_y``, ``roi_z``, ``roi_width``, ``roi_height``,
``roi_depth`` (the dataset's ROI box).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .layout import Layout
from .parquet import write_parquet
from .progress import Progress
from .settings import SourceSettings, SyntheticSettings, fail
from .sources.mrnet import MRNetLayout, check_mrnet_volumes, load_mrnet_volume, read_mrnet_labels
from .vocabulary import TASKS, VIEWS
from .volume import Spacing, write_volume

logger = logging.getLogger("radpersona")

COHORT_COLUMNS = [
    "case",
    "source",
    "split",
    "abn",
    "acl",
    "men",
    "path_sagittal",
    "path_coronal",
    "path_axial",
    "fold",
    "patient",
]


def assign_folds(cohort: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Patient-level folds on train (cases of one patient share a fold), stratified by label pattern.

    Returns an int array aligned with ``cohort``: fold in 0..n_folds-1 on train, -1 on valid. The
    workflow refuses fewer training cases than folds when it is parsed
    (:meth:`radpersona.settings.Settings.check_cohort`).
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(cohort), -1, dtype=int)
    train = np.flatnonzero(cohort["split"].to_numpy() == "train")
    sub = cohort.iloc[train]
    strata = (sub[["abn", "acl", "men"]].fillna(0).astype(int) * [4, 2, 1]).sum(axis=1).to_numpy()
    # strata rarer than the fold count cannot be stratified; merge them
    counts = pd.Series(strata).value_counts()
    strata = np.where(pd.Series(strata).map(counts).to_numpy() < n_folds, -1, strata)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(sub)), strata, groups=sub["patient"].to_numpy())):
        folds[train[held]] = k
    return folds


def source_views(source: SourceSettings) -> list[str]:
    """The views a source has, in the canonical order of :data:`radpersona.vocabulary.VIEWS`.

    MRNet and the synthetic cohort have all three; KneeMRI is sagittal only; a manifest has the view
    columns that hold paths (reads only the CSV: fast enough for workflow parsing).
    """
    if source.kind == "kneemri":
        from .sources.kneemri import VIEWS_KNEEMRI

        return list(VIEWS_KNEEMRI)
    if source.kind == "manifest":
        from .sources.manifest import read_manifest

        return read_manifest(str(source.manifest))[1]
    return list(VIEWS)


def source_tasks(source: SourceSettings) -> list[str]:
    """The tasks a source labels, in :data:`radpersona.vocabulary.TASKS` order; every per-task rule (fingerprint,
    baselines, metrics, tables, plots, report) expands over these.

    MRNet and the synthetic cohort label all three; KneeMRI only ``acl`` (``aclDiagnosis``); a manifest the
    label columns with at least one 0 or 1 (reads only the CSV: fast enough for workflow parsing).
    """
    if source.kind == "kneemri":
        from .sources.kneemri import TASKS_KNEEMRI

        return list(TASKS_KNEEMRI)
    if source.kind == "manifest":
        from .sources.manifest import read_manifest

        table = read_manifest(str(source.manifest))[0]
        return [task for task in TASKS if table[task].notna().any()]
    return list(TASKS)


def _mrnet_paths(table: pd.DataFrame, root: str) -> pd.DataFrame:
    """Add the ``path_{view}`` columns of an MRNet-layout table (case, split, ...)."""
    mrnet = MRNetLayout(root)
    for view in VIEWS:
        table[f"path_{view}"] = [mrnet.volume(sp, view, c) for sp, c in zip(table["split"], table["case"])]
    return table


def read_source(source: SourceSettings, cases: Collection[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read and check the source's case list and labels (not its volumes); return (table, views).

    Table columns: case, split, abn, acl, men (Int64, null where the source has no label), patient,
    ``path_{view}`` (the source file of each present view), and source-specific extras (KneeMRI:
    knee, acl_diagnosis, roi_*). Cases in ``source.exclude`` are left out. With ``cases``, only
    those cases' volume files are checked for existence (one ingest job per case) and only they are
    returned.

    Raises:
        InputDataError: bad labels, duplicate ids, a labelled case without a volume or a volume
            without a label, a missing view (each naming case, view, file and value).
        ConfigError: an excluded case that the source does not have.
    """
    exclude = list(source.exclude)
    if source.kind == "kneemri":
        from .sources.kneemri import VIEWS_KNEEMRI, read_metadata

        table = read_metadata(str(source.root), source.kneemri, cases=cases)
        table = table.rename(columns={"volume": "path_sagittal"})
        views = list(VIEWS_KNEEMRI)
    elif source.kind == "manifest":
        from .sources.manifest import read_manifest

        table, views = read_manifest(str(source.manifest), cases=cases)
        table = table.rename(columns={v: f"path_{v}" for v in views})
    else:  # synthetic, mrnet
        root = str(source.root)
        labels = read_mrnet_labels(root)
        skip = set(exclude) if cases is None else set(labels["case"]) - set(cases)
        check_mrnet_volumes(root, labels, skip)
        table = labels.copy()
        for task in TASKS:
            table[task] = table[task].astype("Int64")
        table["patient"] = table["case"]  # MRNet publishes no patient ids: one patient per exam
        table = _mrnet_paths(table, root)
        views = list(VIEWS)
    unknown = sorted(set(exclude) - set(table["case"]))
    if unknown:
        raise fail("source.exclude", f"case {unknown[0]!r} is not in the {source.kind} source")
    table = table[~table["case"].isin(exclude)]
    if cases is not None:
        table = table[table["case"].isin(set(cases))]
    table = table.reset_index(drop=True)
    for view in VIEWS:
        if f"path_{view}" not in table.columns:
            table[f"path_{view}"] = pd.Series([None] * len(table), dtype=object)
    return table, views


def list_cases(source: SourceSettings, synthetic: SyntheticSettings | None = None) -> pd.DataFrame:
    """Cases known when the workflow is parsed: columns case, split and ``path_{view}`` (source files).

    The synthetic cohort's cases follow from ``synthetic`` (n_train, n_valid; their files are written
    by the ``synthesize`` rule); an MRNet folder's from its label files (volume checks run in the
    ingest jobs, so that a bad case fails its own job); KneeMRI and a manifest are read and checked
    whole. ``path_{view}`` is null for a view the source lacks.
    """
    if source.kind == "synthetic":
        from .synthetic import cohort_cases

        if synthetic is None:
            raise ValueError("the synthetic source's cases follow from the synthetic settings; pass them")
        table = _mrnet_paths(cohort_cases(synthetic.n_train, synthetic.n_valid), str(source.root))
    elif source.kind == "mrnet":
        table = _mrnet_paths(read_mrnet_labels(str(source.root))[["case", "split"]], str(source.root))
    else:
        table = read_source(source)[0]
    table = table[~table["case"].isin(list(source.exclude))].reset_index(drop=True)
    return table[["case", "split", *(f"path_{v}" for v in VIEWS)]]


def source_table_files(source: SourceSettings) -> list[str]:
    """The source's tables that every case's ingest reads: MRNet's label CSVs, KneeMRI's metadata.csv,
    or the manifest."""
    if source.kind == "kneemri":
        return [str(Path(str(source.root)) / "metadata.csv")]
    if source.kind == "manifest":
        return [str(source.manifest)]
    return MRNetLayout(str(source.root)).label_files()


def load_source_volume(kind: str, path: str | Path, *, case: str, view: str) -> tuple[np.ndarray, Spacing]:
    """Load one source volume as float32 (slices, rows, cols) with its spacing (mm, same order)."""
    if kind == "kneemri":
        from .sources.kneemri import load_pck

        return load_pck(path, case=case, view=view), (1.0, 1.0, 1.0)
    if kind == "manifest":
        from .sources.manifest import read_image

        return read_image(path, case=case, view=view)
    return load_mrnet_volume(path, case=case, view=view), (1.0, 1.0, 1.0)  # synthetic, mrnet


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def ingest_case_row(kind: str, row: Mapping[str, Any], views: Sequence[str], layout: Layout) -> dict[str, Any]:
    """Load one case's views with the reader of source ``kind``, write ``layout.raw(case, view)``, return its
    cohort record (``row`` with ``source``, ``shape_{view}`` and ``spacing_{view}`` added).

    If any view fails, the raw volumes already written for this case are removed before the error
    propagates (nothing half-written stays behind).
    """
    case = str(row["case"])
    record: dict[str, Any] = {k: row[k] for k in row.keys()}
    record["source"] = kind
    written: list[Path] = []
    try:
        for view in views:
            src = row[f"path_{view}"]
            array, spacing = load_source_volume(kind, src, case=case, view=view)
            dst = Path(layout.raw(case, view))
            write_volume(dst, array, spacing, description=f"radpersona raw {kind} {case} {view}")
            written.append(dst)
            record[f"shape_{view}"] = _fmt(array.shape)
            record[f"spacing_{view}"] = _fmt(spacing)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    for view in VIEWS:
        record.setdefault(f"shape_{view}", None)
        record.setdefault(f"spacing_{view}", None)
    return record


def records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Per-case cohort records as a table (label columns Int64, path/shape/spacing columns object)."""
    frame = pd.DataFrame(list(records))
    for task in TASKS:
        frame[task] = frame[task].astype("Int64")
    for view in VIEWS:
        for col in (f"path_{view}", f"shape_{view}", f"spacing_{view}"):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def assemble_cohort(
    source: SourceSettings, records: pd.DataFrame, layout: Layout, *, folds: int, seed: int
) -> pd.DataFrame:
    """Add folds (``fingerprint.folds``, ``fingerprint.seed``) to the per-case records and write
    ``layout.cohort()`` (contract column order first); return the cohort."""
    cohort = records.sort_values("case", kind="stable").reset_index(drop=True)
    cohort = records_frame(cohort.to_dict("records"))
    cohort["fold"] = assign_folds(cohort, folds, seed)
    if source.kind == "synthetic":
        cohort["truth_dir"] = layout.synthetic_truth_dir()
    extra = [c for c in cohort.columns if c not in COHORT_COLUMNS]
    cohort = cohort[COHORT_COLUMNS + extra]
    meta: dict[str, Any] = {
        "source": source.kind,
        "root": source.root,
        "manifest": source.manifest,
        "exclude": list(source.exclude),
        "views": [v for v in VIEWS if cohort[f"path_{v}"].notna().any()],
        "fold_seed": seed,
        "folds": folds,
    }
    if source.kind == "kneemri":
        meta["kneemri"] = source.kneemri.to_config()
    write_parquet(cohort, layout.cohort(), metadata=meta)
    logger.info(
        "ingest: %d cases (%s), %d train / %d valid",
        len(cohort),
        source.kind,
        (cohort["split"] == "train").sum(),
        (cohort["split"] == "valid").sum(),
    )
    if source.kind == "mrnet":
        logger.info("ingest: MRNet's public 'valid' split is its tuning set, not the paper's hidden test set")
    return cohort


def ingest(source: SourceSettings, layout: Layout, *, folds: int, seed: int) -> pd.DataFrame:
    """Read the source, check it, write raw NIfTI volumes and the cohort table (all cases in one call).

    Writes ``layout.raw(case, view)`` for each view the source has (float32, the source's spacing or
    a nominal 1 mm) and ``layout.cohort()`` (contract columns, plus ``shape_{view}`` and
    ``spacing_{view}``). On an error no raw volume written by this call and no cohort table remain.
    """
    table, views = read_source(source)
    records = []
    bar = Progress("ingest", total=len(table), unit="cases")
    try:
        for row in table.to_dict("records"):
            records.append(ingest_case_row(source.kind, row, views, layout))
            bar.update(1)
        return assemble_cohort(source, records_frame(records), layout, folds=folds, seed=seed)
    except BaseException:
        for record in records:
            for view in views:
                Path(layout.raw(record["case"], view)).unlink(missing_ok=True)
        raise


def source_directions(source: SourceSettings, cases: pd.DataFrame, views: Sequence[str]) -> dict[str, list[float]]:
    """Per view, the direction cosines of the cohort's source images: the identity for sources whose arrays
    carry none (MRNet, KneeMRI, synthetic), else the header of the first case's file (a manifest; a cohort is
    expected in one orientation, see :mod:`radpersona.sources.manifest`). A bundle records them, and
    ``radpersona diagnose`` refuses an exam in another orientation."""
    from .sources.manifest import IDENTITY_DIRECTION, image_direction

    if source.kind != "manifest" or not len(cases):
        return {view: list(IDENTITY_DIRECTION) for view in views}
    first = cases.iloc[0]
    return {view: list(image_direction(first[f"path_{view}"], case=str(first["case"]), view=view)) for view in views}
