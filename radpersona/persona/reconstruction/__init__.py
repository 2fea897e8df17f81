"""Reconstruction studies of the healthy persona (paper, tables 2 and 3) and counterfactual fidelity.

**Configurations** (``persona.reconstruction.configs``: name -> overrides) vary the box size
(``box``), its location (``location``: ``central``, or ``random``: one origin per case drawn from
``derive_case_seed(location_seed, case)``, the same for every model), the views (``views``: ``all``
= the three views as channels, or one of sagittal | coronal | axial) and registration (``reg``: reg |
noreg). Unset keys take ``persona.box``, central, all and the first of ``registration.variants``.
Every model of ``persona.reconstruction.models`` (ddpm | gan | vit_ae) is trained per configuration
on the healthy training cases (abn = 0, split train) with the same boxes (``persona.train_masks``)
and intensity mapping; the DDPM of a configuration with the pipeline's box and all views *is* the
pipeline's ``models/ddpm_{reg}.pt`` (same training), so the default run trains no extra DDPM.

**Held-out healthy reconstruction**: on the healthy cases of the valid split (abn = 0, never seen in
training), each model inpaints its configuration's box and is compared with the original, on the
preprocess intensity scale: MSE and 3-D SSIM inside the box (``region = box``: both images cropped
to the box) and over the whole volume (``region = volume``; outside the box every model equals the
input, so this mostly dilutes the box figures, as in the paper). SSIM is skimage's
``structural_similarity`` per view (``data_range`` = width of ``persona.intensity_range``, a
uniform window of 7 voxels, or the largest odd size that fits the crop), averaged over the views.

**Held-out healthy counterparts** (synthetic source only, ``study = heldout_counterpart``): the true
healthy counterpart of every lesion case of the valid split (below) is a held-out healthy volume as well;
each model inpaints its box and is compared with it exactly as above. With MRNet's prevalence the valid
split holds few healthy cases (2 of 16 in the demo cohort), too few for a paired test; these add one
pair per lesion case. A counterpart takes its lesion case's box origin and sampling seed.

**Counterfactual fidelity** (synthetic source only): on the lesion cases of the valid split, the
truth folder's healthy counterpart and lesion mask (raw MRNet geometry) are brought onto the model's
grid exactly as the image was (``truth_on_grid``: the preprocess resize, the original's own
normalisation statistics, and for ``reg`` the case's reg_aladin affine applied with ``reg_resample``
using cubic interpolation, which reproduces the registered volume to within 1e-4, as the tests check).
The persona is then compared with the *true healthy* volume, inside the lesion voxels that lie in the box
(``region = lesion``; SSIM = mean of the box's SSIM map over those voxels) and in the box
(``region = box``), and ``contrast_removed = 1 - mean|persona - healthy| / mean|original - healthy|``
over those lesion voxels (1: the lesion is gone and replaced by the true healthy tissue; 0: the persona
kept the lesion; below 0: worse than keeping it). Lesion voxels are voxels whose resampled lesion
occupancy is at least 0.5; a case without lesion voxels in the box, or whose lesion has no visible
contrast there (mean|original - healthy| < 1e-3), contributes no counterfactual rows.

Outputs: per configuration a long CSV (``model, config, case, region, mse, ssim`` as in the data
contract, plus ``study`` (heldout_healthy | heldout_counterpart | counterfactual), ``contrast_removed``,
``n_voxels``, ``views``, ``reg``, ``box``, ``box_origin``, ``seed``) and a figure; then
``results/tables/reconstruction.csv`` (all configurations) and ``reconstruction_summary.csv`` /
``.md`` (mean ± sd per configuration, study, region and model, and the paired two-sided Wilcoxon
signed-rank test of the DDPM against each baseline over the same cases).

Modules, by topic:

- :mod:`~radpersona.persona.reconstruction.configs`: the configurations resolved from the settings,
  their box origins and checkpoints (torch-free: the workflow names its files with it);
- :mod:`~radpersona.persona.reconstruction.metrics`: MSE, SSIM and contrast removed;
- :mod:`~radpersona.persona.reconstruction.truth_grid`: the synthetic truth on the model's grid;
- :mod:`~radpersona.persona.reconstruction.study`: training, inference and scoring of one configuration;
- :mod:`~radpersona.persona.reconstruction.report`: summary statistics, the Markdown table, the figure.

The stages of the three rules (``train_reconstruction_model``, ``evaluate_reconstruction_config``,
``evaluate_reconstruction``) are in :mod:`radpersona.stages.persona`.
"""
