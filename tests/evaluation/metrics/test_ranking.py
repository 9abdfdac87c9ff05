"""Leaderboard ranking, significance against the leader and rank stability (evaluation.ranking).

References: scipy.stats.rankdata / wilcoxon / kendalltau, hand-computed examples, and a slow
per-resample loop (np.nanmean + rankdata) written here as the independent implementation of the
case bootstrap. Pure: no database, no Django.
"""

import warnings

import numpy as np
import pytest
import scipy.stats

from evaluation import ranking
from evaluation.metrics.bootstrap import bootstrap_mean_ci
from evaluation.ranking import (
    PairedComparison,
    aggregate_cases,
    compare_to_leader,
    competition_ranks,
    holm_adjust,
    kendall_tau_b,
    mean_ranks,
    rank_stability,
    wilcoxon_p_value,
)

nan, inf = np.nan, np.inf


# ----------------------------------------------------------------------------- competition ranks


@pytest.mark.parametrize("higher_is_better", [True, False])
def test_competition_ranks_equal_scipy_min_ranks_on_random_data_with_ties(higher_is_better):
    rng = np.random.default_rng(0)
    for _ in range(50):
        values = rng.integers(0, 6, size=rng.integers(1, 40)).astype(float) / 4  # many ties
        expected = scipy.stats.rankdata(-values if higher_is_better else values, method="min")
        np.testing.assert_array_equal(competition_ranks(values, higher_is_better), expected)


def test_ties_share_the_smallest_rank_and_the_next_rank_is_skipped():
    np.testing.assert_array_equal(competition_ranks([0.9, 0.9, 0.7, 0.95], True), [2, 2, 4, 1])
    np.testing.assert_array_equal(competition_ranks([5.0, 5.0, 5.0], False), [1, 1, 1])


def test_infinite_psnr_ranks_first_when_higher_is_better_and_ties_with_another_infinity():
    psnr = [31.2, inf, 40.0, inf, -inf]
    np.testing.assert_array_equal(competition_ranks(psnr, True), [4, 1, 3, 1, 5])
    np.testing.assert_array_equal(competition_ranks(psnr, False), [2, 4, 3, 4, 1])


def test_missing_values_are_unranked_and_the_others_ranked_as_if_absent():
    ranks = competition_ranks([nan, 0.2, 0.1, nan, 0.2], False)
    np.testing.assert_array_equal(np.isnan(ranks), [True, False, False, True, False])
    np.testing.assert_array_equal(ranks[[1, 2, 4]], [2, 1, 2])
    assert np.isnan(competition_ranks([nan, nan], True)).all()


def test_direction_reverses_the_order():
    values = [3.0, 1.0, 2.0]
    np.testing.assert_array_equal(competition_ranks(values, True), [1, 3, 2])
    np.testing.assert_array_equal(competition_ranks(values, False), [3, 1, 2])


def test_rounding_noise_does_not_break_a_tie_but_real_differences_count():
    noisy_tie = [0.1 + 0.2 + 0.3, 0.3 + 0.2 + 0.1, 0.7]  # 0.6000000000000001 and 0.6
    assert noisy_tie[0] != noisy_tie[1]
    np.testing.assert_array_equal(competition_ranks(noisy_tie, False), [1, 1, 3])
    np.testing.assert_array_equal(competition_ranks([1.0, 1.0 + 1e-12, 1.0 + 1e-8], False), [1, 1, 3])
    np.testing.assert_array_equal(competition_ranks([1e-9, 2e-9, 0.0], False), [2, 3, 1])  # small is not tied
    np.testing.assert_array_equal(mean_ranks([[noisy_tie[0], 1.0], [noisy_tie[1], 1.0]], [True, True])[1], [1, 1])


def test_competition_ranks_reject_a_matrix():
    with pytest.raises(ValueError, match="one-dimensional"):
        competition_ranks(np.zeros((2, 2)), True)


# -------------------------------------------------------------------------------------- mean ranks


