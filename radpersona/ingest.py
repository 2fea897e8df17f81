"""Ingest: read a source cohort, check it, and write the cohort table and raw NIfTI volumes.

Sources (``source.kind``):

- ``mrnet`` — the MRNet v1.0 layout: ``{train,valid}/{axial,coronal,sagittal}/NNNN.npy`` (uint8,
  (slices, 256, 256)) and ``{train,valid}-{abnormal,acl,meniscus}.csv`` (no header: ``id,label``).
  MRNet's public ``valid`` split (120 exams) is its *tuning* set, not the paper's hidden test set;
  outputs call it ``valid``. MRNet ships no voxel spacing: volumes get a nominal 1 mm spacing.
- ``synthetic`` — the generated cohort (:mod:`radpersona.synthetic`), read through the MRNet reader.
- ``kneemri`` — the Rijeka KneeMRI dataset (:mod:`radpersona.sources.kneemri`): sagittal only,
  pickled volumes read with a restricted unpickler, a seeded patient-level train/valid split.
- ``manifest`` — a CSV of NIfTI files or DICOM series folders (:mod:`radpersona.sources.manifest`).

A source has the views it has (:func:`source_views`); the cohort table's path, shape and spacing
columns of an absent view are null. ``source.exclude`` leaves named cases out (e.g. an exam an
ingest error named as corrupted); they are recorded in the cohort table's Parquet metadata.

Ingest runs per case (:func:`stage_ingest_case`: raw volumes and a one-row record) and then per
cohort (:func:`stage_cohort`: folds, the cohort table), so that ``snakemake --keep-going`` finishes
every other case when one case's files are bad. :func:`ingest` does both in one call. A failed case
leaves none of its raw volumes behind.

Cohort table columns beyond the contract: ``shape_{view}`` (original array shape ``SxRxC``),
``spacing_{view}`` (original spacing in mm, ``SxRxC`` order, nominal ``1x1x1`` for MRNet and
KneeMRI), ``truth_dir`` (synthetic), and for KneeMRI ``knee``, ``acl_diagnosis``, ``roi_x``,
``roi_y``, ``roi_z``, ``roi_width``, ``roi_height``, ``roi_depth`` (the dataset's ROI box).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import VIEWS
from .errors import ConfigError, InputDataError
from .parquet import write_parquet
from .progress import Progress
from .volume import check_source_array, write_volume

logger = logging.getLogger("radpersona")

MRNET_LABEL_FILES = {"abn": "abnormal", "acl": "acl", "men": "meniscus"}
SPLITS = ("train", "valid")
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


def _read_label_csv(path: Path, task: str) -> pd.Series:
    """Read one MRNet label file (no header, ``id,label``) into a Series indexed by 4-digit id."""
    if not path.exists():
        raise InputDataError("label file is missing", path=path)
    try:
        frame = pd.read_csv(path, header=None, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot parse label file: {exc}", path=path) from None
    if frame.shape[1] != 2:
        raise InputDataError(
            "label file must have two columns (id,label) and no header", path=path, value=frame.shape[1]
        )
    ids = frame[0].str.strip()
    bad_id = ids[~ids.str.fullmatch(r"\d+")]
    if len(bad_id):
        raise InputDataError("case id is not a number (is there a header line?)", path=path, value=bad_id.iloc[0])
    ids = ids.str.zfill(4)
    dup = ids[ids.duplicated()]
    if len(dup):
        raise InputDataError("duplicate case id in label file", case=dup.iloc[0], path=path, value=dup.iloc[0])
    labels = frame[1].str.strip()
    bad = ~labels.isin(["0", "1"])
    if bad.any():
        raise InputDataError(
            f"{task} label must be 0 or 1", case=ids[bad].iloc[0], path=path, value=labels[bad].iloc[0]
        )
    return pd.Series(labels.astype(int).to_numpy(), index=ids.to_numpy(), name=task)


def read_mrnet_labels(root: str | Path) -> pd.DataFrame:
    """Read all MRNet label files under ``root``: columns case, split, abn, acl, men.

    Raises:
        InputDataError: missing or malformed label files, duplicate ids, non-binary labels, ids that
            differ between the three label files of a split, or an id present in both splits.
    """
    root = Path(root)
    frames = []
    for split in SPLITS:
        series = [_read_label_csv(root / f"{split}-{name}.csv", task) for task, name in MRNET_LABEL_FILES.items()]
        reference = set(series[0].index)
        for s, (_task, name) in zip(series[1:], list(MRNET_LABEL_FILES.items())[1:]):
            diff = reference.symmetric_difference(s.index)
            if diff:
                case = sorted(diff)[0]
                raise InputDataError(
                    f"case ids differ between {split}-abnormal.csv and {split}-{name}.csv",
                    case=case,
                    path=root / f"{split}-{name}.csv",
                    value=case,
                )
        frame = pd.concat(series, axis=1)
        frame.index.name = "case"
        frame = frame.reset_index()
        frame.insert(1, "split", split)
        frames.append(frame)
    labels = pd.concat(frames, ignore_index=True)
    dup = labels["case"][labels["case"].duplicated()]
    if len(dup):
        raise InputDataError("case id appears in both train and valid", case=dup.iloc[0], path=root, value=dup.iloc[0])
    implied = labels[((labels["acl"] == 1) | (labels["men"] == 1)) & (labels["abn"] == 0)]
    if len(implied):
        logger.warning(
            "%d cases have an ACL or meniscal tear but abn = 0 (e.g. case %s)", len(implied), implied["case"].iloc[0]
        )
    return labels.sort_values("case", kind="stable").reset_index(drop=True)


def mrnet_volume_path(root: str | Path, split: str, view: str, case: str) -> Path:
    """Path of one MRNet volume."""
    return Path(root) / split / view / f"{case}.npy"


def check_mrnet_volumes(root: str | Path, labels: pd.DataFrame, exclude: Collection[str] = ()) -> None:
    """Check that every labelled case has all three views and every volume file has a label.

    Cases in ``exclude`` need not have their volumes (they are left out of the cohort).
    """
    root = Path(root)
    known = {(row.split, row.case) for row in labels.itertuples()}
    for row in labels.itertuples():
        if row.case in exclude:
            continue
        for view in VIEWS:
            path = mrnet_volume_path(root, row.split, view, row.case)
            if not path.exists():
                raise InputDataError("volume file is missing for a labelled case", case=row.case, view=view, path=path)
    for split in SPLITS:
        for view in VIEWS:
            folder = root / split / view
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.npy")):
                if (split, path.stem.zfill(4)) not in known:
                    raise InputDataError(
                        f"volume has no label in {split}-abnormal.csv",
                        case=path.stem,
                        view=view,
                        path=path,
                        value=path.stem,
                    )


def load_mrnet_volume(path: str | Path, *, case: str, view: str) -> np.ndarray:
    """Load one MRNet ``.npy`` volume safely (no pickles) and check it is a finite 3-D array."""
    path = Path(path)
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"cannot read .npy volume ({exc})", case=case, view=view, path=path) from None
    return check_source_array(array, case=case, view=view, path=path)


def assign_folds(cohort: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Patient-level folds on train (cases of one patient share a fold), stratified by label pattern.

    Returns an int array aligned with ``cohort``: fold in 0..n_folds-1 on train, -1 on valid.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    folds = np.full(len(cohort), -1, dtype=int)
    train = np.flatnonzero(cohort["split"].to_numpy() == "train")
    if len(train) < n_folds:
        raise ConfigError(
            f"config key 'fingerprint.folds': {n_folds} folds need at least as many training cases, got {len(train)}"
        )
    sub = cohort.iloc[train]
    strata = (sub[["abn", "acl", "men"]].fillna(0).astype(int) * [4, 2, 1]).sum(axis=1).to_numpy()
    # strata rarer than the fold count cannot be stratified; merge them
    counts = pd.Series(strata).value_counts()
    strata = np.where(pd.Series(strata).map(counts).to_numpy() < n_folds, -1, strata)
    splitter = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (_, held) in enumerate(splitter.split(np.zeros(len(sub)), strata, groups=sub["patient"].to_numpy())):
        folds[train[held]] = k
    return folds


def source_views(config: Mapping[str, Any]) -> list[str]:
    """The views a source has, in the canonical order of :data:`radpersona.VIEWS`.

    MRNet and the synthetic cohort have all three; KneeMRI is sagittal only; a manifest has the view
    columns that hold paths (reads only the CSV: fast enough for workflow parsing).
    """
    kind = config["source"]["kind"]
    if kind in ("synthetic", "mrnet"):
        return list(VIEWS)
    if kind == "kneemri":
        from .sources.kneemri import VIEWS_KNEEMRI

        return list(VIEWS_KNEEMRI)
    if kind == "manifest":
        from .sources.manifest import read_manifest

        return read_manifest(_manifest_path(config))[1]
    raise ConfigError(f"config key 'source.kind': {kind!r} is not one of synthetic, mrnet, kneemri, manifest")


def _manifest_path(config: Mapping[str, Any]) -> Path:
    path = config["source"].get("manifest")
    if not path:
        raise ConfigError("config key 'source.manifest': a CSV path is required for source.kind 'manifest'")
    return Path(path)


def _exclude(config: Mapping[str, Any]) -> list[str]:
    return [str(c) for c in config["source"].get("exclude", []) or []]


def read_source(config: Mapping[str, Any], cases: Collection[str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Read and check the source's case list and labels (not its volumes); return (table, views).

    Table columns: case, split, abn, acl, men (Int64, null where the source has no label), patient,
    ``path_{view}`` (the source file of each present view), and source-specific extras (KneeMRI:
    knee, acl_diagnosis, roi_*). Cases in ``source.exclude`` are left out. With ``cases``, only
    those cases' volume files are checked for existence (MRNet layout; one ingest job per case) and
    only they are returned.

    Raises:
        InputDataError: bad labels, duplicate ids, a labelled case without a volume or a volume
            without a label, a missing view (each naming case, view, file and value).
        ConfigError: an unknown kind, or an excluded case that the source does not have.
    """
    kind = config["source"]["kind"]
    exclude = _exclude(config)
    if kind in ("synthetic", "mrnet"):
        root = Path(config["source"]["root"])
        labels = read_mrnet_labels(root)
        skip = set(exclude) if cases is None else set(labels["case"]) - set(cases)
        check_mrnet_volumes(root, labels, skip)
        table = labels.copy()
        for task in ("abn", "acl", "men"):
            table[task] = table[task].astype("Int64")
        table["patient"] = table["case"]  # MRNet publishes no patient ids: one patient per exam
        for view in VIEWS:
            table[f"path_{view}"] = [
                str(mrnet_volume_path(root, sp, view, c)) for sp, c in zip(table["split"], table["case"])
            ]
        views = list(VIEWS)
    elif kind == "kneemri":
        from .sources.kneemri import VIEWS_KNEEMRI, read_metadata

        table = read_metadata(config["source"]["root"], config["source"]["kneemri"])
        table = table.rename(columns={"volume": "path_sagittal"})
        views = list(VIEWS_KNEEMRI)
    elif kind == "manifest":
        from .sources.manifest import read_manifest

        table, views = read_manifest(_manifest_path(config))
        table = table.rename(columns={v: f"path_{v}" for v in views})
    else:
        raise ConfigError(f"config key 'source.kind': {kind!r} is not one of synthetic, mrnet, kneemri, manifest")
    unknown = sorted(set(exclude) - set(table["case"]))
    if unknown:
        raise ConfigError(f"config key 'source.exclude': case {unknown[0]!r} is not in the {kind} source")
    table = table[~table["case"].isin(exclude)]
    if cases is not None:
        table = table[table["case"].isin(set(cases))]
    table = table.reset_index(drop=True)
    for view in VIEWS:
        if f"path_{view}" not in table.columns:
            table[f"path_{view}"] = pd.Series([None] * len(table), dtype=object)
    return table, views


