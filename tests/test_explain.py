"""Explanation pages and the population summary, on a tiny fake results folder (one synthetic study)."""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from radpersona import VIEWS
from radpersona.errors import InputDataError
from radpersona.explain import (
    FEATURE_DESCRIPTIONS,
    ExplainSettings,
    SummarySettings,
    explain_case,
    lesion_fraction,
    patch_position,
    summarise_fingerprints,
)
from radpersona.fingerprint import fingerprint_table, fit_fingerprint
from radpersona.settings import FingerprintSettings
from radpersona.volume import write_volume

SHAPE = (8, 16, 16)  # preprocessed / registered grid
RAW_SHAPE = (10, 32, 32)  # raw grid of the synthetic truth
GRID = 2
BOX = (0.5, 0.5, 0.5)  # box slices: [2, 6) x [4, 12) x [4, 12); patches of 2 x 4 x 4
CASES = [f"{n:04d}" for n in range(12)]
EXPLAINED = "0001"
FIT_SETTINGS = {
    "representation": "path_persona", "usage_predictor": True, "usage_threshold": 0.4, "lambda_u": 1.0e-3,
    "lambda_beta": 1.0e-3, "beta_penalty": "l2", "epochs": 2, "batch_size": 8, "learning_rate": 1.0e-3,
    "dropout": 0.2, "resnet_widths": [4, 4, 4, 4], "init_weights": None, "folds": 2, "inner_validation": 0.25,
    "threshold_every": 1, "threshold_protocol": "inner", "seed": 3, "device": "cpu",
}  # fmt: skip


def _feature_names() -> list[str]:
    return [
        f"{view}.{image}.p{i}{j}{k}.firstorder.{name}"
        for view in VIEWS
        for image in ("original", "persona")
        for i in range(GRID)
        for j in range(GRID)
        for k in range(GRID)
        for name in ("Entropy", "Mean")
    ]


def _selected(name: str) -> bool:
    """The fingerprint of every case: sagittal and coronal features of patch slab i = 0, nothing in axial."""
    view, _, patch = name.split(".")[:3]
    return view != "axial" and patch[1] == "0"


