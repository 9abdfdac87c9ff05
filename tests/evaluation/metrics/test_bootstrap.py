"""Percentile bootstrap CIs against scipy.stats.bootstrap, normal theory and the documented draws."""

import numpy as np
import pytest
import scipy.stats

from evaluation.metrics import bootstrap
from evaluation.metrics.bootstrap import BootstrapResult, bootstrap_mean_ci, bootstrap_statistic_ci


def test_mean_ci_is_the_documented_percentile_bootstrap_of_case_means():
    values = np.random.default_rng(0).gamma(2.0, 3.0, size=37)
    result = bootstrap_mean_ci(values, n_resamples=500, confidence=0.9, seed=42)
    means = values[np.random.default_rng(42).integers(0, 37, size=(500, 37))].mean(axis=1)
    assert result.estimate == values.mean()
    assert (result.low, result.high) == tuple(np.percentile(means, [5.0, 95.0]))
    assert result == BootstrapResult(values.mean(), result.low, result.high, 37, 500, 42, 0.9, "percentile")
    assert result.as_dict()["method"] == "percentile"


def test_mean_ci_draws_in_row_blocks_equal_one_draw(monkeypatch):
    values = np.random.default_rng(1).normal(size=101)
    whole = bootstrap_mean_ci(values, n_resamples=301, seed=3)
    monkeypatch.setattr(bootstrap, "_CHUNK_INDICES", 7 * 101)  # blocks of 7 resamples
    assert bootstrap_mean_ci(values, n_resamples=301, seed=3) == whole


def test_mean_ci_matches_scipy_percentile_bootstrap():
    values = np.random.default_rng(2).lognormal(0.0, 0.8, size=150)  # skewed, like per-case errors
    ours = bootstrap_mean_ci(values, n_resamples=20_000, confidence=0.95, seed=0)
    ref = scipy.stats.bootstrap(
        (values,), np.mean, n_resamples=20_000, confidence_level=0.95, method="percentile", vectorized=True,
        rng=np.random.default_rng(123),
    ).confidence_interval  # fmt: skip
    width = ref.high - ref.low
    assert ours.low == pytest.approx(ref.low, abs=0.02 * width)
    assert ours.high == pytest.approx(ref.high, abs=0.02 * width)


def test_mean_ci_matches_normal_theory_on_a_large_normal_sample():
    values = np.random.default_rng(3).normal(10.0, 2.0, size=5000)
    ours = bootstrap_mean_ci(values, n_resamples=4000, seed=1)
    half = scipy.stats.norm.ppf(0.975) * values.std(ddof=1) / np.sqrt(len(values))
    width = 2 * half
    assert ours.low == pytest.approx(values.mean() - half, abs=0.05 * width)
    assert ours.high == pytest.approx(values.mean() + half, abs=0.05 * width)


def test_seeded_runs_are_reproducible_and_seeds_differ():
    values = np.random.default_rng(4).normal(size=30)
    assert bootstrap_mean_ci(values, seed=7) == bootstrap_mean_ci(values, seed=7)
    a, b = bootstrap_mean_ci(values, seed=7), bootstrap_mean_ci(values, seed=8)
    assert (a.low, a.high) != (b.low, b.high)
    assert a.estimate == b.estimate


def test_infinite_values_give_infinite_mean_and_bounds_without_nan():
    values = np.r_[np.linspace(20.0, 40.0, 19), np.inf]  # PSNR with one perfectly reproduced case
    result = bootstrap_mean_ci(values, n_resamples=2000, seed=0)
    assert result.estimate == np.inf
    # (19/20)^20 ≈ 36% of resamples miss the infinite case: the low bound is finite, the high one +inf.
    assert np.isfinite(result.low) and 20.0 < result.low < 40.0
    assert result.high == np.inf
    all_inf = bootstrap_mean_ci(np.full(5, np.inf), seed=0)
    assert (all_inf.estimate, all_inf.low, all_inf.high) == (np.inf, np.inf, np.inf)
    negative = bootstrap_mean_ci(-values, n_resamples=2000, seed=0)
    assert (negative.estimate, negative.low) == (-np.inf, -np.inf)
    assert negative.high == pytest.approx(-result.low, rel=1e-12)


def test_nan_empty_and_mixed_infinities_are_refused():
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_mean_ci([1.0, np.nan, 2.0])
    with pytest.raises(ValueError, match="at least one"):
        bootstrap_mean_ci([])
    with pytest.raises(ValueError, match="undefined"):
        bootstrap_mean_ci([1.0, np.inf, -np.inf])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_mean_ci([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_mean_ci([1.0, 2.0], n_resamples=0)
    with pytest.raises(ValueError, match="one-dimensional"):
        bootstrap_mean_ci(np.ones((2, 2)))


def test_single_case_gives_a_degenerate_interval():
    result = bootstrap_mean_ci([3.5])
    assert (result.estimate, result.low, result.high, result.n) == (3.5, 3.5, 3.5, 1)
    assert bootstrap_statistic_ci(1, lambda idx: 2.0 * len(idx)).low == 2.0


def test_statistic_ci_of_the_mean_equals_mean_ci():
    values = np.random.default_rng(5).exponential(size=64)
    direct = bootstrap_mean_ci(values, n_resamples=300, seed=9)
    via_indices = bootstrap_statistic_ci(len(values), lambda idx: values[idx].mean(), n_resamples=300, seed=9)
    assert via_indices == direct


def test_statistic_ci_resamples_cases_jointly():
    rng = np.random.default_rng(6)
    generated = rng.normal(size=(40, 3))
    reference = generated + rng.normal(scale=0.1, size=(40, 3))  # paired with the generated cases

    calls = []

    def paired_error(idx):
        calls.append(idx)
        return float(np.mean((generated[idx] - reference[idx]) ** 2))

    result = bootstrap_statistic_ci(40, paired_error, n_resamples=150, seed=2)
    assert len(calls) == 151 and np.array_equal(calls[0], np.arange(40))
    assert all(len(idx) == 40 and idx.min() >= 0 and idx.max() < 40 for idx in calls[1:])
    assert result.estimate == paired_error(np.arange(40))
    assert result.low < result.estimate < result.high
    assert result.n_resamples == 150 and result.seed == 2 and result.method == "percentile"
    with pytest.raises(ValueError, match="NaN"):
        bootstrap_statistic_ci(5, lambda idx: np.nan)
