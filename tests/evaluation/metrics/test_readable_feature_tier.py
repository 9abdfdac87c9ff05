"""The feature tier on data of the demo's shape (40 cases × 384 radiomics features): why precision and
recall were 0, the clipped z-scores that keep FRD and KID bounded, FRD as its authors compute it, and
the bounded, alike-rounded CIs and target-direction ranking of the pages' numbers."""

import math

import numpy as np
import pytest
import scipy.stats
import torch
from scipy.ndimage import gaussian_filter

from demo import phantom
from evaluation import formatting, ranking
from evaluation.metrics import catalog, feature, radiomics
from readerstudy.stats import mrmc
from tests.support.reference_libs import torch_fidelity
from tests.support.refs.frd_score_v1 import frd_v1_from_features

N_CASES = 40  # the demo's test slices per task (seed_demo --cases)


@pytest.fixture(scope="module")
def demo_features():
    """Radiomics features (FRD columns) of the demo's 40 T2 references and of two blurred copies."""
    torch.set_num_threads(1)
    references = np.stack(
        [phantom.make_brain_slice(np.random.default_rng(1000 + i))["t2"] for i in range(N_CASES)]
    ).astype(np.float32)
    names = radiomics.feature_names()
    columns = np.array([not catalog.FRD_EXCLUDED_FEATURES.search(name) for name in names])

    def features(images):
        values, _ = radiomics.radiomics_features(images, spacing=(1.0, 1.0))
        return np.asarray(values, dtype=np.float64)[:, columns]

    blurred = {s: np.stack([gaussian_filter(r, s) for r in references]).astype(np.float32) for s in (0.5, 1.0)}
    return {
        "names": [name for name, keep in zip(names, columns, strict=True) if keep],
        "reference": features(references),
        **{f"blur{s}": features(images) for s, images in blurred.items()},
    }


def standardised(generated, reference, clip=catalog.FRD_ZSCORE_CLIP):
    gen, ref, _ = feature.zscore_against_reference(generated, reference, clip=clip)
    return gen, ref


# ----------------------------------------------------------------------------- precision / recall


def test_a_lightly_blurred_copy_was_outside_every_ball_because_of_one_near_constant_feature(demo_features):
    ref, blurred = demo_features["reference"], demo_features["blur0.5"]
    assert ref.shape[0] == N_CASES and ref.shape[1] > 300  # the demo's shape: few cases, many features
    gen_raw, ref_raw = standardised(blurred, ref, clip=None)
    # Unclipped (the old tier): 0 and 0.05, though the copy differs from its reference by a 0.5 px blur.
    assert feature.precision_recall(gen_raw, ref_raw, k=3) == (0.0, 0.05)
    # The cause: the image minimum has a reference spread of 1.5e-4 on a [0, 1] image, so a blur that
    # lifts it puts the copies ~10-40 standard deviations away in that one feature.
    index = demo_features["names"].index("original_firstorder_min")
    assert ref[:, index].std() < 2e-4
    assert np.median(np.abs(gen_raw[:, index])) > 10
    # Clipped to ±10: most copies are inside the references' manifold and most references inside theirs.
    gen, ref_z = standardised(blurred, ref)
    precision, recall = feature.precision_recall(gen, ref_z, k=3)
    assert precision > 0.8 and recall > 0.8


def test_precision_recall_on_the_clipped_features_equal_torch_fidelity(demo_features):
    torch_fidelity()
    from torch_fidelity.metric_prc import prc_features_to_metric

    for key in ("blur0.5", "blur1.0"):
        gen, ref = standardised(demo_features[key], demo_features["reference"])
        ours = feature.precision_recall(gen, ref, k=3)
        theirs = prc_features_to_metric(
            torch.from_numpy(gen), torch.from_numpy(ref), prc_neighborhood=3, prc_batch_size=1000, verbose=False
        )
        assert ours == pytest.approx((theirs["precision"], theirs["recall"]), abs=1e-7)


def test_a_zero_precision_says_why_on_the_page(demo_features):
    """A 1 px blur is outside the references' neighbourhoods even clipped: the page says it is a finding."""
    gen, ref = standardised(demo_features["blur1.0"], demo_features["reference"])
    precision, extra = catalog.get("precision").compute(gen, ref)
    assert precision < 0.1
    assert extra["median_nearest_reference"] > extra["median_reference_radius"]
    note = formatting.feature_note("precision", {**extra, "features_kept": gen.shape[1]}, N_CASES)
    assert f"beyond the median radius {formatting.format_value(extra['median_reference_radius'], 3)}" in note
    assert "not a failure to compute" in note and f"{gen.shape[1]} standardised features" in note
    # Inside the manifold: nothing to explain.
    gen, ref = standardised(demo_features["blur0.5"], demo_features["reference"])
    _, extra = catalog.get("recall").compute(gen, ref)
    assert formatting.feature_note("recall", extra, N_CASES) == ""


