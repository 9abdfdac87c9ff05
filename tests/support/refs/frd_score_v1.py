# Vendored for tests only (never imported by product code): the normalisation and Fréchet distance
# of the FRD authors' package (Konz, Osuala et al. 2024), verbatim, and the v1 steps that join them.
#
# Source: https://github.com/RichardObi/frd-score/blob/bf05c71fc44e461ab123bd273e58390b90f9cf54/src/frd_score/frd.py
# Commit: bf05c71fc44e461ab123bd273e58390b90f9cf54 (2026-02-26)
# License: Apache License 2.0 (the repository's LICENSE); Copyright the frd-score authors.
#
# Changes: kept calculate_frechet_distance and z_score_normalize unchanged; frd_v1_from_features
# re-states the v1 path of compute_statistics_of_paths/compute_frd (lines ~1650-2085 of that
# file) on feature arrays instead of image files: float32 cast, z-score against D1 (norm_ref
# "d1", norm_range [0, 1], replace_nan=False, handle_std_zero=False), drop NaN/Inf columns,
# np.mean / np.cov(rowvar=False), Fréchet distance, log(d²) (use_paper_log=False).
# pyradiomics extraction, file reading and logging set-up are left out.

import logging
import warnings

import numpy as np
from scipy import linalg


def calculate_frechet_distance(mu1, sigma1, mu2, sigma2, eps=1e-6, means_only=False):
    """Numpy implementation of the Frechet Distance.

    d^2 = ||mu_1 - mu_2||^2 + Tr(C_1 + C_2 - 2*sqrt(C_1*C_2)).

    If means_only=True, only the mean term is computed (no covariance).
    Stable version by Dougal J. Sutherland.
    """
    mu1 = np.atleast_1d(mu1)
    mu2 = np.atleast_1d(mu2)

    diff = mu1 - mu2

    if means_only:
        return float(diff.dot(diff))

    sigma1 = np.atleast_2d(sigma1)
    sigma2 = np.atleast_2d(sigma2)

    assert (
        mu1.shape == mu2.shape
    ), "Dataset1 and dataset2 mean vectors have different lengths"
    assert (
        sigma1.shape == sigma2.shape
    ), "Dataset1 and dataset2 covariances have different dimensions"

    diff = mu1 - mu2

    # Product might be almost singular
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        msg = (
            "Frechet distance produces singular product; "
            "adding %s to diagonal of cov estimates"
        ) % eps
        logging.debug(msg)
        offset = np.eye(sigma1.shape[0]) * eps
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))

    # Numerical error might give slight imaginary component
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            m = np.max(np.abs(covmean.imag))
            logging.debug(f"Imaginary component in covmean: {m}")
        covmean = covmean.real

    tr_covmean = np.trace(covmean)
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean


# ─────────────────────────────────────────────────────────────────────────────
#  Normalization utilities
# ─────────────────────────────────────────────────────────────────────────────


def z_score_normalize(
    features,
    new_min=0,
    new_max=1,
    replace_nan=True,
    strict=False,
    feature_names=None,
    base_distribution=None,
    handle_std_zero=True,
):
    """Z-score normalize features and rescale to [new_min, new_max].

    If base_distribution is provided, mean/std are computed from it (used for
    joint normalization across both datasets).

    Params:
    -- handle_std_zero : bool.  When True (default), features with std=0 are
           set to ``new_min``.  When False, the raw division-by-zero is kept
           (producing inf), which mirrors the original v1 pipeline and lets
           the downstream NaN/Inf column filter handle these features.
    """
    mean_values = (
        np.nanmean(features, axis=0)
        if base_distribution is None
        else np.nanmean(base_distribution, axis=0)
    )
    std_values = (
        np.nanstd(features, axis=0)
        if base_distribution is None
        else np.nanstd(base_distribution, axis=0)
    )

    normalized_features = np.copy(features)

    for idx, (mean_val, std_val) in enumerate(zip(mean_values, std_values)):
        if not np.isnan(mean_val) and not np.isnan(std_val):
            feature_name = (
                feature_names[idx] if feature_names is not None else f"feature_{idx}"
            )
            logging.debug(f"{feature_name} std_val: {std_val}, mean_val: {mean_val}")
            if std_val == 0 and strict:
                raise ValueError(
                    f"z-score: std=0 for feature {feature_name} (mean={mean_val}). "
                    f"Set norm_type to 'minmax' to avoid this."
                )
            if std_val == 0 and handle_std_zero:
                logging.warning(
                    f"z-score: std=0 for feature {feature_name} (mean={mean_val}). "
                    f"Replacing with 0 + new_min={new_min}."
                )
                normalized_features[:, idx] = 0 + float(new_min)
            else:
                with np.errstate(divide="ignore", invalid="ignore"):
                    normalized_features[:, idx] = (
                        (features[:, idx] - mean_val) / std_val
                    ) * (float(new_max) - float(new_min)) + float(new_min)

    if replace_nan:
        nan_indices = np.isnan(normalized_features)
        mean_value = (float(new_min) + float(new_max)) / 2
        normalized_features[nan_indices] = mean_value

    return normalized_features


def frd_v1_from_features(d1, d2):
    """(log FRD, d², kept columns) of the authors' v1 pipeline on (n, d) features; d1 is the reference."""
    feature_list = [np.asarray(d1).astype(np.float32), np.asarray(d2).astype(np.float32)]
    base_distribution = feature_list[0]
    normalized_feature_list = [
        z_score_normalize(
            features=features,
            new_min=0.0,
            new_max=1.0,
            base_distribution=base_distribution,
            replace_nan=False,
            handle_std_zero=False,
        )
        for features in feature_list
    ]
    nan_inf_mask = np.zeros(normalized_feature_list[0].shape[1], dtype=bool)
    for nf in normalized_feature_list:
        nan_inf_mask |= np.isnan(nf).any(axis=0) | np.isinf(nf).any(axis=0)
    keep = ~nan_inf_mask
    normalized_feature_list = [nf[:, keep] for nf in normalized_feature_list]
    mu_list = [np.mean(nf, axis=0) for nf in normalized_feature_list]
    sigma_list = [np.cov(nf, rowvar=False) for nf in normalized_feature_list]
    value = calculate_frechet_distance(mu_list[0], sigma_list[0], mu_list[1], sigma_list[1])
    return (np.log(value) if value > 0 else float("-inf")), float(value), keep