def test_mean_ranks_hand_computed_with_missing_metrics_and_ties():
    #         PSNR (higher)  MAE (lower)  SSIM (higher)
    matrix = [
        [30.0, 0.1, 0.90],  # A
        [32.0, 0.3, nan],  # B: no SSIM
        [30.0, 0.2, 0.95],  # C
        [nan, 0.1, 0.95],  # D: no PSNR
        [nan, nan, nan],  # E: nothing
    ]
    # Column ranks (missing = 5 = n_runs): PSNR B1 A2 C2 D5 E5; MAE A1 D1 C3 B4 E5;
    # SSIM C1 D1 A3 B5 E5. Means: A 6/3, B 10/3, C 6/3, D 7/3, E nan -> ranks 1, 4, 1, 3, nan.
    mean, rank = mean_ranks(matrix, [True, False, True])
    np.testing.assert_allclose(mean, [2, 10 / 3, 2, 7 / 3, nan], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(rank, [1, 4, 1, 3, nan])


def test_mean_ranks_of_one_metric_are_its_competition_ranks():
    values = np.array([0.3, nan, 0.1, 0.3, inf])
    mean, rank = mean_ranks(values[:, None], [True])
    np.testing.assert_array_equal(rank, competition_ranks(values, True))
    np.testing.assert_array_equal(mean, rank)


def test_mean_ranks_accept_one_direction_for_every_metric():
    matrix = np.random.default_rng(1).normal(size=(6, 3))
    np.testing.assert_array_equal(mean_ranks(matrix, False)[1], mean_ranks(matrix, [False] * 3)[1])
    np.testing.assert_array_equal(mean_ranks(matrix, True)[1], mean_ranks(-matrix, False)[1])


# ------------------------------------------------------------------------------------------- Holm


def test_holm_adjustment_hand_computed():
    # sorted: 0.005·4 = 0.02, 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 -> max so far 0.06
    np.testing.assert_allclose(holm_adjust([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02], rtol=1e-12)
    # NaN is not a comparison (m = 2) and results are capped at 1
    np.testing.assert_allclose(holm_adjust([0.5, nan, 0.2]), [0.5, nan, 0.4], rtol=1e-12)
    np.testing.assert_allclose(holm_adjust([0.6, 0.7]), [1.0, 1.0])
    assert holm_adjust([]).shape == (0,)


def test_holm_is_monotone_and_never_below_the_raw_p_values():
    p = np.random.default_rng(2).uniform(0, 0.2, size=40)
    adjusted = holm_adjust(p)
    order = np.argsort(p)
    assert (np.diff(adjusted[order]) >= 0).all()
    assert (adjusted >= p).all() and (adjusted <= 1).all()
    assert adjusted[order[0]] == pytest.approx(40 * p[order[0]])


# -------------------------------------------------------------------------------- paired comparisons


def test_p_values_equal_scipy_wilcoxon_on_finite_data():
    rng = np.random.default_rng(3)
    per_case = rng.normal(30.0, 2.0, size=(6, 30)) + np.array([[0.0], [-1.0], [-0.3], [0.0], [-2.0], [0.5]])
    per_case[2, [4, 9]] = nan  # missing cases: pairs dropped
    per_case[3] = np.round(per_case[0] + rng.normal(0, 1, 30))  # ties and zeros: normal approximation
    per_case[3, :5] = per_case[0, :5]
    result = compare_to_leader(per_case, 0, True)
    assert result[0] is None
    for run in range(1, 6):
        both = ~np.isnan(per_case[run]) & ~np.isnan(per_case[0])
        expected = scipy.stats.wilcoxon(per_case[run, both], per_case[0, both])
        assert result[run].n_pairs == both.sum()
        assert result[run].p_value == pytest.approx(expected.pvalue, rel=1e-12)
        diff = per_case[run, both] - per_case[0, both]
        assert result[run].mean_difference == pytest.approx(diff.mean(), rel=1e-12)
    assert result[2].n_pairs == 28


def test_small_samples_with_ties_match_scipy_exhaustive_sign_flips():
    # scipy's "auto" runs a permutation test for <= 13 differences with ties or zeros
    for d in ([0.5, -0.5, 1.0, 2.0, 2.0, 0.0, 3.0, -1.0], [1, 1, 1, 1, -1, 2, 2, 0, 0, 3, 3, 3, -3]):
        d = np.asarray(d, dtype=float)
        assert wilcoxon_p_value(d) == pytest.approx(scipy.stats.wilcoxon(d).pvalue, rel=1e-12)


@pytest.mark.parametrize("n", [5, 20, 60])
def test_wilcoxon_p_value_equals_scipy_without_ties(n):
    d = np.random.default_rng(n).normal(0.4, 1.0, size=n)
    assert wilcoxon_p_value(d) == pytest.approx(scipy.stats.wilcoxon(d).pvalue, rel=1e-12)


def test_no_test_with_fewer_than_two_pairs_and_p_one_when_every_case_ties():
    assert np.isnan(wilcoxon_p_value([0.3]))
    assert wilcoxon_p_value(np.zeros(20)) == 1.0
    per_case = np.array([[1.0, 2.0, 3.0], [nan, nan, 2.5], [1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])
    result = compare_to_leader(per_case, 0, True)
    assert result[1].n_pairs == 1 and np.isnan(result[1].p_value) and np.isnan(result[1].p_adjusted)
    assert not result[1].significant
    assert result[2].p_value == 1.0 and result[2].mean_difference == 0.0
    assert result[2].ci_low == result[2].ci_high == 0.0
    assert "over 2 comparisons" in result[2].test  # the run with one pair is not a comparison


def test_infinite_values_follow_the_tie_and_win_rules():
    leader = np.array([inf, 30.0, 31.0, 29.0, 28.0, 33.0, 30.0, 27.0, 25.0])
    other = np.array([inf, inf, 30.0, 28.0, 27.5, 31.0, 29.0, 26.0, nan])
    result = compare_to_leader(np.stack([leader, other]), 0, True)[1]
    # case 0: both +inf -> tie (difference 0, dropped by the test); case 1: other wins; case 8: dropped
    assert result.n_pairs == 8 and result.n_better == 1 and result.n_worse == 6
    assert result.mean_difference == inf and result.ci_high == inf
    substituted = [0.0, 1e6, -1.0, -1.0, -0.5, -2.0, -1.0, -1.0]  # inf as any value above the finite ones
    assert result.p_value == pytest.approx(scipy.stats.wilcoxon(substituted).pvalue, rel=1e-12)
    lower = compare_to_leader(np.stack([leader, other]), 0, False)[1]
    assert (lower.n_better, lower.n_worse) == (6, 1) and lower.p_value == result.p_value
    # the leader reproduced a case the other did not: a loss of top rank
    flipped = compare_to_leader(np.stack([other[:8], leader[:8]]), 1, True)[0]
    assert flipped.mean_difference == inf and flipped.n_better == 1
    swapped = compare_to_leader(np.stack([leader[:8], other[:8]]), 1, True)[0]
    assert swapped.mean_difference == -inf and swapped.n_worse == 1
    assert swapped.p_value == pytest.approx(result.p_value, rel=1e-12)


def test_holm_correction_and_significance_in_the_comparisons():
    rng = np.random.default_rng(4)
    shifts = np.array([0.0, -3.0, -0.05, -1.0, 0.02])[:, None]
    per_case = rng.normal(0, 1, size=(5, 40)) * 0.5 + shifts + rng.normal(0, 2, size=40)  # shared case effect
    result = compare_to_leader(per_case, 0, True, alpha=0.05)
    p = np.array([r.p_value for r in result[1:]])
    np.testing.assert_allclose([r.p_adjusted for r in result[1:]], holm_adjust(p), rtol=1e-12)
    assert [r.significant for r in result[1:]] == list(holm_adjust(p) < 0.05)
    assert result[1].significant and not result[2].significant
    assert result[1].test == "Wilcoxon signed-rank (two-sided, tied cases dropped), Holm-corrected over 4 comparisons"
    assert isinstance(result[1], PairedComparison)


def test_bootstrap_interval_contains_the_mean_difference_and_is_reproducible():
    rng = np.random.default_rng(5)
    per_case = rng.gamma(2.0, 1.0, size=(4, 35))
    per_case[3, :7] = nan  # a run with fewer pairs draws its own indices
    first = compare_to_leader(per_case, 1, False, n_resamples=1500, seed=11)
    again = compare_to_leader(per_case, 1, False, n_resamples=1500, seed=11)
    other_seed = compare_to_leader(per_case, 1, False, n_resamples=1500, seed=12)
    assert first == again
    for run in (0, 2, 3):
        r = first[run]
        assert r.ci_low < r.mean_difference < r.ci_high
        assert (r.ci_low, r.ci_high) != (other_seed[run].ci_low, other_seed[run].ci_high)
        both = ~np.isnan(per_case[run])
        reference = bootstrap_mean_ci(per_case[run, both] - per_case[1, both], n_resamples=1500, seed=11)
        assert r.mean_difference == reference.estimate
        assert (r.ci_low, r.ci_high) == pytest.approx((reference.low, reference.high), rel=1e-12, abs=1e-12)


def test_leader_must_be_a_row():
    with pytest.raises(ValueError, match="leader"):
        compare_to_leader(np.zeros((2, 3)), 2, True)


# ----------------------------------------------------------------------------------- aggregation


@pytest.mark.parametrize("with_duplicate", [True, False])
def test_aggregate_cases_is_the_nanmean_over_the_drawn_cases(with_duplicate):
    rng = np.random.default_rng(6)
    per_case = rng.normal(size=(7, 9))
    per_case[1, [0, 3]] = nan
    per_case[2, 4] = inf
    per_case[3, [4, 5]] = [inf, -inf]
    per_case[4] = nan
    per_case[5] = per_case[0] if with_duplicate else per_case[5]
    per_case[6, 8] = -inf
    idx = rng.integers(0, 9, size=(30, 9))
    weights = np.stack([np.bincount(i, minlength=9) for i in idx])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of nothing, inf - inf
        expected = np.stack([np.nanmean(per_case[:, i], axis=1) for i in idx])
    means, scale = aggregate_cases(per_case, weights, return_scale=True)
    np.testing.assert_allclose(means, expected, rtol=1e-13)
    np.testing.assert_array_equal(means, aggregate_cases(per_case, weights))
    if with_duplicate:
        np.testing.assert_array_equal(means[:, 5], means[:, 0])
    expected_scale = [max([abs(v) for v in row if np.isfinite(v)], default=0.0) for row in per_case]
    np.testing.assert_array_equal(scale, expected_scale)  # largest finite |value| of each row


# -------------------------------------------------------------------------------------- Kendall tau


def test_kendall_tau_b_equals_scipy_with_ties_and_missing_items():
    rng = np.random.default_rng(7)
    for n in (2, 5, 17, 90):
        reference = rng.integers(0, max(2, n // 3), size=n).astype(float)
        reference[rng.random(n) < 0.1] = nan
        rows = rng.integers(0, max(2, n // 2), size=(6, n)).astype(float)
        rows[rng.random((6, n)) < 0.1] = nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a constant row: tau undefined
            expected = [scipy.stats.kendalltau(reference, row, nan_policy="omit").statistic for row in rows]
            np.testing.assert_allclose(kendall_tau_b(reference, rows), expected, rtol=1e-12, atol=1e-14)


def test_kendall_tau_b_of_identical_and_reversed_rankings():
    ranks = np.array([1.0, 2.0, 2.0, 4.0, 5.0])
    np.testing.assert_allclose(kendall_tau_b(ranks, [ranks, 6 - ranks]), [1.0, -1.0])


# ---------------------------------------------------------------------------------- rank stability


def _loop_rank_stability(per_case, higher_is_better, n_resamples, seed):
    """The slow reference: one resample at a time, np.nanmean, scipy rankdata, explicit mean ranks."""
    n_runs, n_metrics, n_cases = per_case.shape
    draws = np.random.default_rng(seed).integers(0, n_cases, size=(n_resamples, n_cases))

    def ranking(idx):
        column_ranks = np.empty((n_runs, n_metrics))
        for m in range(n_metrics):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                values = np.array([np.nanmean(per_case[r, m, idx]) for r in range(n_runs)])
            keys = -values if higher_is_better[m] else values
            ranks = scipy.stats.rankdata(keys, method="min", nan_policy="omit")
            column_ranks[:, m] = np.where(np.isnan(ranks), n_runs, ranks)
        all_missing = np.array(
            [all(np.isnan(np.nanmean(per_case[r, m, idx])) for m in range(n_metrics)) for r in range(n_runs)]
        )
        mean = np.where(all_missing, nan, column_ranks.mean(axis=1))
        return scipy.stats.rankdata(mean, method="min", nan_policy="omit")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = ranking(np.arange(n_cases))
        ranks = np.stack([ranking(idx) for idx in draws])
    counts = np.zeros((n_runs, n_runs))
    for b in range(n_resamples):
        for r in range(n_runs):
            if not np.isnan(ranks[b, r]):
                counts[r, int(ranks[b, r]) - 1] += 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        taus = [scipy.stats.kendalltau(full, ranks[b], nan_policy="omit").statistic for b in range(n_resamples)]
    return full, ranks, counts / n_resamples, np.array(taus)


def test_rank_stability_agrees_with_a_slow_loop_on_a_small_example():
    rng = np.random.default_rng(8)
    n_runs, n_cases = 7, 8
    per_case = np.stack(
        [
            rng.integers(20, 26, size=(n_runs, n_cases)).astype(float),  # PSNR-like integers: ties
            rng.normal(0.1, 0.03, size=(n_runs, n_cases)),  # MAE
            rng.uniform(0.6, 1.0, size=(n_runs, n_cases)),  # SSIM
        ],
        axis=1,
    )
    per_case[2, 0, [1, 5]] = inf  # reproduced exactly
    per_case[3, 1, :6] = nan  # MAE only on 2 cases
    per_case[4, 2, :] = nan  # SSIM missing
    per_case[5] = per_case[1]  # identical runs
    per_case[6, :, 1:] = nan  # only one case at all: unranked whenever case 0 is not drawn
    directions = [True, False, True]
    result = rank_stability(per_case, directions, n_resamples=300, seed=3)
    full, ranks, counts, taus = _loop_rank_stability(per_case, directions, 300, 3)

    np.testing.assert_array_equal(result.rank, full)
    np.testing.assert_allclose(result.rank_counts, counts, rtol=0, atol=1e-15)
    ranked = [ranks[~np.isnan(ranks[:, r]), r] for r in range(n_runs)]
    np.testing.assert_array_equal(result.median_rank, [np.median(x) for x in ranked])
    np.testing.assert_array_equal(result.rank_ci_low, [np.percentile(x, 2.5) for x in ranked])
    np.testing.assert_array_equal(result.rank_ci_high, [np.percentile(x, 97.5) for x in ranked])
    np.testing.assert_allclose(result.kendall_tau, taus, rtol=1e-12)
    assert result.kendall_tau_mean == pytest.approx(np.nanmean(taus), rel=1e-12)
    np.testing.assert_array_equal(result.rank_counts[5], result.rank_counts[1])  # identical runs share
    drawn_case_0 = (np.random.default_rng(3).integers(0, n_cases, size=(300, n_cases)) == 0).any(axis=1).mean()
    assert result.rank_counts[6].sum() == pytest.approx(drawn_case_0)
    np.testing.assert_allclose(result.rank_counts[:6].sum(axis=1), 1.0)


def test_a_run_best_on_every_case_is_first_in_every_resample():
    rng = np.random.default_rng(9)
    per_case = rng.normal(30.0, 3.0, size=(12, 2, 25))
    per_case[4, 0] = per_case[:, 0].max(axis=0) + 0.1  # PSNR: highest on every case
    per_case[4, 1] = per_case[:, 1].min(axis=0) - 0.1  # error: lowest on every case
    result = rank_stability(per_case, [True, False], n_resamples=400, seed=0)
    assert result.rank[4] == 1
    assert result.rank_counts[4, 0] == 1.0
    assert result.median_rank[4] == result.rank_ci_low[4] == result.rank_ci_high[4] == 1.0
    np.testing.assert_allclose(result.rank_counts.sum(axis=1), 1.0)
    np.testing.assert_allclose(result.rank_counts.sum(axis=0)[0], 1.0)  # nobody else ever first


def test_identical_runs_share_every_rank():
    rng = np.random.default_rng(10)
    per_case = rng.normal(size=(9, 30))
    per_case[7] = per_case[2]
    result = rank_stability(per_case, True, n_resamples=500, seed=1)
    assert result.rank[7] == result.rank[2]
    np.testing.assert_array_equal(result.rank_counts[7], result.rank_counts[2])
    assert result.median_rank[7] == result.median_rank[2]
    per_case[7] += 1e-9  # no longer identical: their shares differ
    nudged = rank_stability(per_case, True, n_resamples=500, seed=1)
    assert not np.array_equal(nudged.rank_counts[7], nudged.rank_counts[2])


def test_means_that_cancel_to_zero_tie_whatever_the_summation_order():
    # Means of 0 up to rounding (about 1e-17 either side): tied by the terms' scale, not by the value.
    per_case = np.array([[0.1, 0.2, -0.3], [-0.3, 0.1, 0.2], [0.2, -0.3, 0.1], [0.1, 0.1, 0.1], [0.0, 0.0, 0.0]])
    means = aggregate_cases(per_case, np.ones((1, 3)))[0]
    assert len(set(means[[0, 1, 2, 4]])) > 1  # the float means differ ...
    result = rank_stability(per_case, False, n_resamples=50)
    np.testing.assert_array_equal(result.rank, [1, 1, 1, 5, 1])  # ... but they are one tie
    # values one ulp apart on every case tie in every resample, so their rank shares are equal
    x = np.random.default_rng(13).normal(size=(6, 30))
    x[5] = np.nextafter(x[0], np.inf)
    result = rank_stability(x, True, n_resamples=300)
    np.testing.assert_array_equal(result.rank_counts[5], result.rank_counts[0])


def test_rank_stability_is_reproducible_and_the_seed_matters(monkeypatch):
    per_case = np.random.default_rng(11).normal(size=(10, 3, 20))
    a = rank_stability(per_case, [True, True, False], n_resamples=200, seed=5)
    monkeypatch.setattr(ranking, "_DRAW_BLOCK", 7 * 20)  # indices drawn 7 resamples at a time
    b = rank_stability(per_case, [True, True, False], n_resamples=200, seed=5)
    c = rank_stability(per_case, [True, True, False], n_resamples=200, seed=6)
    np.testing.assert_array_equal(a.rank_counts, b.rank_counts)
    assert a.kendall_tau_mean == b.kendall_tau_mean
    assert not np.array_equal(a.rank_counts, c.rank_counts)
    assert (a.n_resamples, a.seed) == (200, 5)


def test_well_separated_runs_keep_their_ranking_and_noise_does_not():
    rng = np.random.default_rng(12)
    separated = np.arange(15)[:, None] * 10.0 + rng.normal(size=(15, 40))
    stable = rank_stability(separated, True, n_resamples=200)
    assert stable.kendall_tau_mean == 1.0
    np.testing.assert_array_equal(stable.rank_counts, np.eye(15)[::-1])  # run 14 is always first
    noise = rng.normal(size=(15, 40))  # no real differences: resample rankings only partly agree
    assert rank_stability(noise, True, n_resamples=200).kendall_tau_mean < 0.8