def build_results(root: Path) -> Path:
    """Write a tiny results folder into ``root``: cohort, volumes, truth, two fold models (fold 0 and
    all), predictions and fingerprints of experiment ``proposed``, task ``acl``."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    labels = np.array([n % 2 for n in range(len(CASES))])
    truth = root / "synthetic" / "truth"
    truth.mkdir(parents=True)
    cohort = pd.DataFrame(
        {
            "case": CASES,
            "source": "synthetic",
            "split": ["train"] * 8 + ["valid"] * 4,
            "abn": labels,
            "acl": labels,
            "men": 0,
            "fold": [n % 2 for n in range(8)] + [-1] * 4,
            "patient": CASES,
            "truth_dir": str(truth),
            **{f"path_{view}": [f"source/{case}_{view}.npy" for case in CASES] for view in VIEWS},  # the contract's
        }
    )
    cohort.to_parquet(root / "cohort.parquet")
    for case, label in zip(CASES, labels):
        for view in VIEWS:
            base = rng.random(SHAPE, dtype=np.float32)
            persona = base.copy()
            persona[2:6, 4:12, 4:12] *= 0.9
            write_volume(root / "volumes" / "reg" / f"{case}_{view}.nii.gz", base, (2.0, 1.0, 1.0))
            write_volume(root / "volumes" / "persona_reg" / f"{case}_{view}.nii.gz", persona, (2.0, 1.0, 1.0))
            write_volume(root / "volumes" / "residual_reg" / f"{case}_{view}.nii.gz", base - persona, (2.0, 1.0, 1.0))
            write_volume(root / "volumes" / "raw" / f"{case}_{view}.nii.gz", rng.random(RAW_SHAPE, dtype=np.float32))
            write_volume(root / "volumes" / "pre" / f"{case}_{view}.nii.gz", base, (1.25, 2.0, 2.0))
            np.savetxt(root / "volumes" / "reg" / f"{case}_{view}.aff.txt", np.eye(4))
            mask = np.zeros(RAW_SHAPE, dtype=np.uint8)
            if (
                label
            ):  # ACL tear (code 1) in raw voxels [0, 5) x [8, 16) x [8, 16): grid voxels [0, 4) x [4, 8) x [4, 8)
                mask[0:5, 8:16, 8:16] = 1
            mask[8:10, 24:32, 24:32] = 3  # an effusion elsewhere (another finding)
            np.save(truth / f"{case}_{view}_lesion.npy", mask)
    names = _feature_names()
    X = rng.normal(size=(len(CASES), len(names)))
    images = rng.random((len(CASES), 3, *SHAPE), dtype=np.float32)
    model_dir = root / "models" / "fingerprint"
    pred_frames, fp_frames = [], []
    for fold, train_idx, rep_idx in (("0", [1, 3, 5, 7, 0, 2], [4, 6]), ("all", list(range(8)), list(range(8, 12)))):
        model = fit_fingerprint(
            images[train_idx],
            X[train_idx],
            labels[train_idx],
            feature_names=names,
            settings=FingerprintSettings.from_config({**FIT_SETTINGS, "families": None}),
            seed=3,
        )
        model.save(model_dir / f"proposed_acl_fold{fold}.pt")
        if fold == "0":
            rep_idx = [0, 1, 2, 3, 4, 5, 6, 7]  # every train case reported by fold 0 (one fold for the test)
        pred = model.predict(images[rep_idx], X[rep_idx])
        z = np.tile(np.array([_selected(n) for n in names], dtype=np.float64), (len(rep_idx), 1))
        pred["z"] = z
        pred["logit"] = (z * pred["r"]) @ model.beta + model.intercept
        pred["prob"] = 1.0 / (1.0 + np.exp(-pred["logit"]))
        rep_cases = [CASES[n] for n in rep_idx]
        pred_frames.append(
            pd.DataFrame(
                {
                    "case": rep_cases,
                    "task": "acl",
                    "fold": -1 if fold == "all" else 0,
                    "split": ["valid" if fold == "all" else "train"] * len(rep_idx),
                    "label": labels[rep_idx],
                    "prob": pred["prob"],
                    "threshold": 0.5,
                    "pred": (pred["prob"] >= 0.5).astype(int),
                    "model": "fingerprint",
                    "experiment": "proposed",
                    "n_used": z.sum(axis=1).astype(int),
                }
            )
        )
        fp = fingerprint_table(rep_cases, "acl", pred, model)
        fp.insert(2, "fold", -1 if fold == "all" else 0)
        fp.insert(3, "split", "valid" if fold == "all" else "train")
        fp_frames.append(fp)
    fps = pd.concat(fp_frames, ignore_index=True)
    # a stray z = 0 row (never written by the pipeline): it must be neither highlighted nor summed
    stray = fps[fps["case"] == EXPLAINED].iloc[[0]].copy()
    stray[["feature", "view", "i", "j", "k", "z", "contribution"]] = [
        "axial.original.p111.firstorder.Mean",
        "axial",
        1,
        1,
        1,
        0,
        5.0,
    ]
    fps = pd.concat([fps, stray], ignore_index=True)
    (root / "predictions").mkdir()
    (root / "fingerprints").mkdir()
    pd.concat(pred_frames, ignore_index=True).to_parquet(root / "predictions" / "proposed_acl.parquet")
    fps.to_parquet(root / "fingerprints" / "proposed_acl.parquet")
    return root


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    return build_results(tmp_path_factory.mktemp("results"))


class _Collector(HTMLParser):
    """Collects the machine-readable attributes of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[dict[str, str]]] = {"feature": [], "remainder": [], "patch": []}
        self.values: dict[str, float] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if a.get("class") in self.rows:
            self.rows[a["class"]].append(a)
        if a.get("id") in ("intercept", "logit", "prob", "threshold") and "data-value" in a:
            self.values[a["id"]] = float(a["data-value"])


SETTINGS = ExplainSettings(reg="reg", grid=GRID, box=BOX, top_features=5, slices_per_view=2, dpi=40)


