"""Stages of rules/report.smk: explanation pages and the population summary of fingerprints."""

from __future__ import annotations

import logging

from radpersona.explain.stages import stage_explain as explain  # noqa: F401
from radpersona.explain.stages import stage_summarise_fingerprints as summarise_fingerprints  # noqa: F401

logger = logging.getLogger("radpersona")
