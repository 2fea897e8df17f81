"""Baselines of the paper's comparisons (tables 5-6), on the same splits, folds and thresholds as the fingerprint.

* :mod:`~radpersona.baselines.classical`: classical radiomics (paper, Sec. 3.1) on the same wide
  feature tables: imputation by training means, variance filter, standardisation, then L1 or L2
  logistic regression, linear SVM (Platt-calibrated) or random forest, hyperparameters by a seeded
  inner stratified grid search.
* :mod:`~radpersona.baselines.mrnet`: MRNet (Bien et al. 2018, PLoS Med 15:e1002699): per view a 2D
  CNN over slices, max-pooled across slices, one model per view and task; a logistic regression
  fuses the three views' probabilities, fitted on out-of-fold predictions.
* :mod:`~radpersona.baselines.elnet`: ELNet (Tsai et al. 2020, MIDL): multi-slice normalisation and
  BlurPool, one view.

Every baseline writes the prediction schema of the fingerprint (docs/architecture.md) with
``model`` and ``experiment`` set to the baseline's name, and chooses its threshold by Youden's J on
an inner validation split of each training fold (:func:`radpersona.fingerprint.inner_validation_split`).
"""

from radpersona.baselines.classical import fit_classical
from radpersona.baselines.elnet import BlurPool, ELNet, fit_elnet
from radpersona.baselines.mrnet import MRNetView, fit_mrnet
from radpersona.baselines.run import FeatureTable, train_folds

__all__ = [
    "BlurPool",
    "ELNet",
    "FeatureTable",
    "MRNetView",
    "fit_classical",
    "fit_elnet",
    "fit_mrnet",
    "train_folds",
]
