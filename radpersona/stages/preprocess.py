"""Stage of rules/preprocess.smk: resize and normalise every view of a case."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from radpersona.vocabulary import VIEWS

logger = logging.getLogger("radpersona")


def preprocess(
    case: str, raw: Sequence[str], out: Sequence[str], settings: Mapping[str, Any], views: Sequence[str] = VIEWS
) -> None:
    """Resize and normalise the views of one case."""
    from radpersona.preprocess import preprocess_volume

    for view, src, dst in zip(views, raw, out, strict=True):
        preprocess_volume(
            src,
            dst,
            shape=settings["shape"],
            interpolation=settings["interpolation"],
            normalisation=settings["normalisation"],
            percentiles=settings["percentiles"],
            case=case,
            view=view,
        )
