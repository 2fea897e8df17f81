"""Explanations a clinician can read (paper, Sec. 6).

- :func:`explain_case`: one self-contained HTML page per case and task — prediction, the three views
  (original, healthy persona, residual) with the patch grid and the fingerprint's patches coloured by
  their summed contribution, the fingerprint table with plain descriptions, and the logit
  decomposition ``intercept + sum of contributions = logit``; the true lesion outline for synthetic
  cases.
- :func:`summarise_fingerprints`: population figures per experiment and task — usage rate by family,
  view, image and patch among positive and negative cases, the largest ``|beta|``, features used per
  patient, and (synthetic cohort) how often highlighted patches overlap the true lesion.
"""

from radpersona.explain.anatomy import ORIENTATION_NOTE, VIEW_DIRECTIONS, axis_word, patch_position
from radpersona.explain.descriptions import FEATURE_DESCRIPTIONS, describe_feature
from radpersona.explain.inputs import CasePrediction, load_case_prediction, patch_contributions
from radpersona.explain.page import ExplainSettings, choose_slices, explain_case
from radpersona.explain.population import SUMMARY_FILES, SummarySettings, summarise_fingerprints, usage_rates
from radpersona.truth import LESION_FRACTION, TASK_LESION_CODES, lesion_fraction

__all__ = [
    "FEATURE_DESCRIPTIONS",
    "LESION_FRACTION",
    "ORIENTATION_NOTE",
    "SUMMARY_FILES",
    "TASK_LESION_CODES",
    "VIEW_DIRECTIONS",
    "CasePrediction",
    "ExplainSettings",
    "SummarySettings",
    "axis_word",
    "choose_slices",
    "describe_feature",
    "explain_case",
    "lesion_fraction",
    "load_case_prediction",
    "patch_contributions",
    "patch_position",
    "summarise_fingerprints",
    "usage_rates",
]