def list_cases(config: Mapping[str, Any]) -> pd.DataFrame:
    """Cases and splits known when the workflow is parsed (columns case, split)."""
    kind = config["source"]["kind"]
    if kind == "synthetic":
        n_train, n_valid = config["synthetic"]["n_train"], config["synthetic"]["n_valid"]
        cases = [f"{i:04d}" for i in range(n_train + n_valid)]
        table = pd.DataFrame({"case": cases, "split": ["train"] * n_train + ["valid"] * n_valid})
        return table[~table["case"].isin(_exclude(config))].reset_index(drop=True)
    if kind == "mrnet":
        # labels only: volume checks run in the ingest jobs (a bad case fails its own job)
        labels = read_mrnet_labels(config["source"]["root"])[["case", "split"]]
        return labels[~labels["case"].isin(_exclude(config))].reset_index(drop=True)
    return read_source(config)[0][["case", "split"]]


def load_source_volume(
    kind: str, path: str | Path, *, case: str, view: str
) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Load one source volume as float32 (slices, rows, cols) with its spacing (mm, same order)."""
    if kind in ("synthetic", "mrnet"):
        return load_mrnet_volume(path, case=case, view=view), (1.0, 1.0, 1.0)
    if kind == "kneemri":
        from .sources.kneemri import load_pck

        return load_pck(path, case=case, view=view), (1.0, 1.0, 1.0)
    if kind == "manifest":
        from .sources.manifest import read_image

        return read_image(path, case=case, view=view)
    raise ConfigError(f"config key 'source.kind': {kind!r} is not one of synthetic, mrnet, kneemri, manifest")


def _fmt(values: Sequence[float]) -> str:
    return "x".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


def ingest_case_row(
    config: Mapping[str, Any], row: Mapping[str, Any], views: Sequence[str], raw_dir: str | Path
) -> dict[str, Any]:
    """Load one case's views, write ``raw_dir/{case}_{view}.nii.gz``, return its cohort record.

    If any view fails, the raw volumes already written for this case are removed before the error
    propagates (nothing half-written stays behind).
    """
    kind = config["source"]["kind"]
    case = str(row["case"])
    record: dict[str, Any] = {k: row[k] for k in row.keys()}
    record["source"] = kind
    written: list[Path] = []
    try:
        for view in views:
            src = row[f"path_{view}"]
            array, spacing = load_source_volume(kind, src, case=case, view=view)
            dst = Path(raw_dir) / f"{case}_{view}.nii.gz"
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


def stage_ingest_case(config: Mapping[str, Any], case: str, raw: Sequence[str], record_out: str | Path) -> None:
    """Rule ``ingest_case``: one case's raw volumes (``raw``: one path per source view) and its record."""
    match, views = read_source(config, cases=[case])
    if not len(match):
        raise InputDataError("case is not in the source (or is excluded)", case=case, value=case)
    expected = [f"{case}_{v}.nii.gz" for v in views]
    if [Path(p).name for p in raw] != expected:
        raise ConfigError(f"rule ingest_case: raw outputs {list(raw)} do not match the source views {views}")
    raw_dir = Path(raw[0]).parent
    try:
        record = ingest_case_row(config, match.iloc[0].to_dict(), views, raw_dir)
    except InputDataError as err:
        # the way on without this case: `snakemake --keep-going` has finished the others' ingest and preprocessing
        err.args = (f"{err.args[0]}; to run the cohort without it, add {case!r} to the config key source.exclude",)
        raise
    try:
        write_parquet(_records_frame([record]), record_out)
    except BaseException:
        for p in raw:
            Path(p).unlink(missing_ok=True)
        raise


