"""The per-patient explanation page: one self-contained HTML file per case and task.

It shows the prediction (probability, threshold, label), for each view the chosen slices of the
original, the healthy persona and their residual with the patch grid and the fingerprint's patches
coloured by their summed contribution (and, for synthetic cases, the true lesion outline), the
fingerprint table (top features by ``|contribution|``) and the logit decomposition
``intercept + sum of contributions = logit``. Images are PNGs embedded as base64; a small inline
script reports on the console any image that fails to decode (headless-browser test hook).
"""

from __future__ import annotations

import base64
import html
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from radpersona.atomic import write_text_atomic
from radpersona.errors import InputDataError
from radpersona.explain.anatomy import ORIENTATION_NOTE, patch_position
from radpersona.explain.descriptions import IMAGE_DESCRIPTIONS, describe_feature
from radpersona.explain.figures import SliceRow, view_figure
from radpersona.explain.inputs import (
    CasePrediction,
    as_layout,
    load_case_prediction,
    patch_contributions,
    sigmoid,
)
from radpersona.features import patch_grid
from radpersona.layout import Layout
from radpersona.persona.masks import box_slices
from radpersona.settings import ReportSettings
from radpersona.truth import TASK_LESION_CODES, lesion_fraction
from radpersona.vocabulary import IMAGE_KINDS, VIEWS
from radpersona.volume import read_volume

logger = logging.getLogger("radpersona")

TASK_NAMES: Mapping[str, str] = {"abn": "abnormality", "acl": "ACL tear", "men": "meniscal tear"}


@dataclass(frozen=True)
class ExplainSettings:
    """Settings of an explanation page.

    Attributes:
        reg: ``{reg}`` branch of the experiment (reg | noreg).
        grid: patch grid ``n`` of the experiment.
        box: ``persona.box`` fractions.
        top_features: rows of the fingerprint table shown (the rest is summed in one row).
        slices_per_view: slice rows per view (mid-slice first, then slices through the most
            contributing patch slabs).
        dpi: resolution of the embedded figures.
        crop: ``preprocess.crop`` (true lesions reach the working grid through it).
    """

    reg: str
    grid: int
    box: tuple[float, float, float]
    top_features: int = 15
    slices_per_view: int = 3
    dpi: int = 80
    crop: float = 1.0

    @classmethod
    def from_settings(
        cls, report: ReportSettings, *, reg: str, grid: int, box: Sequence[float], crop: float = 1.0
    ) -> ExplainSettings:
        """The page settings of an experiment (``reg``, ``grid``), ``persona.box``, ``preprocess.crop`` and the
        ``report`` section."""
        return cls(
            reg=reg,
            grid=int(grid),
            box=(float(box[0]), float(box[1]), float(box[2])),
            top_features=report.top_features,
            slices_per_view=report.slices_per_view,
            dpi=report.dpi,
            crop=float(crop),
        )


def choose_slices(
    box: tuple[slice, slice, slice], patches: Sequence, highlighted: pd.DataFrame, depth: int, limit: int
) -> list[SliceRow]:
    """The mid-slice, then the central slice of each patch slab (``i``) with a highlighted patch.

    Slabs are ordered by their summed ``|contribution|``; at most ``limit`` rows; a slab whose
    central slice is the mid-slice is not repeated.
    """
    slab_of = {}
    for (i, _, _), sl in patches:
        slab_of[i] = sl[0]
    mid = depth // 2
    mid_slab = next((i for i, s in slab_of.items() if s.start <= mid < s.stop), None)
    rows = [SliceRow(mid, "mid-slice", mid_slab)]
    if len(highlighted):
        weight = highlighted.groupby("i")["abs_contribution"].sum().sort_values(ascending=False, kind="stable")
        for i, _ in weight.items():
            sl = slab_of[int(i)]
            centre = (sl.start + sl.stop - 1) // 2
            if any(r.index == centre for r in rows):
                continue
            rows.append(SliceRow(centre, f"patch slab i={int(i)}", int(i)))
    return rows[:limit]


