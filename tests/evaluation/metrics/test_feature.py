"""Feature-tier metrics against pytorch-fid, torch-fidelity, torchmetrics and closed forms."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch

from evaluation.metrics import feature
from evaluation.metrics.feature import FeatureStats
from tests.support.reference_libs import pytorch_fid_score, torch_fidelity

ROOT = Path(__file__).resolve().parents[3]
# pytorch-fid still passes sqrtm's deprecated `disp` argument.
pytestmark = pytest.mark.filterwarnings("ignore:The `disp` argument is deprecated:DeprecationWarning")


def inception_like(rng, n, d, *, rank=16, shift=0.0, loadings=None):
    """ReLU'd low-rank-plus-noise Gaussian features: sparse, non-negative, correlated."""
    if loadings is None:
        loadings = rng.standard_normal((rank, d)) / np.sqrt(rank)
    x = rng.standard_normal((n, loadings.shape[0])) @ loadings * 1.5 + 0.5 * rng.standard_normal((n, d)) + 0.3
    return np.maximum(x + shift, 0)


def image_patches(image, size, step):
    """Flattened size × size patches of a real image, one row per patch."""
    image = np.asarray(image, dtype=np.float64)
    rows = [
        image[i : i + size, j : j + size].ravel()
        for i in range(0, image.shape[0] - size + 1, step)
        for j in range(0, image.shape[1] - size + 1, step)
    ]
    return np.stack(rows)


@pytest.fixture(scope="module")
def fid():
    return pytorch_fid_score()


@pytest.fixture(scope="module")
def tf_kid():
    torch_fidelity()
    from torch_fidelity.metric_kid import kid_features_to_metric

    return kid_features_to_metric


@pytest.fixture(scope="module")
def tf_prc():
    torch_fidelity()
    from torch_fidelity.metric_prc import prc_features_to_metric

    return prc_features_to_metric


