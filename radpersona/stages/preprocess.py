"""Stage of rules/preprocess.smk: crop, resize and normalise every view of a case."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from radpersona.layout import Layout
from radpersona.preprocess import preprocess_volume
from radpersona.settings import PreprocessSettings

logger = logging.getLogger("radpersona")


def preprocess(
    *, case: str, views: Sequence[str], settings: Mapping[str, Any] | PreprocessSettings, results: str
) -> None:
    """Rule ``preprocess``: ``raw(case, view)`` cropped, resized and normalised into ``pre(case, view)`` of
    ``Layout(results)``, for each of ``views``."""
    settings = PreprocessSettings.from_config(settings)
    layout = Layout(results)
    for view in views:
        preprocess_volume(layout.raw(case, view), layout.pre(case, view), settings, case=case, view=view)