def _records_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(records))
    for task in ("abn", "acl", "men"):
        frame[task] = frame[task].astype("Int64")
    for view in VIEWS:
        for col in (f"path_{view}", f"shape_{view}", f"spacing_{view}"):
            frame[col] = frame[col].astype(object).where(frame[col].notna(), None)
    return frame


def assemble_cohort(
    config: Mapping[str, Any], records: pd.DataFrame, cohort_path: str | Path, truth_dir: str | Path | None = None
) -> pd.DataFrame:
    """Add folds to the per-case records and write the cohort table (contract column order first)."""
    kind = config["source"]["kind"]
    cohort = records.sort_values("case", kind="stable").reset_index(drop=True)
    cohort = _records_frame(cohort.to_dict("records"))
    cohort["fold"] = assign_folds(cohort, config["fingerprint"]["folds"], config["fingerprint"]["seed"])
    if kind == "synthetic" and truth_dir is not None:
        cohort["truth_dir"] = str(truth_dir)
    extra = [c for c in cohort.columns if c not in COHORT_COLUMNS]
    cohort = cohort[COHORT_COLUMNS + extra]
    meta = {
        "source": kind,
        "root": config["source"].get("root"),
        "manifest": config["source"].get("manifest"),
        "exclude": _exclude(config),
        "views": [v for v in VIEWS if cohort[f"path_{v}"].notna().any()],
        "fold_seed": config["fingerprint"]["seed"],
        "folds": config["fingerprint"]["folds"],
    }
    if kind == "kneemri":
        meta["kneemri"] = dict(config["source"]["kneemri"])
    write_parquet(cohort, cohort_path, metadata=meta)
    logger.info(
        "ingest: %d cases (%s), %d train / %d valid",
        len(cohort),
        kind,
        (cohort["split"] == "train").sum(),
        (cohort["split"] == "valid").sum(),
    )
    if kind == "mrnet":
        logger.info("ingest: MRNet's public 'valid' split is its tuning set, not the paper's hidden test set")
    return cohort


