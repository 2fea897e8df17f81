"""Matplotlib (Agg) figures of the explanation page, returned as PNG bytes."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import TwoSlopeNorm  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from radpersona.truth import LESION_FRACTION  # noqa: E402
from radpersona.vocabulary import IMAGE_KINDS  # noqa: E402

CONTRIBUTION_CMAP = "RdBu_r"  # red: pushes towards the positive class, blue: towards negative


@dataclass(frozen=True)
class SliceRow:
    """One row of a view figure: slice index, why it is shown, and its patch slab along ``i``."""

    index: int
    reason: str
    slab: int | None


def png_bytes(fig: plt.Figure, dpi: int) -> bytes:
    """Render and close ``fig``."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def view_figure(
    view: str,
    images: Mapping[str, np.ndarray],
    spacing: Sequence[float],
    rows: Sequence[SliceRow],
    patches: Sequence[tuple[tuple[int, int, int], tuple[slice, slice, slice]]],
    box: tuple[slice, slice, slice],
    highlighted: pd.DataFrame,
    scale: float,
    lesion: np.ndarray | None,
    other_lesion: np.ndarray | None,
    *,
    dpi: int,
) -> bytes:
    """Original, persona and residual side by side for each slice row, with the patch grid.

    Args:
        images: ``original``, ``persona``, ``residual`` arrays (slices, rows, cols) of one view.
        spacing: (slices, rows, cols) spacing, for the pixel aspect.
        patches: the ``n^3`` patches of the box (:func:`radpersona.features.patch_grid`).
        highlighted: rows of this view from :func:`patch_contributions`.
        scale: contribution magnitude mapped to full colour (the case's largest ``|patch contribution|``).
        lesion, other_lesion: lesion fractions on the same grid (task lesion, other findings) or None.
    """
    names = [n for n in IMAGE_KINDS if n in images]
    fig, axes = plt.subplots(len(rows), len(names), figsize=(3.1 * len(names), 3.0 * len(rows)), squeeze=False)
    original = images["original"]
    lo, hi = (float(np.percentile(original, 0.5)), float(np.percentile(original, 99.5)))
    if hi <= lo:
        hi = lo + 1.0
    res_lim = max(float(np.percentile(np.abs(images["residual"]), 99.5)), 1e-6) if "residual" in images else 1.0
    norm = TwoSlopeNorm(vmin=-scale, vcenter=0.0, vmax=scale)
    cmap = plt.get_cmap(CONTRIBUTION_CMAP)
    contrib = {(int(r.i), int(r.j), int(r.k)): float(r.contribution) for r in highlighted.itertuples()}
    aspect = float(spacing[1]) / float(spacing[2])
    for r, row in enumerate(rows):
        for c, name in enumerate(names):
            ax = axes[r, c]
            plane = images[name][row.index]
            if name == "residual":
                ax.imshow(plane, cmap="seismic", vmin=-res_lim, vmax=res_lim, aspect=aspect, interpolation="nearest")
            else:
                ax.imshow(plane, cmap="gray", vmin=lo, vmax=hi, aspect=aspect, interpolation="nearest")
            (r0, r1), (c0, c1) = (box[1].start, box[1].stop), (box[2].start, box[2].stop)
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), c1 - c0, r1 - r0, fill=False, ec="white", lw=1.0, ls="--"))
            for (i, j, k), sl in patches:
                if not sl[0].start <= row.index < sl[0].stop:
                    continue
                xy = (sl[2].start - 0.5, sl[1].start - 0.5)
                w, h = sl[2].stop - sl[2].start, sl[1].stop - sl[1].start
                if (i, j, k) in contrib:
                    colour = cmap(norm(contrib[(i, j, k)]))
                    ax.add_patch(Rectangle(xy, w, h, fc=colour, alpha=0.35, ec="none"))
                    ax.add_patch(Rectangle(xy, w, h, fill=False, ec=colour, lw=2.2))
                    ax.text(
                        xy[0] + 0.8,
                        xy[1] + 0.8,
                        f"{contrib[(i, j, k)]:+.2f}",
                        color="white",
                        fontsize=7,
                        va="top",
                        ha="left",
                        bbox={"fc": "black", "alpha": 0.5, "pad": 1, "ec": "none"},
                    )
                else:
                    ax.add_patch(Rectangle(xy, w, h, fill=False, ec="white", lw=0.5, alpha=0.6))
            for frac, line_colour, style in ((other_lesion, "cyan", "dashed"), (lesion, "yellow", "solid")):
                if frac is not None and float(frac[row.index].max()) >= LESION_FRACTION:
                    ax.contour(
                        frac[row.index], levels=[LESION_FRACTION], colors=line_colour, linewidths=1.4, linestyles=style
                    )
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(name, fontsize=10)
            if c == 0:
                ax.set_ylabel(f"slice {row.index}\n{row.reason}", fontsize=8)
    sm = plt.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes.ravel().tolist(), shrink=0.6, label="summed contribution to the logit")
    fig.suptitle(view, fontsize=12)
    return png_bytes(fig, dpi)