@pytest.fixture(scope="module")
def page(results, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("pages") / f"{EXPLAINED}.html"
    record = explain_case(results, EXPLAINED, "acl", "proposed", SETTINGS, out)
    return out, record


def test_page_contributions_sum_to_logit(page, results) -> None:
    from radpersona.fingerprint import TrainedFingerprint

    out, record = page
    parsed = _Collector()
    parsed.feed(out.read_text(encoding="utf-8"))
    features, remainder = parsed.rows["feature"], parsed.rows["remainder"]
    assert len(features) == SETTINGS.top_features and len(remainder) == 1
    shown = sum(float(r["data-contribution"]) for r in features) + float(remainder[0]["data-contribution"])
    assert parsed.values["intercept"] + shown == pytest.approx(parsed.values["logit"], abs=1e-9)
    # the same logit, computed here from the model and the prediction table, independently of the page
    model = TrainedFingerprint.load(results / "models" / "fingerprint" / "proposed_acl_fold0.pt")
    fp = pd.read_parquet(results / "fingerprints" / "proposed_acl.parquet")
    used = fp[(fp["case"] == EXPLAINED) & (fp["z"] == 1)]
    assert len(used) == sum(_selected(n) for n in model.feature_names) == record["n_used"]
    assert parsed.values["logit"] == pytest.approx(model.intercept + used["contribution"].sum(), abs=1e-9)
    prob = pd.read_parquet(results / "predictions" / "proposed_acl.parquet").set_index("case").loc[EXPLAINED, "prob"]
    assert 1.0 / (1.0 + np.exp(-parsed.values["logit"])) == pytest.approx(prob, abs=1e-9)
    assert int(remainder[0]["data-count"]) == len(used) - SETTINGS.top_features
    contributions = [abs(float(r["data-contribution"])) for r in features]
    assert contributions == sorted(contributions, reverse=True)


def test_highlighted_patches_have_z_one(page, results) -> None:
    out, record = page
    parsed = _Collector()
    parsed.feed(out.read_text(encoding="utf-8"))
    fp = pd.read_parquet(results / "fingerprints" / "proposed_acl.parquet")
    case = fp[fp["case"] == EXPLAINED]
    z_one = {(r.view, int(r.i), int(r.j), int(r.k)) for r in case[case["z"] == 1].itertuples()}
    shown = {(r["data-view"], int(r["data-i"]), int(r["data-j"]), int(r["data-k"])) for r in parsed.rows["patch"]}
    assert shown and shown <= z_one
    assert shown == {(v, 0, j, k) for v in ("sagittal", "coronal") for j in range(GRID) for k in range(GRID)}
    assert all(r["data-z"] == "1" for r in parsed.rows["feature"])
    assert record["highlighted"] == len(shown) and record["lesion"] is True
    text = out.read_text(encoding="utf-8")
    assert "No feature of this view is used" in text  # axial: the stray z = 0 row is not highlighted
    assert "sagittal, anterior-medial, superior" in text  # p000 of the sagittal view


def test_page_rejects_inconsistent_prediction(results, tmp_path) -> None:
    broken = tmp_path / "results"
    shutil.copytree(results, broken)
    preds = pd.read_parquet(broken / "predictions" / "proposed_acl.parquet")
    preds.loc[preds["case"] == EXPLAINED, "prob"] = 0.123
    preds.to_parquet(broken / "predictions" / "proposed_acl.parquet")
    with pytest.raises(InputDataError, match="case '0001'.*prediction table says 0.123"):
        explain_case(broken, EXPLAINED, "acl", "proposed", SETTINGS, tmp_path / "x.html")


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed (apt-get install chromium)")
def test_page_opens_in_headless_chromium(page, tmp_path) -> None:
    out, _ = page
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--dump-dom",
        out.as_uri(),
    ]
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=90,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if "CONSOLE" in line]
    assert not console, console
    n_images = out.read_text(encoding="utf-8").count("<img ")
    assert n_images == len(VIEWS)
    assert f'data-images-decoded="{n_images}/{n_images}"' in proc.stdout


def test_summary_figures_and_lesion_overlap(results, tmp_path) -> None:
    summary = summarise_fingerprints(
        results, "proposed", "acl", SummarySettings(reg="reg", grid=GRID, box=BOX, dpi=40), tmp_path
    )
    import matplotlib.image

    for name in ("usage.png", "patches.png", "top_beta.png", "lesion_overlap.png"):
        image = matplotlib.image.imread(tmp_path / name)  # a decodable PNG that draws something, not a blank canvas
        assert min(image.shape[:2]) > 50 and image[..., :3].std() > 0.05, (name, image.shape)
    get = summary.set_index(["group", "measure", "key"])["value"]
    # every case selects all 16 sagittal + 16 coronal features of slab i = 0 out of 96 candidates
    assert get[("positive", "usage_rate_view", "sagittal")] == pytest.approx(0.5)
    assert get[("negative", "usage_rate_view", "axial")] == 0.0
    assert get[("positive", "usage_rate_patch", "coronal.p011")] == 1.0
    assert get[("positive", "usage_rate_patch", "coronal.p111")] == 0.0
    assert get[("positive", "mean_features_used", "")] == 32.0
    assert get[("positive", "median_features_used", "")] == 32.0
    assert 0 < get[("positive", "median_top10_logit_share", "")] <= 1

    # lesion (grid voxels [0, 4) x [4, 8) x [4, 8)) meets only patch p000 of each view's grid;
    # each positive case highlights 4 patches per view in sagittal and coronal, one of them p000
    overlap = pd.read_csv(tmp_path / "lesion_overlap.csv")
    assert set(overlap["n_lesion_patches"]) == {1}
    assert get[("positive", "lesion_overlap_share", "highlighted")] == pytest.approx(2 / 8)
    assert get[("positive", "lesion_overlap_share", "chance")] == pytest.approx(1 / 8)