# ----------------------------------------------------------------------------- FRD and KID


def near_constant_case(seed=0, n=N_CASES, d=30):
    """Well-behaved features plus one whose reference spread is 1e-6 and whose generated values are off by 0.2."""
    rng = np.random.default_rng(seed)
    reference = rng.standard_normal((n, d))
    generated = rng.standard_normal((n, d)) * 1.1 + 0.2
    reference[:, 0] = 1e-6 * rng.standard_normal(n)
    generated[:, 0] = -0.2 + 1e-6 * rng.standard_normal(n)
    return generated, reference


def test_frd_and_kid_stay_bounded_with_a_near_constant_feature():
    generated, reference = near_constant_case()
    gen_raw, ref_raw = standardised(generated, reference, clip=None)
    gen, ref = standardised(generated, reference)
    raw_frd = feature.frechet_distance_from_features(gen_raw, ref_raw)
    raw_kid, _ = catalog.get("kid").compute(gen_raw, ref_raw)
    assert raw_frd > 1e10 and raw_kid > 1e20  # the one feature at 2e5 standard deviations
    frd = feature.frechet_distance_from_features(gen, ref)
    kid, _ = catalog.get("kid").compute(gen, ref)
    # Without the near-constant feature the distances are those of the other 29; with it clipped to 10,
    # it adds at most (10 + its reference spread ≤ √(n−1))² to the mean term.
    rest = feature.frechet_distance_from_features(gen_raw[:, 1:], ref_raw[:, 1:])
    assert rest < frd < rest + (10 + math.sqrt(N_CASES - 1)) ** 2 + 5
    assert 0 < kid < 100
    # The reference's own values are never clipped (|z| ≤ √(n − 1) < 10 for n = 40).
    assert np.array_equal(ref, ref_raw)


def test_frd_equals_the_authors_code_where_nothing_is_clipped():
    rng = np.random.default_rng(3)
    reference = rng.standard_normal((N_CASES, 12)) * rng.uniform(0.1, 50, 12) + rng.uniform(-5, 5, 12)
    generated = reference[rng.permutation(N_CASES)] * 1.05 + 0.1 * rng.standard_normal((N_CASES, 12))
    reference[:, 4] = 7.0  # a constant feature: the authors drop it (NaN/inf after z-scoring), so do we
    generated[:, 4] = 7.0 + rng.standard_normal(N_CASES)
    gen, _ = standardised(generated, reference, clip=None)
    assert np.abs(gen).max() < catalog.FRD_ZSCORE_CLIP  # the clip does not bind
    their_log, their_value, kept = frd_v1_from_features(reference, generated)
    assert kept.sum() == 11 and not kept[4]
    ours = feature.frechet_radiomics_distance(generated, reference, clip=catalog.FRD_ZSCORE_CLIP)
    # The authors cast features to float32 before z-scoring: agreement to float32 precision.
    assert ours == pytest.approx(their_value, rel=1e-4)
    assert feature.frechet_radiomics_distance(generated, reference, log=True) == pytest.approx(their_log, abs=1e-4)
    assert feature.frd_log(ours) == pytest.approx(math.log(their_value), abs=1e-4)


def test_frd_on_the_demo_features_equals_the_authors_unclipped_and_shrinks_clipped(demo_features):
    reference, blurred = demo_features["reference"], demo_features["blur0.5"]
    _, their_value, _ = frd_v1_from_features(reference, blurred)
    assert feature.frechet_radiomics_distance(blurred, reference) == pytest.approx(their_value, rel=1e-3)
    clipped = feature.frechet_radiomics_distance(blurred, reference, clip=catalog.FRD_ZSCORE_CLIP)
    assert clipped < their_value / 3


def test_frd_log_is_log_of_the_squared_distance():
    assert feature.frd_log(math.e**2) == pytest.approx(2.0)
    assert feature.frd_log(0.0) == -math.inf
    with pytest.raises(ValueError):
        feature.frd_log(-1.0)
    with pytest.raises(ValueError, match="clip must be positive"):
        feature.zscore_against_reference(np.ones((3, 2)), np.arange(6.0).reshape(3, 2), clip=0)


