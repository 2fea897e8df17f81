"""Population summary of one experiment's fingerprints for one task (paper, Sec. 6.1-6.2).

Usage rate of a group of candidate features (a family, a view, an image type, a patch) among the
positive (or negative) reported cases: for each case, the fraction of the group's candidate
features that its fingerprint selects (``z = 1``), averaged over the cases. Dividing by the number of
candidates keeps families of different sizes (19 first-order, 16 shape, 3 location features)
comparable.

For synthetic positive cases it also measures how often the highlighted patches (patches with at
least one selected feature) overlap the true lesion of the task (ACL tear for ``acl``, meniscal tear
for ``men``, any finding for ``abn``) on the working grid, next to the chance level: the share of
all patches of the case that overlap it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from radpersona.errors import InputDataError  # noqa: E402
from radpersona.explain.anatomy import axis_word, patch_position  # noqa: E402
from radpersona.explain.figures import png_bytes  # noqa: E402
from radpersona.explain.inputs import as_layout, reporting_model  # noqa: E402
from radpersona.explain.page import TASK_NAMES, case_lesions, case_views  # noqa: E402
from radpersona.features import patch_grid  # noqa: E402
from radpersona.fingerprint import parse_feature_name, population_table  # noqa: E402
from radpersona.layout import Layout  # noqa: E402
from radpersona.persona.masks import box_slices  # noqa: E402
from radpersona.settings import ReportSettings  # noqa: E402
from radpersona.truth import LESION_FRACTION  # noqa: E402
from radpersona.vocabulary import VIEWS  # noqa: E402
from radpersona.volume import read_volume  # noqa: E402

logger = logging.getLogger("radpersona")

SUMMARY_FILES: tuple[str, ...] = (
    "usage.png",
    "patches.png",
    "top_beta.png",
    "lesion_overlap.png",
    "summary.csv",
    "lesion_overlap.csv",
    "provenance.json",
)
GROUPS: tuple[tuple[str, int], ...] = (("positive", 1), ("negative", 0))


@dataclass(frozen=True)
class SummarySettings:
    """reg/grid of the experiment, persona box, number of |beta| features shown, figure dpi, preprocess.crop."""

    reg: str
    grid: int
    box: tuple[float, float, float]
    top_beta: int = 20
    dpi: int = 90
    crop: float = 1.0

    @classmethod
    def from_settings(
        cls, report: ReportSettings, *, reg: str, grid: int, box: Sequence[float], crop: float = 1.0
    ) -> SummarySettings:
        """The summary settings of an experiment (``reg``, ``grid``), ``persona.box``, ``preprocess.crop`` and the
        ``report`` section."""
        return cls(
            reg=reg,
            grid=int(grid),
            box=(float(box[0]), float(box[1]), float(box[2])),
            top_beta=report.top_beta,
            dpi=report.dpi,
            crop=float(crop),
        )


def usage_rates(
    fingerprints: pd.DataFrame, cases: Sequence[str], candidates: pd.DataFrame, by: Sequence[str]
) -> pd.DataFrame:
    """Mean over ``cases`` of (selected features in the group / candidate features in the group).

    Args:
        fingerprints: fingerprint rows (only ``z = 1`` rows count).
        cases: the cases averaged over (a case without selected features counts as 0).
        candidates: one row per candidate feature with the ``by`` columns.
        by: grouping columns, e.g. ``["family"]`` or ``["view", "i", "j", "k"]``.

    Returns:
        ``by`` columns, ``n_candidates``, ``rate`` (in [0, 1]), ``n_cases``.
    """
    total = candidates.groupby(list(by)).size().rename("n_candidates")
    used = fingerprints[(fingerprints["z"].astype(int) == 1) & fingerprints["case"].astype(str).isin(list(cases))]
    counts = used.groupby(list(by)).size().rename("n_selected")
    frame = pd.concat([total, counts], axis=1).fillna({"n_selected": 0})
    n = max(len(cases), 1)
    frame["rate"] = frame["n_selected"] / (frame["n_candidates"] * n) if len(cases) else np.nan
    frame["n_cases"] = len(cases)
    return frame.reset_index()[[*by, "n_candidates", "rate", "n_cases"]]


def _usage_figure(rates: dict[str, dict[str, pd.DataFrame]], title: str, dpi: int) -> bytes:
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, key in zip(axes, ("family", "view", "image")):
        labels = rates["positive"][key][key].tolist()
        x = np.arange(len(labels))
        for off, (group, colour) in zip((-0.2, 0.2), (("positive", "#b2182b"), ("negative", "#2166ac"))):
            table = rates[group][key].set_index(key).reindex(labels)
            ax.bar(
                x + off,
                table["rate"].to_numpy(),
                width=0.4,
                color=colour,
                label=f"{group} (n={int(table['n_cases'].iloc[0])})" if len(table) else group,
            )
        ax.set_xticks(x, labels, rotation=30, ha="right")
        ax.set_title(f"by {key}")
        ax.set_ylabel("usage rate (selected / candidates)")
    axes[0].legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return png_bytes(fig, dpi)


def _patch_figure(rates: dict[str, pd.DataFrame], n: int, title: str, dpi: int) -> bytes:
    present = {str(v) for t in rates.values() for v in t["view"].unique()}
    views = [view for view in VIEWS if view in present] or list(VIEWS)  # a single-view run draws one view's rows
    rows = [(view, group) for view in views for group, _ in GROUPS]
    fig, axes = plt.subplots(len(rows), n, figsize=(2.6 * n + 1.5, 2.3 * len(rows)), squeeze=False)
    vmax = max(float(np.nanmax(t["rate"].to_numpy())) if len(t) else 0.0 for t in rates.values())
    vmax = vmax if vmax > 0 else 1.0
    image = None
    for r, (view, group) in enumerate(rows):
        table = rates[group]
        for i in range(n):
            ax = axes[r, i]
            grid = np.full((n, n), np.nan)
            sub = table[(table["view"] == view) & (table["i"] == i)]
            for row in sub.itertuples():
                grid[int(row.j), int(row.k)] = row.rate
            image = ax.imshow(grid, cmap="viridis", vmin=0, vmax=vmax)
            for j in range(n):
                for k in range(n):
                    if np.isfinite(grid[j, k]):
                        ax.text(
                            k,
                            j,
                            f"{grid[j, k]:.2f}",
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white" if grid[j, k] < 0.6 * vmax else "black",
                        )
            ax.set_xticks(range(n), [axis_word(view, 2, k, n)[1] for k in range(n)], fontsize=7)
            ax.set_yticks(range(n), [axis_word(view, 1, j, n)[1] for j in range(n)], fontsize=7)
            ax.set_title(f"{view} {group}\nslab i={i} ({axis_word(view, 0, i, n)[1]})", fontsize=8)
    assert image is not None  # n >= 1 panels per row
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.5, label="usage rate")
    fig.suptitle(title)
    return png_bytes(fig, dpi)


def _beta_figure(table: pd.DataFrame, n: int, title: str, dpi: int) -> bytes:
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(table) + 1.2))
    labels = [
        f"{patch_position(r.view, int(r.i), int(r.j), int(r.k), n)} | {r.image} | {r.family}.{r.name}"
        for r in table.itertuples()
    ]
    y = np.arange(len(table))[::-1]
    ax.barh(y, table["beta"].to_numpy(), color=np.where(table["beta"] > 0, "#b2182b", "#2166ac"))
    ax.set_yticks(y, labels, fontsize=7)
    ax.axvline(0, color="black", lw=0.6)
    ax.set_xlabel("population coefficient beta (model trained on all of train)")
    ax.set_title(title)
    fig.tight_layout()
    return png_bytes(fig, dpi)


def _text_figure(text: str, dpi: int) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 1.4))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    return png_bytes(fig, dpi)


def lesion_overlap(
    layout: Layout,
    cohort: pd.DataFrame,
    fingerprints: pd.DataFrame,
    cases: Sequence[str],
    task: str,
    settings: SummarySettings,
) -> pd.DataFrame:
    """Per synthetic case and view: highlighted patches, how many overlap the true lesion, and chance.

    A patch overlaps the lesion when it holds a voxel whose lesion fraction is at least
    :data:`LESION_FRACTION`. Columns: ``case, view, n_patches, n_lesion_patches, n_highlighted,
    n_highlighted_on_lesion, lesion_voxels``.
    """
    records = []
    by_case = cohort.set_index(cohort["case"].astype(str))
    used = fingerprints[fingerprints["z"].astype(int) == 1]
    for case in cases:
        row = by_case.loc[case]
        highlighted = used[used["case"].astype(str) == case]
        for view in case_views(row):
            original = Path(layout.image("original", settings.reg, case, view))
            shape = read_volume(original, case=case, view=view)[0].shape
            frac, _ = case_lesions(layout, row, case, view, task, settings.reg, shape, crop=settings.crop)
            if frac is None:
                continue
            lesion = frac >= LESION_FRACTION
            patches = patch_grid(box_slices(shape, settings.box), settings.grid)
            on_lesion = {ijk for ijk, sl in patches if lesion[sl].any()}
            hv = {(int(r.i), int(r.j), int(r.k)) for r in highlighted[highlighted["view"] == view].itertuples()}
            records.append(
                {
                    "case": case,
                    "view": view,
                    "n_patches": len(patches),
                    "n_lesion_patches": len(on_lesion),
                    "n_highlighted": len(hv),
                    "n_highlighted_on_lesion": len(hv & on_lesion),
                    "lesion_voxels": int(lesion.sum()),
                }
            )
    return pd.DataFrame(
        records,
        columns=[
            "case",
            "view",
            "n_patches",
            "n_lesion_patches",
            "n_highlighted",
            "n_highlighted_on_lesion",
            "lesion_voxels",
        ],
    )


def top_logit_share(fps: pd.DataFrame, k: int = 10) -> pd.Series:
    """Per case, the share of the fingerprint's ``sum_n |beta_n z_n r_n|`` that its ``k`` largest terms carry
    (1 when the case uses at most ``k`` features; NaN when it uses none)."""
    magnitude = fps.assign(abs_contribution=fps["contribution"].abs(), case=fps["case"].astype(str))
    grouped = magnitude.groupby("case")["abs_contribution"]
    total = grouped.sum()
    top = grouped.apply(lambda values: values.nlargest(k).sum())
    return (top / total.where(total > 0)).rename("top_share")


def summarise_fingerprints(
    results: str | Path | Layout, experiment: str, task: str, settings: SummarySettings, out_dir: str | Path
) -> pd.DataFrame:
    """Write the population figures and tables of ``experiment``/``task`` into ``out_dir``.

    Files: ``usage.png`` (usage rate by family, view, image; positive vs negative cases),
    ``patches.png`` (usage-rate heatmaps over the n x n x n grid per view and class),
    ``top_beta.png`` (largest |beta| of the model trained on all of train), ``lesion_overlap.png``
    and ``lesion_overlap.csv`` (synthetic positives: highlighted patches on the true lesion vs chance),
    ``summary.csv`` (long: ``experiment, task, group, measure, key, value``).

    Returns:
        The summary table.
    """
    from radpersona.fingerprint import TrainedFingerprint

    layout, out_dir = as_layout(results), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    preds = pd.read_parquet(layout.predictions(experiment, task))
    fps = pd.read_parquet(layout.fingerprints(experiment, task))
    mfile = reporting_model(layout, experiment, task, -1)
    if not mfile.exists():
        raise InputDataError("fingerprint model trained on all of train not found", path=mfile)
    model = TrainedFingerprint.load(mfile)
    candidates = pd.DataFrame([parse_feature_name(c)._asdict() for c in model.feature_names])
    name = f"{experiment}, {TASK_NAMES.get(task, task)}"
    records: list[dict[str, object]] = []

    def add(group: str, measure: str, key: str, value: float) -> None:
        records.append(
            {
                "experiment": experiment,
                "task": task,
                "group": group,
                "measure": measure,
                "key": key,
                "value": float(value),
            }
        )

    rates: dict[str, dict[str, pd.DataFrame]] = {}
    patch_rates: dict[str, pd.DataFrame] = {}
    n_used = fps[fps["z"].astype(int) == 1].groupby(fps["case"].astype(str)).size()
    share = top_logit_share(fps, 10)
    for group, label in GROUPS:
        cases = preds.loc[preds["label"] == label, "case"].astype(str).tolist()
        rates[group] = {key: usage_rates(fps, cases, candidates, [key]) for key in ("family", "view", "image")}
        patch_rates[group] = usage_rates(fps, cases, candidates, ["view", "i", "j", "k"])
        for key, table in rates[group].items():
            for row in table.itertuples():
                add(group, f"usage_rate_{key}", str(getattr(row, key)), row.rate)
        for row in patch_rates[group].itertuples():
            add(group, "usage_rate_patch", f"{row.view}.p{row.i}{row.j}{row.k}", row.rate)
        counts = n_used.reindex(cases).fillna(0)
        add(group, "n_cases", "", len(cases))
        add(group, "mean_features_used", "", float(counts.mean()) if len(cases) else np.nan)
        add(group, "sd_features_used", "", float(counts.std(ddof=0)) if len(cases) else np.nan)
        add(group, "median_features_used", "", float(counts.median()) if len(cases) else np.nan)
        add(group, "median_top10_logit_share", "", float(share.reindex(cases).median()) if len(cases) else np.nan)
    (out_dir / "usage.png").write_bytes(_usage_figure(rates, f"Feature usage: {name}", settings.dpi))
    (out_dir / "patches.png").write_bytes(
        _patch_figure(patch_rates, settings.grid, f"Patch usage: {name}", settings.dpi)
    )
    top = population_table(model).head(settings.top_beta)
    for row in top.itertuples():
        add("population", "beta", row.feature, row.beta)
    (out_dir / "top_beta.png").write_bytes(_beta_figure(top, settings.grid, f"Largest |beta|: {name}", settings.dpi))

    cohort = pd.read_parquet(layout.cohort())
    positives = preds.loc[preds["label"] == 1, "case"].astype(str).tolist()
    synthetic = set(cohort.loc[cohort["source"] == "synthetic", "case"].astype(str))
    overlap = lesion_overlap(layout, cohort, fps, [c for c in positives if c in synthetic], task, settings)
    overlap.to_csv(out_dir / "lesion_overlap.csv", index=False)
    if len(overlap):
        hl, on = int(overlap["n_highlighted"].sum()), int(overlap["n_highlighted_on_lesion"].sum())
        share = on / hl if hl else np.nan
        # chance: each highlighted patch drawn uniformly from its case-view's grid
        with np.errstate(invalid="ignore", divide="ignore"):
            chance = (
                float((overlap["n_highlighted"] * overlap["n_lesion_patches"] / overlap["n_patches"]).sum() / hl)
                if hl
                else np.nan
            )
        add("positive", "lesion_overlap_share", "highlighted", share)
        add("positive", "lesion_overlap_share", "chance", chance)
        add("positive", "lesion_overlap_cases", "", overlap["case"].nunique())
        add("positive", "lesion_overlap_highlighted_patches", "", hl)
        add("positive", "lesion_not_visible_views", "", int((overlap["lesion_voxels"] == 0).sum()))
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.bar(["highlighted patches", "chance (all patches)"], [share, chance], color=["#b2182b", "#999999"])
        ax.set_ylim(0, 1)
        ax.set_ylabel("share overlapping the true lesion")
        ax.set_title(
            f"{name}: {overlap['case'].nunique()} synthetic positive cases,\n{hl} highlighted case-view patches",
            fontsize=9,
        )
        for x, v in enumerate((share, chance)):
            ax.text(x, (v if np.isfinite(v) else 0) + 0.02, f"{v:.2f}", ha="center")
        fig.tight_layout()
        (out_dir / "lesion_overlap.png").write_bytes(png_bytes(fig, settings.dpi))
        logger.info(
            "summary %s %s: %d of %d highlighted patches on the true lesion (%.2f; chance %.2f)",
            experiment,
            task,
            on,
            hl,
            share,
            chance,
        )
    else:
        (out_dir / "lesion_overlap.png").write_bytes(
            _text_figure(
                "No synthetic positive case with a true lesion mask: lesion overlap not available.", settings.dpi
            )
        )
    summary = pd.DataFrame(records, columns=["experiment", "task", "group", "measure", "key", "value"])
    summary.to_csv(out_dir / "summary.csv", index=False, float_format="%.6g")
    (out_dir / "provenance.json").write_text(
        json.dumps(
            {"experiment": experiment, "task": task, "model": str(mfile), "settings": asdict(settings)},
            default=list,
            indent=1,
        ),
        encoding="utf-8",
    )
    return summary