def test_lesion_fraction_follows_preprocess_geometry(results) -> None:
    frac = lesion_fraction(
        results / "synthetic" / "truth" / f"{EXPLAINED}_sagittal_lesion.npy",
        results / "volumes" / "raw" / f"{EXPLAINED}_sagittal.nii.gz",
        case=EXPLAINED,
        view="sagittal",
        codes=(1,),
        preprocess_shape=SHAPE,
    )
    lesion = frac >= 0.5
    assert lesion[0:4, 4:8, 4:8].all() and lesion.sum() == 4 * 4 * 4
    # the 5 of 10 raw slices cover exactly 4 of 8 grid slices; in-plane 8 of 32 raw voxels = 4 of 16
    assert frac.sum() == pytest.approx(5 * 8 * 8 * (8 / 10) * (16 / 32) ** 2, rel=0.05)


def test_every_feature_has_a_description() -> None:
    from radpersona.radiomics import FAMILY_MODULES

    extracted = {(fam, name) for fam, module in FAMILY_MODULES.items() for name in module.FEATURES}
    extracted |= {("location", a) for a in "ijk"}
    assert extracted == set(FEATURE_DESCRIPTIONS)
    assert all(10 < len(text) < 120 for text in FEATURE_DESCRIPTIONS.values())


def test_patch_position_words() -> None:
    # synthetic VIEW_AXES: sagittal slices medial->lateral, rows superior->inferior, cols anterior->posterior
    assert patch_position("sagittal", 0, 1, 1, 2) == "sagittal, posterior-medial, inferior"
    assert patch_position("coronal", 1, 0, 0, 2) == "coronal, anterior-medial, superior"
    assert patch_position("axial", 2, 0, 1, 3) == "axial, anterior, superior"
    assert patch_position("axial", 1, 1, 1, 3) == "axial, central, middle"
    assert patch_position("sagittal", 0, 0, 0, 1) == "sagittal, whole box"
    with pytest.raises(ValueError, match="outside a grid of 2"):
        patch_position("sagittal", 2, 0, 0, 2)


def test_top_logit_share_is_the_share_of_the_ten_largest_terms() -> None:
    from radpersona.explain.population import top_logit_share

    rows = [("a", c) for c in (5.0, -3.0, 2.0)]  # three terms: the top 10 carry everything
    rows += [("b", 1.0 if n % 2 else -1.0) for n in range(20)]  # twenty equal terms: half
    rows += [("c", 0.0)] * 4  # nothing used
    rows += [("d", 10.0)] + [("d", 0.5)] * 18  # one dominant term
    share = top_logit_share(pd.DataFrame(rows, columns=["case", "contribution"]), 10)
    assert share["a"] == pytest.approx(1.0)
    assert share["b"] == pytest.approx(0.5)
    assert np.isnan(share["c"])
    assert share["d"] == pytest.approx((10.0 + 9 * 0.5) / (10.0 + 18 * 0.5))


def test_patch_figure_draws_only_the_views_the_run_has() -> None:
    """A single-view run (KneeMRI: sagittal) gets the sagittal rows only, not two empty views' rows."""
    from radpersona.explain.population import _patch_figure

    def rates(views: list[str]) -> dict[str, pd.DataFrame]:
        rows = [(v, i, j, k) for v in views for i in range(2) for j in range(2) for k in range(2)]
        table = pd.DataFrame(rows, columns=["view", "i", "j", "k"]).assign(rate=0.5)
        return {"positive": table, "negative": table}

    def height(png: bytes) -> int:
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        return int.from_bytes(png[20:24], "big")  # IHDR: width (16:20), height (20:24)

    one, three = (height(_patch_figure(rates(v), 2, "t", 40)) for v in (["sagittal"], list(VIEWS)))
    assert one < 0.45 * three, (one, three)
