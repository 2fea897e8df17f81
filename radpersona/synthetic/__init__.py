"""Synthetic knee-MRI cohort in MRNet v1.0 layout, with ground truth (the pipeline's default dataset).

Every case is ONE analytic 3-D knee in its own knee frame (:mod:`.anatomy`): bones, cartilage,
menisci, cruciate ligaments, patellar tendon, joint fluid, fat and muscle, each an (approximate)
signed-distance function (:mod:`.geometry`) turned into tissue occupancy by a smoothstep and
composited in anatomical order with PD-like intensities (:mod:`.render`). A random pose places the
knee in the scanner; each view samples that same knee on its own grid, with its own slice count,
gain, bias field and Rician noise, quantised to uint8 (:mod:`.acquisition`).

Pathologies live in the knee frame, so a lesion shows up in every view whose sampling crosses it
(:mod:`.lesions`, where each lesion's size in mm is stated):

==== ================ ===========================================================================
code finding          model
==== ================ ===========================================================================
1    ACL tear         a gap in the ACL capsule filled with fluid signal
2    meniscal tear    a thin hyperintense band (horizontal, radial or vertical-longitudinal) inside
                      one meniscus that reaches a meniscal surface
3    effusion         distended joint recesses (suprapatellar, capsule, posterior) filled with fluid
4    bone bruise      an ill-defined oedema blob in subchondral femoral or tibial marrow
5    cartilage defect a focal fluid-filled defect in femoral or tibial cartilage
==== ================ ===========================================================================

``difficulty`` in [0, 1] raises noise and bias-field strength and shrinks lesion contrast and size.
Labels (:mod:`.labels`): ``acl ~ Bernoulli(p_acl)``, ``men ~ Bernoulli(p_men)``, ``abn`` with
``P(abn) = p_abn``; "other" findings independent of the ACL and meniscus labels.

The healthy counterpart of each view is the same knee, pose, acquisition and noise realisation with
the lesions switched off; the lesion mask is the lesion whose visible (not painted over) occupancy
exceeds 0.5 at the voxel centre. Each case depends only on ``(seed, index)`` (:mod:`.cohort`).

How hard the cohort is for a whole-volume first-order model is measured by
``benchmarks/synthetic_difficulty.py`` (its output, and the figures in ``docs/synthetic.md``).
"""

from __future__ import annotations

from ..orientation import VIEW_AXES
from .acquisition import (
    COARSE_SPACING_MM,
    FOV_MM,
    QUANT_SCALE,
    VIEW_COVERAGE_MM,
    ViewRender,
    coarse_factor,
    render_view,
    view_affine,
)
from .anatomy import INTENSITY, MAX_ROTATION_DEG, MAX_TRANSLATION_MM, SCALE_RANGE, knee_to_world
from .cohort import (
    GENERATOR_VERSION,
    CaseSimulation,
    case_id,
    case_labels,
    cohort_cases,
    generate_cohort,
    simulate_case,
)
from .geometry import EDGE_MM
from .labels import DEFAULT_PREVALENCE, OTHER_FINDINGS, CaseLabels, draw_labels, other_finding_probability
from .lesions import LESION_CODES, lesion_scales

__all__ = [
    "COARSE_SPACING_MM",
    "DEFAULT_PREVALENCE",
    "EDGE_MM",
    "FOV_MM",
    "GENERATOR_VERSION",
    "INTENSITY",
    "LESION_CODES",
    "MAX_ROTATION_DEG",
    "MAX_TRANSLATION_MM",
    "OTHER_FINDINGS",
    "QUANT_SCALE",
    "SCALE_RANGE",
    "VIEW_AXES",
    "VIEW_COVERAGE_MM",
    "CaseLabels",
    "CaseSimulation",
    "ViewRender",
    "case_id",
    "case_labels",
    "coarse_factor",
    "cohort_cases",
    "draw_labels",
    "generate_cohort",
    "knee_to_world",
    "lesion_scales",
    "other_finding_probability",
    "render_view",
    "simulate_case",
    "view_affine",
]
