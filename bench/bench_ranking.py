"""Leaderboard statistics speed and agreement: evaluation.ranking against a per-resample scipy loop.

For a large leaderboard (300 runs × 15 metrics × 40 cases, 1000 bootstrap resamples) prints our
time, the peer's time, the ratio (peer / ours) and the largest absolute difference between the
results, all measured in this run (ours: best of a few repeats; the peer: one run), quietly
and then under 2 busy cores (bench/load.py), with the same BLAS thread count for both
(``--threads``, default 1). The run fails when the rank counts or Kendall τ differ by more than
1e-12, or a p-value, Holm-adjusted p-value or CI bound by more than 1e-9.

The peer is the straightforward code a researcher would write: for each resample, gather the
drawn cases, ``np.nanmean`` each run's metric, round it to 9 decimals (the values are reported to
2 decimals, so a mean of 40 is a multiple of 0.00025 and equal means must tie whatever the
summation order; the rounding removes the summation noise), then
``scipy.stats.rankdata(method="min")`` each metric column (missing ranked last), rank the mean
ranks, ``scipy.stats.kendalltau`` against the full-data ranking, then count the ranks; for the
comparisons with the leader, for each run ``scipy.stats.wilcoxon`` and
``evaluation.metrics.bootstrap.bootstrap_mean_ci`` on the paired differences, then Holm. Both
get the same bootstrap draws (``np.random.default_rng(seed)``).

Data: seeded synthetic per-case values with the structure of a real leaderboard -- a skill per
run, a difficulty per case, noise, mixed metric directions, a few failed cases (NaN) and a few
cases reproduced exactly (PSNR +inf), so the ranking has close calls and ties.

    .venv/bin/python bench/bench_ranking.py [--quick] [--runs N] [--resamples B] [--busy 2] [--threads 1]
"""

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import scipy
import scipy.stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.load import Measure, add_arguments, best_of, run_quiet_and_loaded, set_threads  # noqa: E402
from evaluation.metrics.bootstrap import bootstrap_mean_ci  # noqa: E402
from evaluation.ranking import compare_to_leader, holm_adjust, rank_stability  # noqa: E402


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser, quick=False)
    parser.add_argument("--quick", action="store_true", help="100 runs, 200 resamples, fewer repeats")
    parser.add_argument("--runs", type=int, default=None, help="runs on the leaderboard (default 300)")
    parser.add_argument("--resamples", type=int, default=None, help="rank-stability resamples (default 1000)")
    return parser.parse_args()


def leaderboard(n_runs, n_metrics, n_cases, rng):
    """(n_runs, n_metrics, n_cases) per-case values and each metric's direction."""
    skill = rng.normal(0.0, 1.0, size=(n_runs, 1, 1))
    difficulty = rng.normal(0.0, 1.0, size=(1, 1, n_cases))
    weight = rng.uniform(0.2, 1.0, size=(1, n_metrics, 1))  # how much each metric sees the skill
    values = weight * skill + 0.8 * difficulty + rng.normal(0.0, 1.0, size=(n_runs, n_metrics, n_cases))
    higher_is_better = rng.random(n_metrics) < 0.5
    values = np.where(higher_is_better[None, :, None], values, -values)
    values[:, 0] = 30.0 + 2.0 * values[:, 0]  # PSNR-like, higher is better
    higher_is_better[0] = True
    values[rng.random(values.shape) < 0.01] = np.nan  # failed cases
    values[:, 0][rng.random((n_runs, n_cases)) < 0.002] = np.inf  # cases reproduced exactly
    values[:, 1:] = np.round(values[:, 1:], 2)  # reported to 2 decimals: ties
    return values, higher_is_better


