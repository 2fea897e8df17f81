"""Stages of rules/register.smk: references, reg_aladin per case, QC table."""

from __future__ import annotations

import logging

from radpersona.registration import stage_reference as reference  # noqa: F401
from radpersona.registration import stage_register as register  # noqa: F401
from radpersona.registration import stage_registration_qc as registration_qc  # noqa: F401

logger = logging.getLogger("radpersona")
