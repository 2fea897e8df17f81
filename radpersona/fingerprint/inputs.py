"""What the fingerprint model is given: the feature matrix, labels and images, checked and prepared.

* Missing values of the wide table (a status other than ``ok``) are replaced by the training fold's
  column means (:func:`impute_training_means`), before any model sees them.
* The features are standardised with the training fold's mean and standard deviation (``ddof=0``;
  ``sd == 0`` is replaced by 1): ``r = (x - mean) / sd`` (:func:`standardisation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from radpersona.errors import InputDataError


def training_means(X_train: np.ndarray) -> np.ndarray:
    """The training fold's column means over finite values (0 where a column is all missing)."""
    with np.errstate(invalid="ignore"):
        means = np.nanmean(np.where(np.isfinite(X_train), X_train, np.nan), axis=0)
    return np.where(np.isfinite(means), means, 0.0)


def impute(X: np.ndarray, means: np.ndarray) -> np.ndarray:
    """A copy of ``X`` with each missing or non-finite value replaced by its column's entry of ``means``."""
    X = X.copy()
    bad = ~np.isfinite(X)
    if bad.any():
        X[bad] = np.take(means, np.nonzero(bad)[1])
    return X


def impute_training_means(X_train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Replace missing values by the training fold's column means (0 where a column is all missing).

    Returns copies of ``X_train`` and each of ``others``, in that order.
    """
    means = training_means(X_train)
    return [impute(X, means) for X in (X_train, *others)]


def standardisation(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column mean and standard deviation (``ddof=0``) with ``sd == 0`` replaced by 1."""
    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return mean, sd


def check_inputs(
    images: np.ndarray | None, X: np.ndarray, feature_names: Sequence[str] | None, *, need_images: bool
) -> tuple[np.ndarray | None, np.ndarray]:
    """Check the feature matrix ``X`` ``(n, N)`` (finite, numeric) and the images ``(n, V, D, H, W)`` float32.

    Returns:
        ``images`` (``None`` allowed when ``need_images`` is false) and ``X`` as float64.

    Raises:
        InputDataError: naming the first bad feature column, or the mismatching shape.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise InputDataError(f"feature matrix must be 2-D (cases, features), got shape {X.shape}")
    if not np.issubdtype(X.dtype, np.number):
        raise InputDataError(f"feature matrix must be numeric, got dtype {X.dtype}")
    X = X.astype(np.float64, copy=False)
    if feature_names is not None and len(feature_names) != X.shape[1]:
        raise InputDataError(f"{len(feature_names)} feature names for {X.shape[1]} feature columns")
    bad = ~np.isfinite(X)
    if bad.any():
        column = int(np.flatnonzero(bad.any(axis=0))[0])
        name = feature_names[column] if feature_names is not None else f"#{column}"
        raise InputDataError(
            f"feature column {name!r} has {int(bad[:, column].sum())} missing or non-finite values "
            f"({int(bad.any(axis=0).sum())} such columns in all); fix or drop them before training",
            value=float(X[bad[:, column], column][0]),
        )
    if images is None:
        if need_images:
            raise InputDataError("the usage predictor needs images, got None")
        return None, X
    images = np.asarray(images)
    if images.ndim != 5:
        raise InputDataError(f"images must be (cases, views, D, H, W), got shape {images.shape}")
    if images.dtype != np.float32:
        raise InputDataError(f"images must be float32, got {images.dtype}")
    if images.shape[0] != X.shape[0]:
        raise InputDataError(f"{images.shape[0]} image volumes for {X.shape[0]} feature rows")
    return images, X


def check_labels(y: np.ndarray, n: int) -> np.ndarray:
    """Labels 0/1 of shape ``(n,)``, as int64.

    Raises:
        InputDataError: wrong shape or a value other than 0/1.
    """
    y = np.asarray(y)
    if y.shape != (n,):
        raise InputDataError(f"labels must have shape ({n},), got {y.shape}")
    if not np.isin(y, (0, 1)).all():
        raise InputDataError(f"labels must be 0/1, got values {sorted(np.unique(y).tolist())}")
    return y.astype(np.int64)