@pytest.fixture(scope="module")
def camera_patches():
    from skimage import data

    patches = image_patches(data.camera(), 8, 4)  # (16129, 64)
    return patches[: len(patches) // 2], patches[len(patches) // 2 :]  # top and bottom of the image


@pytest.fixture(scope="module")
def ct_patches():
    from pydicom import examples

    ds = examples.ct
    hu = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    return image_patches(hu, 6, 2)  # (3844, 36) CT numbers


def moments(x):
    return x.mean(axis=0), np.cov(x, rowvar=False)


# ----------------------------------------------------------------------------- Fréchet distance


def test_frechet_distance_matches_pytorch_fid(fid):
    rng = np.random.default_rng(0)
    d = 256  # d = 512 and 2048: bench/bench_frechet.py (sqrtm takes seconds there)
    loadings = rng.standard_normal((32, d)) / np.sqrt(32)
    x = inception_like(rng, 1000, d, loadings=loadings)
    y = inception_like(rng, 800, d, shift=0.05, loadings=loadings + 0.1 * rng.standard_normal(loadings.shape))
    (mu1, s1), (mu2, s2) = moments(x), moments(y)
    ours = feature.frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(float(fid.calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-6)
    assert feature.frechet_distance_from_features(x, y) == pytest.approx(ours, rel=1e-10)


@pytest.mark.parametrize("d", [2, 5, 32])  # d = 1: see the closed forms (sqrtm rejects 1 × 1)
def test_frechet_distance_matches_pytorch_fid_in_small_dimensions(fid, d):
    rng = np.random.default_rng(d)
    x = rng.standard_normal((300, d)) @ rng.standard_normal((d, d))
    y = rng.standard_normal((200, d)) * 1.5 + 0.3
    (mu1, s1), (mu2, s2) = moments(x), moments(y)
    ours = feature.frechet_distance(mu1, s1, mu2, s2)
    assert ours == pytest.approx(float(fid.calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-6)


def test_frechet_distance_matches_pytorch_fid_on_real_image_patches(fid, camera_patches):
    top, bottom = camera_patches
    (mu1, s1), (mu2, s2) = moments(top), moments(bottom)
    ours = feature.frechet_distance(mu1, s1, mu2, s2)
    assert ours > 0
    assert ours == pytest.approx(float(fid.calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-6)
    assert feature.frechet_distance_from_features(top, bottom) == pytest.approx(ours, rel=1e-9)


def test_frechet_distance_closed_forms():
    # 1-D: (μ1 − μ2)² + (σ1 − σ2)²; commuting (diagonal) covariances: Σ (√a − √b)².
    assert feature.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    a, b = np.array([1.0, 4.0, 0.0]), np.array([9.0, 1.0, 2.0])  # singular: Cholesky fails, eigh fallback
    expected = 2.0**2 + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert feature.frechet_distance(np.zeros(3), np.diag(a), np.array([2.0, 0, 0]), np.diag(b)) == pytest.approx(
        expected, rel=1e-12
    )


def test_frechet_distance_is_zero_for_identical_and_symmetric():
    rng = np.random.default_rng(1)
    x, y = inception_like(rng, 400, 40), inception_like(rng, 300, 40, shift=0.2)
    (mu1, s1), (mu2, s2) = moments(x), moments(y)
    assert feature.frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-9)
    assert feature.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(feature.frechet_distance(mu2, s2, mu1, s1))


def test_frechet_distance_accepts_torch_and_rejects_bad_input():
    rng = np.random.default_rng(2)
    (mu1, s1), (mu2, s2) = moments(rng.standard_normal((50, 4))), moments(rng.standard_normal((50, 4)) + 1)
    expected = feature.frechet_distance(mu1, s1, mu2, s2)
    as_torch = [torch.from_numpy(v).float() for v in (mu1, s1, mu2, s2)]
    assert feature.frechet_distance(*as_torch) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="Shapes"):
        feature.frechet_distance(mu1, s1, mu2[:3], s2[:3, :3])
    with pytest.raises(ValueError, match="NaN"):
        feature.frechet_distance(mu1, np.full_like(s1, np.nan), mu2, s2)
    with pytest.raises(ValueError, match="Feature dimensions"):
        feature.frechet_distance_from_features(np.ones((5, 3)), np.ones((5, 4)))


def test_fewer_samples_than_dims_uses_singular_values(fid):
    rng = np.random.default_rng(3)
    d = 200
    x, y = inception_like(rng, 40, d), inception_like(rng, 60, d, shift=0.1)
    value = feature.frechet_distance_from_features(x, y)
    assert np.isfinite(value) and value > 0 and isinstance(value, float)
    # The covariance route on the same (singular) covariances agrees ...
    (mu1, s1), (mu2, s2) = moments(x), moments(y)
    assert value == pytest.approx(feature.frechet_distance(mu1, s1, mu2, s2), rel=1e-6)
    # ... while sqrtm of the singular product is complex (pytorch-fid drops the imaginary part) ...
    assert np.iscomplexobj(scipy.linalg.sqrtm(s1 @ s2))
    # ... and for identical sets gives an impossible negative distance where ours is exactly 0.
    assert feature.frechet_distance_from_features(x, x.copy()) == 0.0
    assert fid.calculate_frechet_distance(mu1, s1, mu1, s1) < -1e-7


def test_singular_value_and_covariance_routes_agree_where_both_apply(camera_patches):
    rng = np.random.default_rng(4)
    x, y = inception_like(rng, 300, 50), inception_like(rng, 250, 50, shift=0.1)
    (mu1, s1), (mu2, s2) = moments(x), moments(y)
    assert feature._frechet_distance_singular_values(x, y) == pytest.approx(
        feature.frechet_distance(mu1, s1, mu2, s2), rel=1e-9
    )
    top, bottom = camera_patches
    small = top[::200], bottom[::100]  # real image patches, n ≤ d = 64 in the first set
    assert small[0].shape[0] <= 64 < small[1].shape[0]
    (mu1, s1), (mu2, s2) = moments(small[0]), moments(small[1])
    assert feature.frechet_distance_from_features(*small) == pytest.approx(
        feature.frechet_distance(mu1, s1, mu2, s2), rel=1e-6
    )


# ----------------------------------------------------------------------------- streaming statistics


def test_stats_match_numpy_mean_and_unbiased_cov():
    rng = np.random.default_rng(5)
    x = inception_like(rng, 1000, 30)
    stats = FeatureStats()
    for start in range(0, 1000, 137):
        stats.update(x[start : start + 137])
    assert stats.n == 1000
    np.testing.assert_allclose(stats.mean(), x.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(stats.covariance(), np.cov(x, rowvar=False), rtol=1e-10, atol=1e-13)


def test_stats_merged_across_workers_equal_single_pass():
    rng = np.random.default_rng(6)
    x = inception_like(rng, 900, 20)
    single = FeatureStats.from_features(x, batch_size=100)
    shards = [FeatureStats.from_features(x[i : i + 300] * 1.0, batch_size=64) for i in range(0, 900, 300)]
    merged = shards[0] + shards[1] + shards[2]
    merged_other_order = shards[2].merge(shards[0].merge(shards[1]))
    for stats in (merged, merged_other_order):
        assert stats.n == 900
        np.testing.assert_allclose(stats.mean(), single.mean(), rtol=1e-12)
        np.testing.assert_allclose(stats.covariance(), single.covariance(), rtol=1e-10, atol=1e-13)
    assert shards[0].n == 300  # merging leaves the inputs alone
    assert (FeatureStats() + single).n == 900 and (single + FeatureStats(20)).n == 900


def test_stats_keep_precision_with_large_offset(ct_patches):
    # Features ~1e7 ± 3: the textbook Σffᵀ/n − μμᵀ loses most digits; shifted sums do not.
    rng = np.random.default_rng(7)
    x = 1e7 + rng.standard_normal((2000, 8)) @ rng.standard_normal((8, 8))
    reference = np.cov(x, rowvar=False)
    naive = (x.T @ x - np.outer(x.sum(0), x.sum(0)) / len(x)) / (len(x) - 1)
    assert np.abs(naive - reference).max() > 1e-4 * np.abs(reference).max()
    # Shards with different shifts (different offsets in each), merged.
    parts = [FeatureStats.from_features(x[i : i + 500] + 0.0, batch_size=128) for i in range(0, 2000, 500)]
    merged = parts[0] + parts[1] + parts[2] + parts[3]
    streamed = FeatureStats.from_features(x, batch_size=300)
    for stats in (merged, streamed):
        np.testing.assert_allclose(stats.covariance(), reference, rtol=1e-9, atol=1e-9 * np.abs(reference).max())
        np.testing.assert_allclose(stats.mean(), x.mean(axis=0), rtol=1e-14)
    # Workers whose data (and so whose shifts) differ: the merge re-centres on the combined mean.
    a, b = x[:1000], x[1000:] + np.linspace(-50.0, 50.0, 8)
    both = np.cov(np.vstack([a, b]), rowvar=False)
    merged = FeatureStats.from_features(a) + FeatureStats.from_features(b)
    np.testing.assert_allclose(merged.covariance(), both, rtol=1e-9, atol=1e-11 * np.abs(both).max())
    # Real CT numbers (air at −1000 HU), the shift taken from a small, unrepresentative first batch.
    stats = FeatureStats().update(ct_patches[:3]).update(ct_patches[3:])
    reference = np.cov(ct_patches, rowvar=False)
    np.testing.assert_allclose(stats.covariance(), reference, rtol=1e-9, atol=1e-10 * np.abs(reference).max())


def test_stats_roundtrip_through_npz_and_bytes_without_pickle(tmp_path):
    rng = np.random.default_rng(8)
    stats = FeatureStats.from_features(inception_like(rng, 100, 6))
    stats.to_npz(tmp_path / "stats.npz")
    for loaded in (FeatureStats.from_npz(tmp_path / "stats.npz"), FeatureStats.from_bytes(stats.to_bytes())):
        assert loaded.n == stats.n
        np.testing.assert_array_equal(loaded.mean(), stats.mean())
        np.testing.assert_array_equal(loaded.covariance(), stats.covariance())
    with np.load(tmp_path / "stats.npz", allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)
    import io

    buffer = io.BytesIO()
    np.savez(buffer, format=np.int64(1), n=np.int64(3), shift=np.zeros(2), sum=np.zeros(3), sum_outer=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Malformed"):
        FeatureStats.from_bytes(buffer.getvalue())
    buffer = io.BytesIO()
    np.savez(buffer, format=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError):  # pickled content is refused by allow_pickle=False
        FeatureStats.from_bytes(buffer.getvalue())


def test_stats_accept_torch_batches_and_hold_only_d_plus_d_squared_numbers():
    rng = np.random.default_rng(9)
    x = inception_like(rng, 600, 16).astype(np.float32)
    stats = FeatureStats()
    for start in range(0, 600, 50):
        stats.update(torch.from_numpy(x[start : start + 50]))
    held = [v for v in vars(stats).values() if isinstance(v, np.ndarray)]
    assert sum(v.size for v in held) == 16 + 16 * 16 + 16  # sum, sum_outer, shift
    assert all(v.dtype == np.float64 for v in held)
    np.testing.assert_allclose(stats.covariance(), np.cov(x.astype(np.float64), rowvar=False), rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="features"):
        stats.update(np.ones((2, 15)))
    with pytest.raises(ValueError, match="NaN"):
        stats.update(np.full((2, 16), np.nan))
    with pytest.raises(ValueError, match="at least 2"):
        FeatureStats().update(np.ones((1, 3))).covariance()


def test_frechet_distance_stats_equals_from_features(fid):
    rng = np.random.default_rng(10)
    x, y = inception_like(rng, 700, 48), inception_like(rng, 500, 48, shift=0.1)
    a, b = FeatureStats.from_features(x, batch_size=64), FeatureStats.from_features(y, batch_size=100)
    value = feature.frechet_distance_stats(a, b)
    assert value == pytest.approx(feature.frechet_distance_from_features(x, y), rel=1e-10)
    (mu1, s1), (mu2, s2) = moments(x), moments(y)
    assert value == pytest.approx(float(fid.calculate_frechet_distance(mu1, s1, mu2, s2)), rel=1e-6)


# ----------------------------------------------------------------------------- KID


def tf_kid_value(tf_kid, x, y, *, subsets, subset_size, seed, degree=3, gamma=None, coef0=1):
    """torch-fidelity's KID; note its kernel keywords are kid_kernel_poly_{degree,gamma,coef0}."""
    out = tf_kid(
        torch.from_numpy(x), torch.from_numpy(y), kid_subsets=subsets, kid_subset_size=subset_size, rng_seed=seed,
        kid_kernel="poly", kid_kernel_poly_degree=degree, kid_kernel_poly_gamma=gamma, kid_kernel_poly_coef0=coef0,
        verbose=False,
    )  # fmt: skip
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


@pytest.mark.parametrize(
    "n1, n2, subsets, subset_size",
    [(120, 150, 30, 50), (2000, 1500, 3, 100)],  # the full-kernel route, then the per-subset route
)
def test_kid_matches_torch_fidelity_on_the_same_subsets(tf_kid, n1, n2, subsets, subset_size):
    rng = np.random.default_rng(11)
    x, y = inception_like(rng, n1, 24), inception_like(rng, n2, 24, shift=0.1)
    ours = feature.kid(x, y, subsets=subsets, subset_size=subset_size, seed=123)
    ref = tf_kid_value(tf_kid, x, y, subsets=subsets, subset_size=subset_size, seed=123)
    assert ours[0] == pytest.approx(ref[0], rel=1e-9)
    assert ours[1] == pytest.approx(ref[1], rel=1e-6)


def test_kid_both_routes_agree_and_take_kernel_parameters(tf_kid):
    rng = np.random.default_rng(12)
    x, y = inception_like(rng, 80, 10), inception_like(rng, 90, 10, shift=0.3)
    kernel = (2, 0.05, 0.5)
    idx1 = np.stack([rng.choice(80, 40, replace=False) for _ in range(7)])
    idx2 = np.stack([rng.choice(90, 40, replace=False) for _ in range(7)])
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    np.testing.assert_allclose(
        feature._kid_full(tx, ty, idx1, idx2, kernel), feature._kid_subsets(tx, ty, idx1, idx2, kernel), rtol=1e-10
    )
    ours = feature.kid(x, y, subsets=7, subset_size=40, degree=2, gamma=0.05, coef0=0.5, seed=5)
    ref = tf_kid_value(tf_kid, x, y, subsets=7, subset_size=40, seed=5, degree=2, gamma=0.05, coef0=0.5)
    assert ours == pytest.approx(ref, rel=1e-9)


def test_kid_matches_torchmetrics_on_the_whole_set(camera_patches):
    from torchmetrics.image.kid import poly_mmd

    top, bottom = camera_patches
    x, y = top[::40] / 255, bottom[::40] / 255  # the same number of real image patches each
    n = min(len(x), len(y))
    x, y = x[:n], y[:n]
    ours, std = feature.kid(x, y, subsets=1, subset_size=n)  # one subset: every row, order irrelevant
    ref = poly_mmd(torch.from_numpy(x), torch.from_numpy(y), degree=3, gamma=None, coef=1.0)
    assert ours == pytest.approx(float(ref), rel=1e-9) and std == 0.0


def test_kid_subset_size_is_capped_at_the_smaller_set(tf_kid):
    rng = np.random.default_rng(13)
    x, y = inception_like(rng, 60, 8), inception_like(rng, 45, 8)
    capped = feature.kid(x, y, subsets=5, subset_size=1000, seed=1)
    assert capped == feature.kid(x, y, subsets=5, subset_size=45, seed=1)
    ref = tf_kid_value(tf_kid, x, y, subsets=5, subset_size=45, seed=1)
    assert capped == pytest.approx(ref, rel=1e-9)
    with pytest.raises(ValueError, match="at least 2"):
        feature.kid(x, y, subset_size=1)


def test_kid_is_near_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(14)
    loadings = rng.standard_normal((8, 32)) / np.sqrt(8)
    a, b = inception_like(rng, 400, 32, loadings=loadings), inception_like(rng, 400, 32, loadings=loadings)
    c = inception_like(rng, 400, 32, loadings=loadings, shift=0.5)
    same, _ = feature.kid(a, b, subsets=20, subset_size=200)
    different, _ = feature.kid(a, c, subsets=20, subset_size=200)
    assert abs(same) < 0.05 * different


# ----------------------------------------------------------------------------- precision / recall


def tf_pr(tf_prc, generated, reference, k=3, save_cpu_ram=False, batch_size=10000):
    """torch-fidelity's precision and recall, called generated first as ours is (its features_1 = fake,
    features_2 = real)."""
    out = tf_prc(
        torch.from_numpy(generated), torch.from_numpy(reference), prc_neighborhood=k, prc_batch_size=batch_size,
        save_cpu_ram=save_cpu_ram, verbose=False,
    )  # fmt: skip
    return out["precision"], out["recall"]


def test_precision_recall_matches_torch_fidelity(tf_prc):
    rng = np.random.default_rng(15)
    loadings = rng.standard_normal((8, 32)) / np.sqrt(8)
    real = inception_like(rng, 500, 32, loadings=loadings)
    fake = inception_like(rng, 400, 32, loadings=loadings * 1.3, shift=0.1)
    ours = feature.precision_recall(fake, real, k=3)
    assert 0 < ours[0] < 1 and 0 < ours[1] < 1
    # torch-fidelity reports float32 means: equal counts, to float32 rounding.
    assert ours == pytest.approx(tf_pr(tf_prc, fake, real), abs=1e-7)
    assert ours == pytest.approx(tf_pr(tf_prc, fake, real, save_cpu_ram=True, batch_size=128), abs=1e-7)
    assert feature.precision_recall(fake, real, k=3, batch_size=37) == ours  # blocked distances, same answer
    ours5 = feature.precision_recall(fake, real, k=5)
    assert ours5 == pytest.approx(tf_pr(tf_prc, fake, real, k=5), abs=1e-7)


def test_precision_recall_matches_torch_fidelity_on_real_image_patches(tf_prc, camera_patches):
    top, bottom = camera_patches
    real, fake = top[::8], bottom[::8]
    ours = feature.precision_recall(fake, real, k=3)
    assert ours == pytest.approx(tf_pr(tf_prc, fake, real), abs=1e-7)


def test_precision_recall_extremes():
    rng = np.random.default_rng(16)
    x = rng.standard_normal((50, 5))
    assert feature.precision_recall(x, x.copy()) == (1.0, 1.0)
    assert feature.precision_recall(x, x + 1000.0) == (0.0, 0.0)
    with pytest.raises(ValueError, match="generated needs more than k"):
        feature.precision_recall(x[:3], x, k=3)


def test_precision_recall_take_the_generated_set_first():
    # Generated samples collapsed onto one side of the reference: each is a reference sample, so all are
    # realistic (precision 1), but they cover only that side (recall well below 1).
    rng = np.random.default_rng(19)
    reference = rng.standard_normal((200, 2))
    generated = reference[reference[:, 0] > 0.5]
    precision, recall = feature.precision_recall(generated, reference, k=3)
    assert precision == 1.0 and recall < 0.7
    assert feature.precision_recall(reference, generated, k=3) == (recall, precision)


# ----------------------------------------------------------------------------- FRD


def test_zscore_uses_reference_mean_and_population_std_and_drops_constant_features():
    rng = np.random.default_rng(17)
    ref = rng.standard_normal((40, 5)) * [1, 2, 3, 4, 5] + 10
    ref[:, 1] = 7.3  # constant (its mean is not exactly 7.3 in floating point)
    ref[:, 3] = 0.0
    gen = rng.standard_normal((30, 5))
    gen_z, ref_z, kept = feature.zscore_against_reference(gen, ref)
    assert kept.tolist() == [True, False, True, False, True]
    cols = [0, 2, 4]
    mean, std = ref[:, cols].mean(axis=0), ref[:, cols].std(axis=0, ddof=0)
    np.testing.assert_allclose(ref_z, (ref[:, cols] - mean) / std)
    np.testing.assert_allclose(gen_z, (gen[:, cols] - mean) / std)
    np.testing.assert_allclose(ref_z.std(axis=0), 1.0)
    gen[0, 2] = np.inf  # a non-finite generated value drops the feature too, as in the FRD code
    ref[5, 4] = np.nan
    _, _, kept = feature.zscore_against_reference(gen, ref)
    assert kept.tolist() == [True, False, False, False, False]
    with pytest.raises(ValueError, match="No feature"):
        feature.zscore_against_reference(gen[:, [1]], ref[:, [1]])


def test_frd_is_the_frechet_distance_of_reference_zscored_features_and_unit_free():
    rng = np.random.default_rng(18)
    ref, gen = inception_like(rng, 300, 12), inception_like(rng, 200, 12, shift=0.2)
    gen_z, ref_z, _ = feature.zscore_against_reference(gen, ref)
    value = feature.frechet_radiomics_distance(gen, ref)
    assert value == pytest.approx(feature.frechet_distance_from_features(gen_z, ref_z), rel=1e-12)
    scale, offset = rng.uniform(0.1, 100, 12), rng.uniform(-1e3, 1e3, 12)
    rescaled = feature.frechet_radiomics_distance(gen * scale + offset, ref * scale + offset)
    assert rescaled == pytest.approx(value, rel=1e-8)
    assert feature.frechet_radiomics_distance(gen, ref, log=True) == pytest.approx(np.log(value))


def test_frd_with_fewer_cases_than_features_is_finite(ct_patches):
    ref, gen = ct_patches[:20], ct_patches[-25:] + 5.0  # 20 and 25 cases of 36 "features"
    value = feature.frechet_radiomics_distance(gen, ref)
    assert np.isfinite(value) and value > 0


# ----------------------------------------------------------------------------- module


def test_no_django_import():
    code = (
        "import sys; import evaluation.metrics.feature, evaluation.metrics.bootstrap; "
        "assert not any(m == 'django' or m.startswith('django.') for m in sys.modules), 'django imported'"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={"PATH": "/usr/bin:/bin"})
