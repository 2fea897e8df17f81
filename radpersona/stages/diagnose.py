"""``radpersona diagnose``: explain one new exam with a model bundle, through the stages the workflow runs.

For the exam (one NIfTI file or DICOM series folder per view) it runs, in a temporary results folder
laid out like the workflow's (:class:`radpersona.layout.Layout`): the ingest reader and its checks
(:func:`radpersona.ingest.load_source_volume`, plus the orientation the bundle's cohort had), the
``preprocess`` and ``register`` stages against the bundle's references (a registration that fails QC
is an error here, whatever ``registration.on_failure`` says: one exam has no cohort to be kept in),
persona sampling with the bundle's DDPM and the seed the workflow derives for the case id
(:func:`radpersona.persona.sample.derive_case_seed`), the ``extract_features`` and ``assemble_features``
stages, the fingerprint model's prediction with the training means for missing values and the threshold
the workflow applied, and the explanation page. Only when every step has succeeded is the output folder
(:class:`radpersona.layout.ExamLayout`) renamed into place; on an error nothing is left behind.

An exam of the training cohort given with its case id (``--case``) gets the workflow's numbers for that
case when the workflow's persona of it came from the bundle's DDPM (the valid cases; a cross-fitted
training case's persona came from its fold's DDPM): the same raw, preprocessed and registered volumes bit
for bit, a persona within about one float32 ulp of the batched one (measured: 1.2e-7; the sampler's
batch independence is not bit-exact here), hence the same selected features and the probability to ~1e-7.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from radpersona.bundle import VerifiedBundle, verify_bundle
from radpersona.errors import InputDataError
from radpersona.layout import ExamLayout, Layout
from radpersona.parquet import write_parquet
from radpersona.vocabulary import TASKS, VIEWS

logger = logging.getLogger("radpersona")

CASE_ID = re.compile(r"[A-Za-z0-9_-]+")
"""What a case id may hold (it names files, and seeds the persona)."""

EXAM_SPLIT = "exam"
"""The ``split`` of a diagnosed exam in its prediction and fingerprint tables (it is in no split of the cohort)."""

# a direction cosine differs when its rounding to the nearest axis does (a permuted or flipped axis,
# not a few degrees of obliquity)
_ORIENTATION_TOLERANCE = 0.5


def check_exam(bundle: VerifiedBundle, exam: Mapping[str, str | Path], case: str) -> dict[str, Path]:
    """The exam's files per view, checked against the bundle: every view it needs and no other, files that
    exist, in the orientation of the bundle's cohort, and a usable case id.

    Raises:
        InputDataError: naming the view, the file and the bad value.
    """
    from radpersona.sources.manifest import image_direction, orientation_code

    if not CASE_ID.fullmatch(case):
        raise InputDataError("case id may hold only letters, digits, - and _", case=case, value=case)
    needed = list(bundle.config["views"])
    unknown = sorted(set(exam) - set(VIEWS))
    if unknown:
        raise InputDataError(f"no such view; views are {list(VIEWS)}", view=unknown[0])
    missing = [v for v in needed if v not in exam]
    if missing:
        raise InputDataError(
            f"the bundle's model needs view(s) {needed}; give --{missing[0]}",
            case=case,
            view=missing[0],
            path=bundle.files.root,
        )
    extra = [v for v in exam if v not in needed]
    if extra:
        raise InputDataError(
            f"the bundle's model has no view {extra[0]!r} (it reads {needed})",
            case=case,
            view=extra[0],
            path=exam[extra[0]],
        )
    files = {}
    for view in needed:
        path = Path(exam[view])
        if not path.exists():
            raise InputDataError("file not found", case=case, view=view, path=path)
        direction = np.asarray(image_direction(path, case=case, view=view))
        expected = np.asarray(bundle.config["directions"][view], dtype=np.float64)
        if np.abs(np.round(direction) - np.round(expected)).max() > _ORIENTATION_TOLERANCE:
            raise InputDataError(
                f"orientation {orientation_code(tuple(direction))} (direction cosines "
                f"{np.round(direction, 3).tolist()}) differs from the training cohort's "
                f"{orientation_code(tuple(expected))} ({expected.tolist()}); resample the image to it",
                case=case,
                view=view,
                path=path,
                value=orientation_code(tuple(direction)),
            )
        files[view] = path
    return files


def diagnose(
    *,
    bundle: str | Path,
    exam: Mapping[str, str | Path],
    out: str | Path,
    case: str = "exam",
    threads: int | None = None,
) -> dict[str, Any]:
    """Explain one exam with a bundle; write ``ExamLayout(out)`` (prediction, fingerprint, registration QC,
    explanation page) atomically.

    Args:
        bundle: a bundle folder (``results/bundle/{experiment}_{task}``, or a copy).
        exam: view -> NIfTI file or DICOM series folder.
        out: the output folder (must not exist).
        case: the exam's id (names its files and seeds its persona, as a cohort case id does).
        threads: torch CPU threads of persona sampling and the fingerprint (default: the bundle's
            ``torch_threads``, ``resources.torch_threads`` of the run; registration and radiomics run
            on one thread, as their rules do, so that an exam of the cohort gets the workflow's numbers).

    Returns:
        A record: ``case, experiment, task, prob, threshold, pred, logit, n_used, seconds``.

    Raises:
        InputDataError: a bundle that does not match its manifest or this installation, a missing or
            extra view, an unreadable file, a wrong orientation or dimensionality, non-finite voxels, a
            folder with several DICOM series, a registration that fails QC.
    """
    start = time.perf_counter()
    verified = verify_bundle(bundle)
    files = check_exam(verified, exam, case)
    out = Path(out)
    if out.exists():
        raise InputDataError("output folder exists; give a new --out", path=out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        record = _run(verified, files, case, work, int(threads or verified.config.get("torch_threads", 1)))
        os.replace(work / "out", out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record["seconds"] = time.perf_counter() - start
    return record


def _run(bundle: VerifiedBundle, files: Mapping[str, Path], case: str, work: Path, threads: int) -> dict[str, Any]:
    """Every step of :func:`diagnose` in ``work`` (results in ``work/results``, outputs in ``work/out``)."""
    from radpersona.explain import ExplainSettings, explain_case
    from radpersona.features import read_wide
    from radpersona.fingerprint import TrainedFingerprint, fingerprint_table, impute
    from radpersona.ingest import ingest_case_row, records_frame
    from radpersona.persona.sample import derive_case_seed, sample_personas
    from radpersona.settings import PersonaSampleSettings, PreprocessSettings, RegistrationSettings, ReportSettings
    from radpersona.stages import torch_threads
    from radpersona.stages.features import assemble_features, extract_features
    from radpersona.stages.fingerprint import prediction_frame
    from radpersona.stages.persona import write_personas
    from radpersona.stages.preprocess import preprocess
    from radpersona.stages.register import register
    from radpersona.volume import load_stack

    cfg = bundle.config
    views = list(cfg["views"])
    reg, grid = str(cfg["reg"]), int(cfg["grid"])
    experiment, task = str(cfg["experiment"]), str(cfg["task"])
    box = [float(b) for b in cfg["persona"]["box"]]
    layout = Layout(str(work / "results"))
    result = ExamLayout(str(work / "out"))
    Path(result.root).mkdir(parents=True)
    torch_threads(threads)

    # ingest: the reader (and checks) of a manifest cohort's files, as rule ingest_case runs it
    row: dict[str, Any] = {"case": case, "split": EXAM_SPLIT, "patient": case, "fold": -1}
    row.update({task_: None for task_ in TASKS})
    row.update({f"path_{view}": (str(files[view]) if view in files else None) for view in VIEWS})
    record = ingest_case_row("manifest", row, views, layout)
    record["source"] = "exam"
    write_parquet(records_frame([record]), layout.cohort())

    preprocess(case=case, views=views, settings=cfg["preprocess"], results=layout.root)
    if reg == "reg":
        for view in views:
            Path(layout.reference(view)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(bundle.files.reference(view), layout.reference(view))
        strict = RegistrationSettings.from_config(cfg["registration"]).replace(on_failure="error")
        register(case=case, views=views, settings=strict, results=layout.root, threads=1)  # as the rule runs it
        shutil.copyfile(layout.qc_case(case), result.qc())

    # persona: the bundle's DDPM (all healthy training cases), the seed the workflow derives for this case id
    sample = PersonaSampleSettings.from_config(cfg["persona"]["sample"])
    stack, spacings = load_stack([[layout.working(reg, case, v) for v in views]], [case], views)
    seeds = [derive_case_seed(sample.seed, case)]
    personas = sample_personas(
        stack,
        checkpoint=Path(bundle.files.ddpm()),
        sample=sample,
        box=box,
        seeds=seeds,
        device=str(cfg["persona"]["device"]),
    )
    write_personas(layout, reg, [case], views, stack, personas, spacings, sample, seeds)

    features = layout.features(reg, grid, case)
    extract_features(
        results=layout.root,
        reg=reg,
        grid=grid,
        case=case,
        out=features,
        radiomics=cfg["radiomics"],
        box=box,
        normalisation=cfg["preprocess"]["normalisation"],
        threads=1,  # as the rule runs it
        views=views,
    )
    assemble_features(
        parts=[features],
        out=layout.wide(reg, grid),
        radiomics=cfg["radiomics"],
        grid=grid,
        box=box,
        normalisation=cfg["preprocess"]["normalisation"],
    )

    # fingerprint: the model trained on all of train, its training means for missing values, the run's threshold
    torch_threads(threads)  # extract_features set one
    model = TrainedFingerprint.load(Path(bundle.files.fingerprint_model()))
    wide, _ = read_wide(layout.wide(reg, grid))
    absent = [f for f in model.feature_names if f not in wide.columns]
    if absent:
        raise InputDataError(
            f"{len(absent)} of the model's features were not extracted, e.g. {absent[0]!r}",
            case=case,
            path=bundle.files.fingerprint_model(),
        )
    imputation = pd.read_parquet(bundle.files.imputation())
    if imputation["feature"].tolist() != list(model.feature_names):
        raise InputDataError("imputation means do not follow the model's features", path=bundle.files.imputation())
    X = impute(wide.loc[[case], model.feature_names].to_numpy(np.float64), imputation["mean"].to_numpy(np.float64))
    pred = model.predict(stack, X)
    threshold = float(cfg["threshold"])
    predictions = prediction_frame(
        [case],
        [EXAM_SPLIT],
        pd.array([pd.NA], dtype="Int64"),
        pred,
        task=task,
        fold=-1,
        threshold=threshold,
        threshold_from=str(cfg["threshold_from"]),
        experiment=experiment,
        model=model,
    )
    fingerprint = fingerprint_table([case], task, pred, model)
    fingerprint.insert(2, "fold", -1)
    fingerprint.insert(3, "split", EXAM_SPLIT)
    meta = {"experiment": experiment, "task": task, "bundle": str(bundle.files.root), "seed": seeds[0]}
    for target in (layout.predictions(experiment, task), result.prediction()):
        write_parquet(predictions, target, metadata=meta)
    for target in (layout.fingerprints(experiment, task), result.fingerprint()):
        write_parquet(fingerprint, target, metadata=meta)

    # the page, read through the workflow's layout like `radpersona explain`
    Path(layout.fingerprint_model(experiment, task, "all")).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(bundle.files.fingerprint_model(), layout.fingerprint_model(experiment, task, "all"))
    crop = PreprocessSettings.from_config(cfg["preprocess"]).crop
    page = ExplainSettings.from_settings(
        ReportSettings.from_config(cfg["report"]), reg=reg, grid=grid, box=box, crop=crop
    )
    explained = explain_case(layout, case, task, experiment, page, result.explanation())
    return {
        "case": case,
        "experiment": experiment,
        "task": task,
        "prob": float(pred["prob"][0]),
        "threshold": threshold,
        "pred": int(predictions["pred"].iloc[0]),
        "logit": float(pred["logit"][0]),
        "n_used": int(pred["n_used"][0]),
        "highlighted": cast(int, explained["highlighted"]),
    }
