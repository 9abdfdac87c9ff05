"""The metric catalogue: each metric's version and compute function declared once, with the stored
version strings unchanged from the tables they replaced (so no existing result turns stale)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluation.metrics import catalog, feature, pixel
from evaluation.metrics.extractors import REGISTRY

ROOT = Path(__file__).resolve().parents[3]

# The version tables the catalogue replaced (pixel.METRIC_VERSIONS, feature.METRIC_VERSIONS,
# catalog.CLINICAL_METRIC_VERSIONS and FRD_SELECTION_VERSION), and how metric_version combined them.
OLD_PIXEL_VERSIONS = {"mse": "1", "mae": "1", "nmse": "1", "psnr": "1", "ssim": "1", "ms_ssim": "1"}
# kid, precision, recall 2 and the FRD's standardisation 2: radiomics z-scores clipped to ±10 (catalog.FRD_ZSCORE_CLIP).
OLD_FEATURE_VERSIONS = {"frechet_distance": "1", "kid": "2", "precision": "2", "recall": "2", "frd": "2"}
OLD_CLINICAL_VERSIONS = {"downstream_dice": "1", "downstream_hd95": "1", "utility_ratio": "1"}
OLD_CLINICAL_VERSIONS.update({key: "1" for key in ("reader_mos", "reader_preference", "reader_marks")})
OLD_CLINICAL_VERSIONS["reader_auc"] = "2"  # 2: the logit-scale CI
OLD_FRD_SELECTION_VERSION = "1"
# Added since (no stored results to keep): the CLIP and DINOv2 metrics.
NEW_EMBEDDING_VERSIONS = {"clip_similarity": "1", "cmmd": "1", "fd_clip": "1", "fd_dinov2": "1"}
# Metrics added after those tables (no stored strings to keep), with their versions.
NEW_VERSIONS = {"lpips": "1"}


def old_metric_version(key, extractor=""):
    if key in OLD_PIXEL_VERSIONS:
        return OLD_PIXEL_VERSIONS[key]
    if key in OLD_CLINICAL_VERSIONS:
        return OLD_CLINICAL_VERSIONS[key]
    if key in NEW_EMBEDDING_VERSIONS:
        base = NEW_EMBEDDING_VERSIONS[key]
    else:
        base = OLD_FEATURE_VERSIONS["frechet_distance" if key in ("frd", "fid") else key]
    if key == "frd":
        base = f"{base}.{OLD_FEATURE_VERSIONS['frd']}.s{OLD_FRD_SELECTION_VERSION}"
    if extractor:
        base = f"{base}+{extractor}-{REGISTRY[extractor].version}"
    return base


def test_every_metric_is_catalogued_in_one_table_of_tiers():
    assert set(catalog.METRICS) == set(OLD_PIXEL_VERSIONS) | {"frd", "fid", "kid", "precision", "recall"} | set(
        OLD_CLINICAL_VERSIONS
    ) | set(NEW_EMBEDDING_VERSIONS) | set(NEW_VERSIONS) | {
        f"{p}:{m}" for p, m in [("fastmri", "nmse"), ("fastmri", "psnr"), ("fastmri", "ssim")]
    } | {f"synthrad2025:{m}" for m in ("mae", "psnr", "ms_ssim")}
    for key, info in catalog.METRICS.items():
        assert info.key == key and info.version and info.direction in (catalog.HIGHER, catalog.LOWER, catalog.TARGET)
        assert (info.target is not None) == (info.direction == catalog.TARGET)


@pytest.mark.parametrize("extractor", ["", "radiomics", "inception_v3", "study-7", "study-7:realism"])
def test_stored_version_strings_are_the_old_ones_for_every_metric(extractor):
    for key, info in catalog.METRICS.items():
        if key in catalog.PROFILE_METRICS:
            continue  # the profiles' metrics: versioned by their profile (tests/evaluation/test_regions_profiles.py)
        if info.tier == catalog.FEATURE and extractor.startswith("study"):
            continue  # a study is no feature extractor (both versions raise KeyError: see below)
        if key in NEW_VERSIONS:
            continue
        assert catalog.metric_version(key, extractor) == old_metric_version(key, extractor), (key, extractor)


def test_version_strings_spelled_out():
    assert {key: catalog.metric_version(key) for key in catalog.METRICS} == {
        **OLD_PIXEL_VERSIONS,
        "frd": "1.2.s1",
        "fid": "1",
        "kid": "2",
        "precision": "2",
        "recall": "2",
        **OLD_CLINICAL_VERSIONS,
        **NEW_EMBEDDING_VERSIONS,
        **NEW_VERSIONS,
        **{key: "1" for key in catalog.PROFILE_METRICS},
    }
    assert catalog.metric_version("cmmd", "clip") == "1+clip-1"
    assert catalog.metric_version("fd_dinov2", "dinov2") == "1+dinov2-1"
    radiomics = REGISTRY["radiomics"].version
    assert catalog.metric_version("frd", "radiomics") == f"1.2.s1+radiomics-{radiomics}"
    assert catalog.metric_version("kid", "inception_v3") == f"2+inception_v3-{REGISTRY['inception_v3'].version}"
    # A reader study's result names its study in the extractor field; its version is the metric's.
    assert catalog.metric_version("reader_mos", "study-7:realism") == "1"


def test_an_unknown_metric_or_extractor_has_no_version():
    with pytest.raises(KeyError, match="Unknown metric 'no_such_metric'"):
        catalog.metric_version("no_such_metric")
    with pytest.raises(KeyError):
        catalog.metric_version("kid", "vgg")
    with pytest.raises(KeyError):
        catalog.metric_version("frd", "old-study")


def test_the_job_computes_every_pixel_and_feature_metric_from_its_entry():
    for info in [*catalog.PIXEL_METRICS.values(), *catalog.FEATURE_METRICS.values()]:
        assert callable(info.compute), info.key
    for info in [*catalog.CLINICAL_METRICS.values(), *catalog.READER_METRICS.values()]:
        assert info.compute is None, info.key


def test_pixel_metrics_share_one_signature_generated_first():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 2, (3, 1, 48, 48))
    generated = reference + rng.normal(0, 0.1, reference.shape)
    direct = {
        "psnr": pixel.psnr(generated, reference, 2.0),
        "ssim": pixel.ssim(generated, reference, 2.0),
        "ms_ssim": pixel.ms_ssim(generated, reference, 2.0),
        "mse": pixel.mse(generated, reference),
        "mae": pixel.mae(generated, reference),
        "nmse": pixel.nmse(generated, reference),
    }
    for key, expected in direct.items():
        values = catalog.get(key).compute(generated, reference, data_range=2.0)
        assert values.shape == (3,) and values.dtype == torch.float64
        torch.testing.assert_close(values, expected, rtol=0, atol=0)
    # NMSE is normalised by the reference: the order is not interchangeable.
    swapped = catalog.get("nmse").compute(reference, generated, data_range=2.0)
    assert not torch.allclose(swapped, direct["nmse"])
    # MSE, MAE and NMSE take the range and ignore it.
    torch.testing.assert_close(catalog.get("mae").compute(generated, reference, data_range=99.0), direct["mae"])


def test_feature_metrics_give_the_value_and_what_the_result_keeps():
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((60, 6))
    generated = rng.standard_normal((40, 6)) * 1.5 + 0.3
    value, extra = catalog.get("fid").compute(generated, reference)
    assert value == feature.frechet_distance_from_features(generated, reference) and extra == {}
    assert catalog.get("frd").compute is catalog.get("fid").compute  # FRD: the same distance, on z-scored features
    mean, std = feature.kid(generated, reference, subsets=100, subset_size=40, seed=0)
    assert catalog.get("kid").compute(generated, reference) == (
        mean,
        {"std_over_subsets": std, "subsets": 100, "subset_size": 40},
    )
    precision, recall = feature.precision_recall(generated, reference, k=3)
    # The distances behind them, recomputed here: the references' 3-NN radii and each output's nearest reference.
    ref_dist = np.linalg.norm(reference[:, None] - reference[None], axis=-1)
    cross = np.linalg.norm(generated[:, None] - reference[None], axis=-1)
    details = {
        "k": 3,
        "median_reference_radius": pytest.approx(np.median(np.sort(ref_dist, axis=1)[:, 3]), rel=1e-12),
        "median_nearest_reference": pytest.approx(np.median(cross.min(axis=1)), rel=1e-12),
    }
    assert catalog.get("precision").compute(generated, reference) == (precision, details)
    assert catalog.get("recall").compute(generated, reference) == (recall, details)
    assert precision != recall


def test_the_catalogue_is_a_pure_module():
    code = (
        "import sys; import evaluation.metrics.catalog; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PATH": "/usr/bin:/bin"})
