"""Patient-specific radiomic fingerprints (paper, Sec. 4.2-4.4, 5.2.3-5.2.4).

A usage predictor ``f_alpha`` (3D ResNet-18) maps the registered views to usage probabilities
``u in [0, 1]^N`` over the candidate radiomic features ``r``; a logistic regression with one
coefficient per feature and an intercept predicts ``sigmoid(sum_n beta_n u_n r_n + b)`` (Eq. 7).
At inference ``z_n = 1[u_n > T]`` replaces ``u`` (Eq. 10) and the selected features with their
contributions ``beta_n r_n`` form the case's fingerprint.

Modules: ``model`` (the networks), ``inputs`` (checks, imputation, standardisation), ``splits`` (inner
validation split, folds, batches), ``train`` (Eq. 8), ``trained`` (the trained model: predict, save,
load), ``threshold`` (Youden's J), ``tables`` (feature columns, fingerprints, population table).
"""

from radpersona.fingerprint.inputs import impute, impute_training_means, standardisation, training_means
from radpersona.fingerprint.model import FingerprintNet, UsagePredictor, build_fingerprint_net, load_backbone_weights
from radpersona.fingerprint.splits import inner_validation_split, stratified_folds
from radpersona.fingerprint.tables import (
    FINGERPRINT_COLUMNS,
    FeatureKey,
    fingerprint_table,
    parse_feature_name,
    population_table,
    select_columns,
    top_share,
)
from radpersona.fingerprint.threshold import apply_threshold, youden_threshold
from radpersona.fingerprint.train import (
    FoldResult,
    TrainingData,
    cross_validate,
    fit_fingerprint,
    prepare_training_data,
)
from radpersona.fingerprint.trained import TrainedFingerprint

__all__ = [
    "FINGERPRINT_COLUMNS",
    "FeatureKey",
    "FingerprintNet",
    "FoldResult",
    "TrainedFingerprint",
    "TrainingData",
    "UsagePredictor",
    "apply_threshold",
    "build_fingerprint_net",
    "cross_validate",
    "fingerprint_table",
    "fit_fingerprint",
    "impute",
    "impute_training_means",
    "inner_validation_split",
    "load_backbone_weights",
    "parse_feature_name",
    "population_table",
    "prepare_training_data",
    "select_columns",
    "standardisation",
    "training_means",
    "stratified_folds",
    "top_share",
    "youden_threshold",
]
