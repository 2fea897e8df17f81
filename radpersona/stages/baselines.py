"""Stage of rules/baselines.smk: classical radiomics and CNN baselines on the fingerprint's folds."""

from __future__ import annotations

import logging

from radpersona.baselines import stage_train_baseline as train_baseline  # noqa: F401

logger = logging.getLogger("radpersona")