def stage_cohort(
    config: Mapping[str, Any], records: Sequence[str], cohort_path: str | Path, truth_dir: str | Path | None = None
) -> None:
    """Rule ``ingest``: gather the per-case records into ``cohort.parquet`` with patient-level folds."""
    frames = [pd.read_parquet(p) for p in records]
    assemble_cohort(config, pd.concat(frames, ignore_index=True), cohort_path, truth_dir)


def ingest(
    config: Mapping[str, Any], *, cohort_path: str | Path, raw_dir: str | Path, truth_dir: str | Path | None = None
) -> pd.DataFrame:
    """Read the source, check it, write raw NIfTI volumes and the cohort table (all cases in one call).

    Writes ``raw_dir/{case}_{view}.nii.gz`` for each view the source has (float32, the source's
    spacing or a nominal 1 mm) and the cohort Parquet (contract columns, plus ``shape_{view}`` and
    ``spacing_{view}``). On an error no raw volume written by this call and no cohort table remain.
    """
    table, views = read_source(config)
    raw_dir = Path(raw_dir)
    raw_dir.mkdir(parents=True, exist_ok=True)
    records = []
    bar = Progress("ingest", total=len(table), unit="cases")
    try:
        for row in table.to_dict("records"):
            records.append(ingest_case_row(config, row, views, raw_dir))
            bar.update(1)
        return assemble_cohort(config, _records_frame(records), cohort_path, truth_dir)
    except BaseException:
        for record in records:
            for view in views:
                (raw_dir / f"{record['case']}_{view}.nii.gz").unlink(missing_ok=True)
        raise
