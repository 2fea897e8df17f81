"""Does a persona model remember the healthy cases it trained on? Box SSIM and MSE of personas of healthy
cases the model trained on versus healthy cases it never saw, per protocol (issue: leak-free personas).

Under the paper's protocol one DDPM on every healthy training case makes every persona, so a healthy training
case's persona may be reconstructed better than an unseen healthy case's: "small residual => healthy" would
then partly measure training-set membership. Cross-fitted personas come from models that never saw their case,
so the healthy training cases and the healthy valid cases are both unseen; the gap between them should vanish.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from radpersona.persona.reconstruction.metrics import region_metrics


def case_scores(
    inputs: np.ndarray, personas: np.ndarray, box: tuple[slice, slice, slice], data_range: float
) -> pd.DataFrame:
    """Per case (first axis of ``(n, C, D, H, W)`` arrays), the persona's box MSE and SSIM against its input."""
    rows = []
    for target, recon in zip(inputs, personas):
        scores = region_metrics(target, recon, box, data_range)["box"]
        rows.append({"box_mse": scores["mse"], "box_ssim": scores["ssim"]})
    return pd.DataFrame(rows, columns=["box_mse", "box_ssim"])


def membership_table(scores: pd.DataFrame) -> pd.DataFrame:
    """Per protocol: mean box SSIM and MSE of the personas of healthy training cases and of healthy valid cases,
    and the gap (training minus valid). ``scores`` has ``protocol``, ``split``, ``trained_on_case``, ``box_ssim``,
    ``box_mse`` per healthy case and protocol."""
    rows = []
    for protocol, part in scores.groupby("protocol", sort=False):
        means = {}
        for split in ("train", "valid"):
            group = part[part["split"] == split]
            means[split] = (group["box_ssim"].mean(), group["box_mse"].mean())
            rows.append(
                {
                    "protocol": protocol,
                    "cases": f"healthy {split}",
                    "trained_on_case": bool(group["trained_on_case"].any()) if len(group) else False,
                    "n": len(group),
                    "box_ssim": means[split][0],
                    "box_mse": means[split][1],
                }
            )
        rows.append(
            {
                "protocol": protocol,
                "cases": "gap (train - valid)",
                "trained_on_case": np.nan,
                "n": np.nan,
                "box_ssim": means["train"][0] - means["valid"][0],
                "box_mse": means["train"][1] - means["valid"][1],
            }
        )
    return pd.DataFrame(rows)


def membership_markdown(table: pd.DataFrame, reg: str) -> str:
    """The membership table as markdown with what it means."""
    from radpersona.markdown import markdown_table

    def fmt(value: object, digits: int) -> str:
        return "–" if pd.isna(value) else f"{float(value):.{digits}f}"  # type: ignore[arg-type]

    body = [
        [
            str(r.protocol),
            str(r.cases),
            "–" if pd.isna(r.trained_on_case) else ("yes" if r.trained_on_case else "no"),
            "–" if pd.isna(r.n) else str(int(r.n)),
            fmt(r.box_ssim, 4),
            fmt(r.box_mse, 5),
        ]
        for r in table.itertuples()
    ]
    header = ["protocol", "cases", "model trained on them", "n", "box SSIM", "box MSE"]
    return (
        f"# Persona membership: branch `{reg}`\n\n"
        "Box SSIM and MSE of each healthy case's persona against its input. `paper`: one DDPM on every healthy "
        "training case makes every persona; `cross_fit`: each persona from a DDPM that never saw its case; `external`: "
        "every persona from a model trained elsewhere (`persona.checkpoint`), which saw no case of this cohort. A "
        "positive SSIM gap (negative MSE gap) under `paper` is the membership advantage of the cases the model "
        "trained on; under `cross_fit` and `external` both groups are unseen.\n\n" + markdown_table(header, body) + "\n"
    )