# ----------------------------------------------------------------------------- bounded CIs


@pytest.mark.parametrize("auc, se, df", [(0.97, 0.03, 4.0), (0.99, 0.02, 10.0), (0.03, 0.04, 3.0), (0.6, 0.2, 2.0)])
def test_a_reader_auc_ci_on_the_logit_scale_stays_inside_0_1(auc, se, df):
    low, high = mrmc.logit_ci(auc, se, df, 0.05)
    assert 0 < low < auc < high < 1
    q = scipy.stats.t.ppf(0.975, df)
    half = q * se / (auc * (1 - auc))
    logit = math.log(auc / (1 - auc))
    assert (low, high) == pytest.approx((1 / (1 + math.exp(half - logit)), 1 / (1 + math.exp(-logit - half))))


def test_the_logit_ci_matches_the_symmetric_one_for_a_small_se_and_clips_at_the_bounds():
    low, high = mrmc.logit_ci(0.6, 1e-4, math.inf, 0.05)
    assert (low, high) == pytest.approx((0.6 - 1.959964e-4, 0.6 + 1.959964e-4), rel=1e-6)
    assert mrmc.logit_ci(1.0, 0.05, 5.0, 0.05) == (pytest.approx(1.0 - scipy.stats.t.ppf(0.975, 5) * 0.05), 1.0)


def test_an_or_analysis_near_1_publishes_a_ci_inside_0_1():
    """Four readers who mostly spot the synthetic images: the symmetric OR interval reaches 1.04."""
    rng = np.random.default_rng(4)
    records = []
    for reader in range(4):
        for case in range(16):
            truth = case % 2
            records.append((f"r{reader}", "run", case, truth, float(truth * 3 + rng.integers(1, 6))))
    estimate = mrmc.obuchowski_rockette(records).single_modality["run"]
    assert estimate.ci[1] == pytest.approx(1.0399, abs=1e-4)  # the published symmetric interval
    assert 0 <= estimate.ci_bounded[0] < estimate.auc < estimate.ci_bounded[1] <= 1


# ----------------------------------------------------------------------------- rounding and ranking


@pytest.mark.parametrize(
    "value, low, high, digits, expected",
    [
        (179.6, 179.8, 180.2, 3, ("179.60", "179.80", "180.20")),
        (179.6, 150.0, 210.0, 3, ("180", "150", "210")),
        (0.8123, 0.79, 0.8334, 4, ("0.8123", "0.7900", "0.8334")),
        (0.5, 0.5, 0.5, 3, ("0.500", "0.500", "0.500")),
        (math.inf, 30.0, math.inf, 4, ("∞", "30.00", "∞")),
    ],
)
def test_a_value_and_its_ci_are_rounded_alike(value, low, high, digits, expected):
    shown = formatting.format_interval(value, low, high, digits)
    assert shown == expected
    decimals = {len(text.split(".")[1]) if "." in text else 0 for text in shown if text != "∞"}
    assert len(decimals) == 1


def test_a_turing_auc_ranks_by_closeness_to_one_half():
    info = catalog.get("reader_auc")
    assert info.direction == catalog.TARGET and info.target == 0.5 and info.better_text == "closest to 0.5"
    ranks = ranking.rank_by_direction([0.30, 0.45, 0.70, np.nan], info.direction, info.target)
    assert ranks[:3].tolist() == [2.0, 1.0, 2.0] and np.isnan(ranks[3])
    assert ranking.oriented([0.3, 0.7], catalog.TARGET, 0.5) == pytest.approx([-0.2, -0.2])
    assert ranking.rank_by_direction([1.0, 2.0], catalog.LOWER).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError):
        ranking.oriented([0.5], catalog.TARGET)
    with pytest.raises(ValueError, match="a target value goes with direction"):
        catalog.MetricInfo("x", "X", catalog.CLINICAL, catalog.LOWER, "", "", "1", target=0.5)


def test_does_not_separate_only_when_every_pair_of_cis_overlaps():
    assert ranking.cis_all_overlap([0.1, 0.15, 0.2], [0.3, 0.35, 0.4]) is True
    assert ranking.cis_all_overlap([0.1, 0.2], [0.2, 0.3]) is True  # touching
    # Two pairs overlap, the outer pair does not: the metric separates those two runs.
    assert ranking.cis_all_overlap([0.1, 0.25, 0.41], [0.3, 0.45, 0.6]) is False
    assert ranking.cis_all_overlap([0.1, np.nan], [0.3, np.nan]) is None  # one CI: nothing to compare
