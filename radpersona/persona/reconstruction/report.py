"""Report of the reconstruction study: summary statistics, paired tests, the Markdown table, the figure."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from radpersona.atomic import atomic_output
from radpersona.markdown import markdown_table
from radpersona.persona.masks import box_slices
from radpersona.persona.reconstruction.configs import DDPM, ReconConfig

__all__ = ["summarise", "summary_markdown", "plot_config"]


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
        ddpm = grp[grp["model"] == DDPM].set_index("case")
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
                if model == DDPM or ddpm.empty:
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
    rows = [
        [
            r.config,
            r.study,
            r.region,
            r.model,
            r.n,
            pm(r.mse_mean, r.mse_sd, 5),
            pm(r.ssim_mean, r.ssim_sd, 3),
            pm(r.contrast_removed_mean, r.contrast_removed_sd, 3),
            p(r.p_mse_vs_ddpm),
            p(r.p_ssim_vs_ddpm),
        ]
        for r in summary.itertuples(index=False)
    ]
    note = (
        "\n\nMSE on the preprocess intensity scale; SSIM: 3-D SSIM per view, mean over views. `heldout_healthy`: "
        "reconstruction of the box of healthy valid cases vs the original. `heldout_counterpart`: the same, with the "
        "true healthy counterparts of the synthetic lesion cases of the valid split as inputs. `counterfactual`: "
        "persona of the lesion case vs its true healthy counterpart (`lesion`: lesion voxels inside the box). "
        "contrast removed = 1 - mean|persona - healthy| / mean|original - healthy| over the lesion voxels. "
        "p: two-sided paired Wilcoxon signed-rank test of the DDPM against the model of the row over the same cases.\n"
    )
    return markdown_table(head, rows) + note


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
        panels.append((f"{model} persona" if model == DDPM else f"{model} reconstruction", rec, "gray"))
    if DDPM in recons:
        panels.append(("ddpm residual", original - recons[DDPM], "RdBu_r"))
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