def peer_rank_stability(per_case, higher_is_better, n_resamples, seed):
    n_runs, n_metrics, n_cases = per_case.shape
    draws = np.random.default_rng(seed).integers(0, n_cases, size=(n_resamples, n_cases))
    signs = np.where(higher_is_better, -1.0, 1.0)

    def ranking(idx):
        aggregates = np.round(np.nanmean(per_case[:, :, idx], axis=2), 9) * signs  # lower = better
        ranks = scipy.stats.rankdata(aggregates, method="min", axis=0, nan_policy="omit")
        mean = np.where(np.isnan(ranks), n_runs, ranks).mean(axis=1)
        mean[np.isnan(aggregates).all(axis=1)] = np.nan
        return scipy.stats.rankdata(mean, method="min", nan_policy="omit")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of nothing; inf - inf
        full = ranking(np.arange(n_cases))
        counts = np.zeros((n_runs, n_runs))
        taus = []
        for idx in draws:
            ranks = ranking(idx)
            ranked = ~np.isnan(ranks)
            counts[np.flatnonzero(ranked), ranks[ranked].astype(int) - 1] += 1
            taus.append(scipy.stats.kendalltau(full, ranks, nan_policy="omit").statistic)
    return counts / n_resamples, float(np.nanmean(taus))


def peer_compare(per_case, leader, n_resamples, seed):
    p, low, high = [], [], []
    for run in range(per_case.shape[0]):
        if run == leader:
            continue
        both = ~np.isnan(per_case[run]) & ~np.isnan(per_case[leader])
        d = per_case[run, both] - per_case[leader, both]
        p.append(scipy.stats.wilcoxon(d).pvalue)
        ci = bootstrap_mean_ci(d, n_resamples=n_resamples, seed=seed)
        low.append(ci.low)
        high.append(ci.high)
    return np.array(p), holm_adjust(p), np.array(low), np.array(high)


def main(args):
    set_threads(args.threads)
    n_runs = args.runs or (100 if args.quick else 300)
    n_resamples = args.resamples or (200 if args.quick else 1000)
    n_metrics, n_cases, seed = 15, 40, 0
    repeats = 2 if args.quick else 5
    print(f"numpy {np.__version__}, scipy {scipy.__version__}, {os.cpu_count()} CPUs")
    per_case, higher_is_better = leaderboard(n_runs, n_metrics, n_cases, np.random.default_rng(2024))
    metric = per_case[:, 1]  # second metric: finite, so the peer's plain differences are defined

    def measure():
        # rank stability, mean rank over every metric
        t_ours, ours = best_of(
            lambda: rank_stability(per_case, higher_is_better, n_resamples=n_resamples, seed=seed), repeats
        )
        t_peer, (counts, tau) = best_of(lambda: peer_rank_stability(per_case, higher_is_better, n_resamples, seed))
        stability = Measure(
            f"rank_stability {n_runs}x{n_metrics}x{n_cases} B={n_resamples}", t_ours, t_peer,
            np.append(ours.rank_counts.ravel(), ours.kendall_tau_mean), np.append(counts.ravel(), tau),
            atol=1e-12, rtol=0.0, peer_name="per-resample rankdata loop",
            note=f"target ours < 1 s: {'met' if t_ours < 1.0 else 'MISSED'}",
        )  # fmt: skip
        # the leader against every other run on one metric (values to 2 decimals: ties, normal approximation)
        leader = int(np.nanargmin(ours.rank))
        t_ours_c, comparisons = best_of(
            lambda: compare_to_leader(metric, leader, bool(higher_is_better[1]), seed=seed), repeats
        )
        t_peer_c, (p, p_adj, low, high) = best_of(lambda: peer_compare(metric, leader, 2000, seed))
        rows = [c for c in comparisons if c is not None]
        ours_c = [[c.p_value, c.p_adjusted, c.ci_low, c.ci_high] for c in rows]
        compare = Measure(
            f"compare_to_leader {n_runs}x{n_cases} B=2000", t_ours_c, t_peer_c, ours_c,
            np.column_stack([p, p_adj, low, high]), atol=1e-9, rtol=0.0, peer_name="wilcoxon + bootstrap loop",
            note=f"leader run {leader}: {sum(c.significant for c in rows)} of {len(rows)} significantly different",
        )  # fmt: skip
        return [stability, compare]

    run_quiet_and_loaded(measure, busy=args.busy)


if __name__ == "__main__":
    main(parse_args())