def _case_row(layout: Layout, case: str) -> pd.Series:
    cohort_file = Path(layout.cohort())
    if not cohort_file.exists():
        raise InputDataError("cohort table not found", case=case, path=cohort_file)
    cohort = pd.read_parquet(cohort_file)
    rows = cohort[cohort["case"].astype(str) == case]
    if len(rows) != 1:
        raise InputDataError(f"case is in the cohort table {len(rows)} times", case=case, path=cohort_file)
    return rows.iloc[0]


def case_views(cohort_row: pd.Series) -> list[str]:
    """The views a case has (its cohort row's non-null ``path_{view}``; KneeMRI: sagittal), in ``VIEWS`` order."""
    return [view for view in VIEWS if pd.notna(cohort_row.get(f"path_{view}"))]


def case_lesions(
    layout: Layout,
    cohort_row: pd.Series,
    case: str,
    view: str,
    task: str,
    reg: str,
    shape: Sequence[int],
    *,
    crop: float = 1.0,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Task lesion and other-finding lesion fractions on the working grid (synthetic cases), else ``(None, None)``.

    A case has a true lesion when the cohort says it is synthetic and records its truth folder; the mask
    is ``layout.truth(case, view, "lesion")``, brought through the raw and preprocessed geometry (and
    the case's affine for ``reg``); ``crop`` is ``preprocess.crop``.
    """
    truth_dir = cohort_row.get("truth_dir") if "truth_dir" in cohort_row.index else None
    if cohort_row.get("source") != "synthetic" or truth_dir is None or pd.isna(truth_dir):
        return None, None
    mask_file = Path(layout.truth(case, view, "lesion"))
    pre_file = Path(layout.pre(case, view))
    pre_shape = read_volume(pre_file, case=case, view=view)[0].shape if pre_file.exists() else tuple(shape)
    kwargs = {}
    if reg == "reg":
        kwargs = {
            "registered_volume": Path(layout.image("original", reg, case, view)),
            "affine": Path(layout.affine(case, view)),
        }
    task_codes = TASK_LESION_CODES[task]
    other_codes = tuple(c for c in TASK_LESION_CODES["abn"] if c not in task_codes)
    raw = Path(layout.raw(case, view))
    task_frac = lesion_fraction(
        mask_file, raw, case=case, view=view, codes=task_codes, preprocess_shape=pre_shape, crop=crop, **kwargs
    )
    other_frac = (
        lesion_fraction(
            mask_file, raw, case=case, view=view, codes=other_codes, preprocess_shape=pre_shape, crop=crop, **kwargs
        )
        if other_codes
        else None
    )
    for frac in (task_frac, other_frac):
        if frac is not None and frac.shape != tuple(shape):
            raise InputDataError(
                f"lesion grid {frac.shape} differs from the volume grid {tuple(shape)}",
                case=case,
                view=view,
                path=mask_file,
            )
    return task_frac, other_frac


def _fmt(x: float, digits: int = 4) -> str:
    return f"{x:+.{digits}f}"


def _feature_rows(pred: CasePrediction, n_grid: int, top: int) -> tuple[list[str], str]:
    rows = []
    shown = pred.features.iloc[:top]
    for rank, f in enumerate(shown.itertuples(), start=1):
        position = patch_position(f.view, int(f.i), int(f.j), int(f.k), n_grid)
        image_title = html.escape(IMAGE_DESCRIPTIONS.get(f.image, f.image))
        description = html.escape(describe_feature(f.family, f.name))
        rows.append(
            f'<tr class="feature" data-feature="{html.escape(f.feature)}" data-view="{f.view}" '
            f'data-i="{int(f.i)}" data-j="{int(f.j)}" data-k="{int(f.k)}" data-z="{int(f.z)}" '
            f'data-contribution="{float(f.contribution)!r}">'
            f'<td>{rank}</td><td>{f.view}</td><td title="{image_title}">{f.image}</td>'
            f'<td>{html.escape(position)} <span class="ijk">(p{int(f.i)}{int(f.j)}{int(f.k)})</span></td>'
            f'<td>{html.escape(f.family)}.{html.escape(f.name)}</td><td class="desc">{description}</td>'
            f"<td>{float(f.u):.3f}</td><td>{float(f.beta):+.4f}</td><td>{float(f.r):+.3f}</td>"
            f'<td class="num">{_fmt(float(f.contribution))}</td></tr>'
        )
    rest = pred.features.iloc[top:]
    rest_sum = float(rest["contribution"].sum()) if len(rest) else 0.0
    remainder = (
        f'<tr class="remainder" data-count="{len(rest)}" data-contribution="{rest_sum!r}">'
        f'<td colspan="9">the other {len(rest)} selected features (z = 1), summed</td>'
        f'<td class="num">{_fmt(rest_sum)}</td></tr>'
    )
    return rows, remainder


def _patch_rows(view: str, highlighted: pd.DataFrame, n_grid: int) -> str:
    if not len(highlighted):
        return "<p>No feature of this view is used by the fingerprint.</p>"
    rows = "".join(
        f'<tr class="patch" data-view="{view}" data-i="{int(p.i)}" data-j="{int(p.j)}" data-k="{int(p.k)}" '
        f'data-contribution="{float(p.contribution)!r}">'
        f"<td>{html.escape(patch_position(view, int(p.i), int(p.j), int(p.k), n_grid))}"
        f" (p{int(p.i)}{int(p.j)}{int(p.k)})</td><td>{int(p.n_features)}</td>"
        f'<td class="num">{_fmt(float(p.contribution))}</td></tr>'
        for p in highlighted.itertuples()
    )
    return (
        '<table class="patches"><tr><th>highlighted patch</th><th>features used</th><th>summed contribution</th></tr>'
        f"{rows}</table>"
    )


_STYLE = "\n".join(
    [
        "",
        'body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em auto;max-width:1200px;'
        "color:#222}",
        "h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}",
        "table{border-collapse:collapse;font-size:.85em;margin:.5em 0}"
        "td,th{border:1px solid #ddd;padding:3px 6px;text-align:left}",
        "th{background:#f3f3f3}.num{text-align:right;font-family:monospace}.desc{color:#555;max-width:28em}"
        ".ijk{color:#888}",
        ".summary td:first-child{font-weight:600}.pos{color:#b2182b}.neg{color:#2166ac}img{max-width:100%}",
        ".note{color:#555;font-size:.85em}",
        "",
    ]
)

_SCRIPT = "\n".join(
    [
        "",
        "window.addEventListener('load', function () {",
        "  var imgs = document.images, ok = 0;",
        "  for (var n = 0; n < imgs.length; n++) {",
        "    if (imgs[n].complete && imgs[n].naturalWidth > 0) { ok++; } "
        "else { console.error('image failed to decode: ' + imgs[n].alt); }",
        "  }",
        "  document.body.setAttribute('data-images-decoded', ok + '/' + imgs.length);",
        "});",
        "",
    ]
)

_FORMULA = (
    "<p>logit = intercept + &Sigma; contributions, with contribution = &beta; &middot; z &middot; r; "
    "probability = 1 / (1 + e<sup>&minus;logit</sup>).</p>"
)
_FINGERPRINT_HEADER = (
    "<tr><th>#</th><th>view</th><th>image</th><th>patch position</th><th>feature</th><th>what it measures</th>"
    "<th>u</th><th>&beta;</th><th>r</th><th>contribution</th></tr>"
)


def render_case_page(
    pred: CasePrediction,
    settings: ExplainSettings,
    figures: Mapping[str, bytes],
    highlighted: pd.DataFrame,
    *,
    source: str,
    lesion_shown: bool,
) -> str:
    """The HTML text of a case page (figures: view -> PNG bytes)."""
    task = TASK_NAMES.get(pred.task, pred.task)
    label = "unknown" if pred.label is None else ("positive" if pred.label else "negative")
    verdict = "positive" if pred.pred else "negative"
    feature_rows, remainder = _feature_rows(pred, settings.grid, settings.top_features)
    n_used, top, grid = len(pred.features), settings.top_features, settings.grid
    shown_sum = float(pred.features.iloc[:top]["contribution"].sum())
    rest_sum = float(pred.features.iloc[top:]["contribution"].sum())
    sections = []
    for view in figures:  # the case's views, in VIEWS order
        hv = highlighted[highlighted["view"] == view]
        img = base64.b64encode(figures[view]).decode("ascii")
        sections.append(
            f'<section class="view" id="view-{view}"><h2>{view}</h2>'
            f'<img alt="{view}: original, persona and residual with the patch grid" src="data:image/png;base64,{img}">'
            f"{_patch_rows(view, hv, settings.grid)}</section>"
        )
    lesion_note = (
        "Yellow outline: the true lesion of this task (synthetic truth, brought through preprocessing and "
        "registration); cyan dashed: other findings. "
        if lesion_shown
        else ""
    )
    reported_by = (
        "the model trained on all of train (valid split)"
        if pred.fold == -1
        else f"cross-validation fold {pred.fold} (held out)"
    )
    case, experiment = html.escape(pred.case), html.escape(pred.experiment)
    images = "; ".join(f"{image} = {html.escape(IMAGE_DESCRIPTIONS[image])}" for image in IMAGE_KINDS)
    lines = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>radpersona: case {case}, {html.escape(task)} ({experiment})</title>",
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head>",
        "<body>",
        f"<h1>Case {case}: {html.escape(task)} — radiomic fingerprint</h1>",
        '<table class="summary">',
        f'<tr><td>prediction</td><td class="{"pos" if pred.pred else "neg"}">{verdict}</td></tr>',
        f'<tr><td>probability</td><td id="prob" data-value="{pred.prob!r}">{pred.prob:.4f}</td></tr>',
        f'<tr><td>decision threshold</td><td id="threshold" data-value="{pred.threshold!r}">'
        f"{pred.threshold:.4f}</td></tr>",
        f'<tr><td>label</td><td id="label">{label}</td></tr>',
        f'<tr><td>features used (z = 1)</td><td id="n-used">{n_used}</td></tr>',
        f"<tr><td>reported by</td><td>{reported_by}; experiment {experiment}; source {html.escape(source)}</td></tr>",
        "</table>",
        "",
        "<h2>Logit decomposition</h2>",
        _FORMULA,
        '<table class="logit">',
        f'<tr><td>intercept</td><td class="num" id="intercept" data-value="{pred.intercept!r}">'
        f"{_fmt(pred.intercept)}</td></tr>",
        f"<tr><td>contributions of the top {min(top, n_used)} features (table below)</td>"
        f'<td class="num">{_fmt(shown_sum)}</td></tr>',
        f"<tr><td>contributions of the other {max(0, n_used - top)} selected features</td>"
        f'<td class="num">{_fmt(rest_sum)}</td></tr>',
        f'<tr><th>logit</th><th class="num" id="logit" data-value="{pred.logit!r}">{_fmt(pred.logit)}</th></tr>',
        f'<tr><td>probability = sigmoid(logit)</td><td class="num">{sigmoid(pred.logit):.4f}</td></tr>',
        "</table>",
        "",
        "<h2>Fingerprint: top features by |contribution|</h2>",
        '<table class="fingerprint">',
        _FINGERPRINT_HEADER,
        "".join(feature_rows),
        remainder,
        "</table>",
        '<p class="note">u: usage probability from the usage predictor (selected when u &gt; T); '
        "&beta;: population coefficient;",
        "r: the feature standardised with the training fold's mean and standard deviation; contribution = &beta; r.",
        f"Images: {images}.</p>",
        "",
        "<h2>Where the fingerprint looks</h2>",
        '<p class="note">Each row: one slice of the original, the healthy persona and the residual. '
        "Dashed white: the persona box",
        f"(the ROI the patch grid divides, {grid}&times;{grid}&times;{grid} patches). Coloured patches are used by the",
        "fingerprint (z = 1), coloured by their summed contribution (red raises, blue lowers the probability); "
        "thin white",
        f"lines: patches not used. {lesion_note}{html.escape(ORIENTATION_NOTE)}</p>",
        "".join(sections),
        "</body></html>",
        "",
    ]
    return "\n".join(lines)


def explain_case(
    results: str | Path | Layout, case: str, task: str, experiment: str, settings: ExplainSettings, out: str | Path
) -> dict[str, object]:
    """Write the explanation page of ``case`` for ``task`` to ``out`` (atomically).

    Returns:
        A record: ``case, task, experiment, logit, prob, n_used, highlighted`` (number of
        highlighted patches) and ``lesion`` (whether a true lesion outline was drawn).

    Raises:
        InputDataError: missing or inconsistent inputs (named case, view and file).
    """
    layout = as_layout(results)
    case = str(case)
    pred = load_case_prediction(layout, case, task, experiment)
    cohort_row = _case_row(layout, case)
    highlighted = patch_contributions(pred.features)
    scale = float(highlighted["abs_contribution"].max()) if len(highlighted) else 1.0
    scale = scale if scale > 0 else 1.0
    figures: dict[str, bytes] = {}
    lesion_shown = False
    for view in case_views(cohort_row):
        images, spacing = {}, None
        for image in IMAGE_KINDS:
            arr, sp = read_volume(Path(layout.image(image, settings.reg, case, view)), case=case, view=view)
            images[image] = arr
            spacing = spacing or sp
        assert spacing is not None  # every view has three images
        shapes = {name: a.shape for name, a in images.items()}
        if len(set(shapes.values())) != 1:
            raise InputDataError(f"original, persona and residual differ in shape: {shapes}", case=case, view=view)
        shape = images["original"].shape
        box = box_slices(shape, settings.box)
        patches = patch_grid(box, settings.grid)
        hv = highlighted[highlighted["view"] == view]
        outside = hv[(hv[["i", "j", "k"]] >= settings.grid).any(axis=1)]
        if len(outside):
            raise InputDataError(
                f"fingerprint patch {tuple(outside.iloc[0][['i', 'j', 'k']])} is outside a grid of "
                f"{settings.grid} (wrong experiment grid?)",
                case=case,
                view=view,
            )
        lesion, other = case_lesions(layout, cohort_row, case, view, task, settings.reg, shape, crop=settings.crop)
        lesion_shown = lesion_shown or lesion is not None
        rows = choose_slices(box, patches, hv, shape[0], settings.slices_per_view)
        figures[view] = view_figure(
            view, images, spacing, rows, patches, box, hv, scale, lesion, other, dpi=settings.dpi
        )
    text = render_case_page(
        pred, settings, figures, highlighted, source=str(cohort_row.get("source")), lesion_shown=lesion_shown
    )
    write_text_atomic(out, text)
    logger.info(
        "explain %s %s %s: logit %.4f (prob %.4f), %d features, %d patches -> %s",
        experiment,
        task,
        case,
        pred.logit,
        pred.prob,
        len(pred.features),
        len(highlighted),
        out,
    )
    return {
        "case": case,
        "task": task,
        "experiment": experiment,
        "logit": pred.logit,
        "prob": pred.prob,
        "n_used": len(pred.features),
        "highlighted": len(highlighted),
        "lesion": lesion_shown,
    }
