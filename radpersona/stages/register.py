"""Stages of rules/register.smk: per-view references, reg_aladin per case, the QC table."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from radpersona.layout import Layout
from radpersona.parquet import write_parquet
from radpersona.registration import (
    QC_COLUMNS,
    build_template,
    niftyreg_version,
    reference_case,
    register_volume,
    template_members,
)
from radpersona.settings import RegistrationSettings
from radpersona.volume import read_volume, write_json_atomic, write_volume

logger = logging.getLogger("radpersona")


def reference(*, view: str, settings: Mapping[str, Any] | RegistrationSettings, results: str, threads: int = 1) -> None:
    """Rule ``reference``: the registration reference of ``view`` and its JSON provenance sidecar.

    Reads the cohort table and the preprocessed volumes of the reference case (``reference: case``)
    or of the template's members (``template``); writes ``reference(view)`` and
    ``reference_sidecar(view)`` of ``Layout(results)``.
    """
    settings = RegistrationSettings.from_config(settings)
    layout = Layout(results)
    cohort = pd.read_parquet(layout.cohort())
    start = reference_case(cohort, settings.reference_case)
    initial = Path(layout.pre(start, view))
    out = layout.reference(view)
    provenance: dict[str, Any] = {"view": view, "kind": settings.reference, "initial_case": start}
    if settings.reference == "case":
        array, spacing = read_volume(initial, case=start, view=view)
        write_volume(out, array, spacing, description=f"radpersona reference {view} case {start}")
        logger.info("reference for %s: case %s", view, start)
    else:  # template
        chosen = template_members(cohort, settings)
        provenance.update(
            {
                "members": chosen,
                "seed": settings.seed,
                "template_cases": settings.template_cases,
                "template_iterations": settings.template_iterations,
            }
        )
        members = {c: Path(layout.pre(c, view)) for c in chosen}
        provenance.update(
            build_template(
                initial,
                members,
                out,
                settings=settings,
                view=view,
                iterations=settings.template_iterations,
                threads=threads,
            )
        )
    provenance["reg_aladin"] = niftyreg_version("reg_aladin")
    write_json_atomic(layout.reference_sidecar(view), provenance)


def register(
    *,
    case: str,
    views: Sequence[str],
    settings: Mapping[str, Any] | RegistrationSettings,
    results: str,
    threads: int = 1,
) -> None:
    """Rule ``register``: register each view of one case to its reference; write the case's QC rows.

    Reads ``pre(case, view)`` and ``reference(view)``; writes ``registered(case, view)``,
    ``affine(case, view)`` and ``qc_case(case)`` of ``Layout(results)``. On an error, the views
    already registered are removed again.
    """
    settings = RegistrationSettings.from_config(settings)
    layout = Layout(results)
    records = []
    written: list[Path] = []
    try:
        for view in views:
            ref, res, aff = layout.reference(view), layout.registered(case, view), layout.affine(case, view)
            record = register_volume(
                ref, layout.pre(case, view), res, aff, settings=settings, case=case, view=view, threads=threads
            )
            written += [Path(res), Path(aff)]
            record["reference"] = str(ref)
            records.append(record)
        write_parquet(
            pd.DataFrame(records),
            layout.qc_case(case),
            metadata={"settings": settings.to_config(), "reg_aladin": niftyreg_version()},
        )
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def registration_qc(*, parts: Sequence[str], results: str) -> None:
    """Rule ``registration_qc``: gather per-case QC rows (``parts``) into ``qc()`` of ``Layout(results)``;
    log the mean NCC before/after per view."""
    qc = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    extra = [c for c in qc.columns if c not in QC_COLUMNS]
    qc = qc[QC_COLUMNS + extra].sort_values(["case", "view"], kind="stable").reset_index(drop=True)
    write_parquet(qc, Layout(results).qc())
    for view, grp in qc.groupby("view"):
        logger.info(
            "registration %s: mean NCC %.3f -> %.3f, %d of %d flagged",
            view,
            grp["ncc_before"].mean(),
            grp["ncc_after"].mean(),
            int(grp["flagged"].sum()),
            len(grp),
        )
