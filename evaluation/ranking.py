"""Leaderboard ranking, paired significance against the leader, and bootstrap rank stability.

Plain numpy/scipy, no Django. Used by the leaderboard page:

- :func:`competition_ranks`: standard competition ranking ("1, 1, 3"), 1 = best, ties share the
  smallest rank, NaN (missing) stays unranked, ±inf are real values (PSNR of identical images is
  +inf and ranks first when higher is better). Values equal to 10 significant digits tie
  (``RANK_RTOL``), so the rounding of a mean never decides a rank.
- :func:`mean_ranks`: rank-then-aggregate over several metrics. Each metric column is ranked on
  its own; a run **missing a metric is ranked last in that column** (rank = number of runs, shared
  by every run missing it); the mean of a run's column ranks is then ranked again. A run missing
  every metric stays unranked (NaN).
- :func:`compare_to_leader`: each run against the leader on one metric's per-case values: a
  two-sided Wilcoxon signed-rank test, Holm's step-down correction over the comparisons
  (:func:`holm_adjust`) and a paired bootstrap interval of the mean difference.
- :func:`rank_stability`: the case bootstrap of the whole ranking -- how often each run lands on
  each rank, its median rank and 95% rank interval, and the mean Kendall's tau between the
  bootstrap rankings and the full-data ranking: the blob plots and ranking-robustness analysis of
  Wiegand M. et al., "Methods and open-source toolkit for analyzing and visualizing challenge
  results", Sci Rep 11, 2369 (2021) (the challengeR package).

Conventions shared by all functions: per-case arrays hold NaN where a run has no value for a
case; ``higher_is_better`` is declared once per metric; a run's aggregate of a metric over cases
is the mean of its present values, +inf if one of them is +inf, -inf if one is -inf, and NaN
(missing) if it has none or has both infinities (:func:`aggregate_cases`).

Everything is vectorised over runs, metrics and resamples; 300 runs × 15 metrics × 40 cases with
1000 resamples takes a fraction of a second (``bench/bench_ranking.py``).
"""

import math
from dataclasses import dataclass

import numpy as np
import scipy.stats

from evaluation.metrics import catalog
from evaluation.metrics.bootstrap import bootstrap_mean_ci

__all__ = [
    "PairedComparison",
    "RankStability",
    "aggregate_cases",
    "cis_all_overlap",
    "compare_to_leader",
    "competition_ranks",
    "holm_adjust",
    "kendall_tau_b",
    "mean_ranks",
    "oriented",
    "rank_by_direction",
    "rank_stability",
    "wilcoxon_p_value",
]

# Aggregates this close (relative to their magnitude) tie: no metric means anything at 10
# significant digits, and a tie in exact arithmetic (means of values reported to 2 decimals) must
# not be broken by the rounding of a sum taken in another order (0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1).
RANK_RTOL = 1e-10
# scipy.stats.wilcoxon's zero_method used throughout: zero differences (tied cases) are dropped.
ZERO_METHOD = "wilcox"
# Largest sample scipy.stats.wilcoxon(method="auto") tests by exhaustive sign flips when the
# differences have ties or zeros (2**13 < its 9999 resamples); it switches to the normal
# approximation above, and to it for every sample above 50.
_PERMUTATION_MAX_N = 13
_EXACT_MAX_N = 50
# Kendall's tau: reference tie groups up to this size are corrected pair by pair, in row blocks.
_KENDALL_DIRECT_GROUP = 64
_KENDALL_ROWS = 256
# Bootstrap case indices drawn at once (as evaluation.metrics.bootstrap: 32 MiB of int64).
_DRAW_BLOCK = 1 << 22


# --------------------------------------------------------------------------------------------- ranks


def _min_ranks(keys, scale=None):
    """Competition ranks along the last axis (lower key = better = 1) as int64, plus the NaN mask.

    Ties share the smallest rank: equal keys (inf == inf included) and finite neighbours in
    sorted order with |a − b| ≤ RANK_RTOL·max(scale_a, scale_b), chained. ``scale`` (broadcast
    to the shape of ``keys``) is the magnitude behind a key's rounding error -- for a mean, the
    largest |term|, which stays meaningful when the terms cancel to a mean near 0 -- and defaults
    to |key|. NaN keys sort last, so they never take a rank from a present value (their entries are meaningless: use the
    mask). Vectorised over leading axes: argsort each row, mark where a new value starts in
    sorted order, carry the start position forward, scatter back through flat indices.
    """
    keys = np.asarray(keys, dtype=np.float64)
    shape, n = keys.shape, keys.shape[-1]
    missing = np.isnan(keys)
    if keys.size == 0:
        return np.zeros(shape, dtype=np.int64), missing
    rows = keys.reshape(-1, n)
    flat_order = (np.argsort(rows, axis=-1) + (np.arange(rows.shape[0]) * n)[:, None]).ravel()
    ordered = rows.ravel()[flat_order].reshape(rows.shape)
    above, below = ordered[:, 1:], ordered[:, :-1]
    if scale is None:
        magnitude = np.maximum(np.abs(above), np.abs(below))
    else:
        scale = np.broadcast_to(scale, shape).ravel()[flat_order].reshape(rows.shape)
        magnitude = np.maximum(scale[:, 1:], scale[:, :-1])
    with np.errstate(invalid="ignore"):  # inf - inf, NaN: only == ties them
        gap = above - below
        tied = (above == below) | (np.isfinite(gap) & (gap <= RANK_RTOL * magnitude))
    positions = np.broadcast_to(np.arange(1, n + 1, dtype=np.int64), rows.shape)
    if tied.any():
        positions = positions.copy()
        positions[:, 1:][tied] = 0
        np.maximum.accumulate(positions, axis=-1, out=positions)
    ranks = np.empty(rows.size, dtype=np.int64)
    ranks[flat_order] = positions.ravel()
    return ranks.reshape(shape), missing


def _competition_ranks_last_axis(keys):
    """Float competition ranks along the last axis, NaN where the key is NaN."""
    ranks, missing = _min_ranks(keys)
    ranks = ranks.astype(np.float64)
    ranks[missing] = np.nan
    return ranks


def competition_ranks(values, higher_is_better: bool) -> np.ndarray:
    """Standard competition ranks of one metric's aggregate values.

    Args:
        values: (n_runs,) float; NaN = missing, ±inf are ordinary (extreme) values.
        higher_is_better: the metric's direction.

    Returns:
        (n_runs,) float ranks, 1 = best; ties share the smallest rank ("1, 1, 3", as
        ``scipy.stats.rankdata(method="min")``); NaN for a missing value. The present values are
        ranked among themselves, as if the missing runs were absent. Values equal to 10
        significant digits tie (``RANK_RTOL``: |a − b| ≤ 1e-10·max(|a|, |b|), chained over sorted
        neighbours), so floating-point rounding of an aggregate never breaks a real tie.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    return _competition_ranks_last_axis(-values if higher_is_better else values)


def oriented(values, direction, target=None) -> np.ndarray:
    """A metric's values turned so that higher is better, for ranking by any of the catalogue's directions.

    Args:
        values: float array of any shape (NaN = missing stays NaN).
        direction: ``catalog.HIGHER`` (v), ``catalog.LOWER`` (−v) or ``catalog.TARGET`` (−|v − target|:
            best at the target, equally good at the same distance on either side, so a Turing-test AUC
            of 0.3 ties with 0.7 and both rank below 0.45).
        target: the best value, for ``catalog.TARGET`` only.

    Returns:
        A float64 array of the same shape; rank it with ``higher_is_better=True``.
    """
    values = np.asarray(values, dtype=np.float64)
    if direction == catalog.HIGHER:
        return values
    if direction == catalog.LOWER:
        return -values
    if direction == catalog.TARGET:
        if target is None or not math.isfinite(target):
            raise ValueError("direction 'target' needs a finite target value")
        return -np.abs(values - float(target))
    raise ValueError(f"Unknown direction {direction!r}")


def cis_all_overlap(lows, highs) -> bool | None:
    """Whether every pair of the intervals [lowᵢ, highᵢ] overlaps, i.e. a metric does not separate the runs.

    Args:
        lows, highs: (n_runs,) CI bounds; a run with a NaN bound has no CI and is left out.

    Returns:
        True when at least two runs have a CI and all pairs overlap (intervals on a line pairwise
        intersect exactly when the largest lower bound is at most the smallest upper bound; touching
        counts as overlapping), False when some pair is apart, None with fewer than two CIs.
    """
    lows, highs = np.asarray(lows, dtype=np.float64), np.asarray(highs, dtype=np.float64)
    present = ~(np.isnan(lows) | np.isnan(highs))
    if present.sum() < 2:
        return None
    return bool(lows[present].max() <= highs[present].min())


def rank_by_direction(values, direction, target=None) -> np.ndarray:
    """:func:`competition_ranks` of (n_runs,) values by a catalogue direction (see :func:`oriented`)."""
    return competition_ranks(oriented(values, direction, target), True)


def _directions(higher_is_better, n_metrics):
    return np.ascontiguousarray(np.broadcast_to(np.asarray(higher_is_better, dtype=bool), (n_metrics,)))


def _rank_over_metrics(keys, scale=None):
    """Mean rank over metrics and final rank from keys (..., n_metrics, n_runs), lower = better.

    ``scale``: tie tolerance scale of each key (see ``_min_ranks``). Returns (mean rank, final
    rank), each (..., n_runs), NaN for a run missing every metric.
    """
    n_metrics, n_runs = keys.shape[-2:]
    ranks, missing = _min_ranks(keys, scale)
    ranks[missing] = n_runs  # a missing metric: ranked last in that column
    # Integer rank sums are exact, so runs with the same column ranks tie exactly.
    mean = ranks.sum(axis=-2) / n_metrics
    mean[missing.all(axis=-2)] = np.nan
    return mean, _competition_ranks_last_axis(mean)


def mean_ranks(matrix, higher_is_better) -> tuple[np.ndarray, np.ndarray]:
    """Rank-then-aggregate ranking over several metrics.

    Args:
        matrix: (n_runs, n_metrics) aggregate values, NaN where a run lacks a metric.
        higher_is_better: (n_metrics,) bools (one bool applies to every metric).

    Returns:
        ``(mean_rank, rank)``, each (n_runs,) float: the mean over the metrics of the run's
        competition rank in each metric column, and the competition rank of that mean (lower mean
        rank = better, ties share the smallest rank).

    Missing values: a run without a value for a metric gets rank ``n_runs`` in that column --
    last, shared by every run missing it (challengeR's default of ranking missing values last)
    -- so leaving out a metric never helps a run. A run missing every metric gets NaN for both.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"matrix must be (n_runs, n_metrics), got shape {matrix.shape}")
    directions = _directions(higher_is_better, matrix.shape[1])
    keys = np.where(directions[:, None], -matrix.T, matrix.T)
    return _rank_over_metrics(keys)


# ------------------------------------------------------------------------------------- aggregation


def _unique_rows(rows):
    """Unique rows compared byte by byte (so NaN/inf patterns too) and the inverse index."""
    rows = np.ascontiguousarray(rows)
    as_bytes = rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()
    _, first, inverse = np.unique(as_bytes, return_index=True, return_inverse=True)
    return rows[first], inverse.ravel()


def aggregate_cases(per_case, weights, *, return_scale=False):
    """Weighted nan-means of per-case values, one row per weight vector.

    Args:
        per_case: (n_rows, n_cases) float, NaN = missing, ±inf allowed.
        weights: (n_weights, n_cases) non-negative integer counts -- how often each case is drawn
            in a bootstrap resample; a row of ones gives the plain aggregate.

    Returns:
        (n_weights, n_rows): Σ w·x / Σ w over each row's present (non-NaN) cases; +inf when a
        drawn case is +inf, -inf when one is -inf, NaN when no drawn case is present or both
        infinities are drawn. Computed as matrix products (the counts make a resample's sum a dot
        product); identical input rows are merged first, so identical runs always get
        bit-identical aggregates and tie exactly. With ``return_scale``, also each row's largest
        finite |x| (0 if none), (n_rows,): it bounds the rounding error of any of the row's means
        (relative n·eps of it), and is the tie tolerance scale of ``_min_ranks``.
    """
    per_case = np.asarray(per_case, dtype=np.float64)
    weights = np.asarray(weights, dtype=np.float64)
    finite_abs = np.where(np.isfinite(per_case), np.abs(per_case), 0.0)
    scale = finite_abs.max(axis=1, initial=0.0)
    if per_case.shape[0] == 0 or weights.shape[0] == 0:
        empty = np.empty((weights.shape[0], per_case.shape[0]))
        return (empty, scale) if return_scale else empty
    unique, inverse = _unique_rows(per_case)
    if unique.shape[0] == per_case.shape[0]:
        unique, inverse = per_case, None  # all rows distinct: no gather needed
    finite = np.isfinite(unique)
    total = weights.sum(axis=1, keepdims=True)
    if finite.all():
        means = (weights @ unique.T) / total
    else:
        means = weights @ np.where(finite, unique, 0.0).T
        gaps = np.flatnonzero(np.isnan(unique).any(axis=1))  # rows with missing cases
        counts = weights @ (~np.isnan(unique[gaps])).T.astype(np.float64)
        with np.errstate(invalid="ignore"):
            means[:, gaps] /= counts  # no present case drawn: 0 / 0 = NaN, missing
        means[:, np.setdiff1d(np.arange(unique.shape[0]), gaps)] /= total
        infinite = np.flatnonzero(np.isinf(unique).any(axis=1))  # few rows: PSNR of exact copies
        if infinite.size:
            plus = weights @ np.isposinf(unique[infinite]).T.astype(np.float64) > 0
            minus = weights @ np.isneginf(unique[infinite]).T.astype(np.float64) > 0
            block = means[:, infinite]
            block[plus] = np.inf
            block[minus] = -np.inf
            block[plus & minus] = np.nan
            means[:, infinite] = block
    if inverse is not None:
        means = means[:, inverse]
    return (means, scale) if return_scale else means


# ------------------------------------------------------------------------------ paired comparisons


def holm_adjust(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (Holm S., Scand J Stat 6:65-70, 1979).

    With the m present p-values sorted ascending, p_(1) ≤ … ≤ p_(m), the i-th adjusted value is
    max over j ≤ i of min(1, (m − j + 1)·p_(j)); it is monotone in p, and "adjusted < alpha" is
    Holm's procedure at family-wise error rate alpha. NaN p-values stay NaN and do not count in
    m. Returned in the input order.
    """
    p = np.asarray(p_values, dtype=np.float64)
    adjusted = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = present.size
    if m:
        order = present[np.argsort(p[present], kind="stable")]
        adjusted[order] = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    return adjusted


def _tests_differences(d):
    """``d`` with ±inf replaced by ±(2·max|finite d|, or 1): same sign, above every finite |d|.

    The signed-rank test uses only signs and the ranks of |d|: an infinite difference (one run
    reproduced the case exactly: PSNR +inf) takes the top rank, and several infinite differences
    tie for the top ranks and share their mean rank, as they should.
    """
    finite = np.isfinite(d)
    if finite.all():
        return d
    top = 2.0 * np.abs(d[finite]).max() if finite.any() else 0.0
    return np.where(finite, d, np.sign(d) * (top if top > 0 else 1.0))


def _sign_flip_p_value(d):
    """scipy.stats.wilcoxon's exhaustive sign-flip p-value (its "auto" choice for ties/zeros, n ≤ 13).

    Same quantity as scipy's ``permutation_test`` branch -- the exact null distribution of the
    positive rank sum over all 2**n sign flips, p = min(1, 2·min(P(T ≤ t), P(T ≥ t))) -- but by
    counting rank sums (midranks doubled to integers) instead of evaluating 2**n statistics, which
    takes scipy about a quarter of a second per test.
    """
    nonzero = d[d != 0]
    twice = np.rint(2 * scipy.stats.rankdata(np.abs(nonzero))).astype(np.int64)
    observed = int(twice[nonzero > 0].sum())
    counts = np.zeros(int(twice.sum()) + 1)
    counts[0] = 1.0
    for r in twice:  # zeros flip to zero: they scale every count alike, so they drop out
        counts[r:] = counts[r:] + counts[: counts.size - r]
    counts /= counts.sum()
    return float(min(1.0, 2 * min(counts[: observed + 1].sum(), counts[observed:].sum())))


def _wilcoxon_method(d):
    """The p-value when no test is needed, else the method ``scipy.stats.wilcoxon(d)`` would use."""
    if d.size < 2:
        return math.nan
    if not d.any():
        return 1.0
    nonzero = np.abs(d[d != 0])
    ties_or_zeros = nonzero.size < d.size or np.unique(nonzero).size < nonzero.size
    if ties_or_zeros and d.size <= _PERMUTATION_MAX_N:
        return "sign-flip"
    return "exact" if d.size <= _EXACT_MAX_N and not ties_or_zeros else "asymptotic"


def _wilcoxon_p_values(differences):
    """:func:`wilcoxon_p_value` of each array of differences, batched through scipy.

    scipy's "auto" picks one method for a whole batch, so each array's own choice is made first
    and arrays of the same length and method are tested together with that method named.
    """
    p = np.full(len(differences), np.nan)
    batches = {}
    for k, d in enumerate(differences):
        method = _wilcoxon_method(d)
        if not isinstance(method, str):
            p[k] = method
        elif method == "sign-flip":
            p[k] = _sign_flip_p_value(d)
        else:
            batches.setdefault((d.size, method), []).append(k)
    for (_, method), rows in batches.items():
        block = np.stack([differences[k] for k in rows])
        p[rows] = scipy.stats.wilcoxon(block, zero_method=ZERO_METHOD, method=method, axis=1).pvalue
    return p


def wilcoxon_p_value(d) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences, as ``scipy.stats.wilcoxon(d)``.

    ``d``: (n,) finite differences. zero_method "wilcox" (zero differences dropped), method
    "auto": exact null distribution up to 50 differences without ties or zeros, exhaustive sign
    flips up to 13 with ties or zeros (computed by ``_sign_flip_p_value``), the normal
    approximation (tie-corrected, no continuity correction) otherwise. Every difference zero:
    1.0 (the runs agree on every case); fewer than 2 differences: NaN.
    """
    return float(_wilcoxon_p_values([np.asarray(d, dtype=np.float64)])[0])


@dataclass(frozen=True)
class PairedComparison:
    """One run against the leader on one metric; differences are run − leader, in metric units."""

    n_pairs: int  # cases where both runs have a value (equal infinities count, as a tie)
    mean_difference: float  # mean(other − leader); ±inf if a case is infinite; nan if undefined
    ci_low: float  # paired bootstrap percentile interval of the mean difference
    ci_high: float
    p_value: float  # two-sided Wilcoxon signed-rank; nan with fewer than 2 pairs
    p_adjusted: float  # Holm-adjusted over the comparisons that have a p-value
    significant: bool  # p_adjusted < alpha
    test: str  # what was computed, for the page
    n_better: int = 0  # cases this run wins against the leader (direction-aware)
    n_worse: int = 0  # cases the leader wins
    confidence: float = 0.95


def _paired_differences(other, leader):
    """other − leader over the cases both have; equal values (+inf and +inf too) give 0."""
    both = ~np.isnan(other) & ~np.isnan(leader)
    a, b = other[both], leader[both]
    with np.errstate(invalid="ignore"):
        return np.where(a == b, 0.0, a - b)


def _mean_difference_cis(differences, *, n_resamples, confidence, seed):
    """(mean, low, high) of each run's differences: :func:`bootstrap_mean_ci`, batched.

    Runs with the same number of finite pairs share one index draw -- the draw bootstrap_mean_ci
    makes for that n and seed, ``rng.integers(0, n, (B, n))`` -- so their resample means are one
    matrix product with the per-resample case counts; the percentiles are numpy's (linear), as in
    bootstrap_mean_ci. Runs with an infinite difference go through bootstrap_mean_ci itself.
    """
    out = np.full((len(differences), 3), np.nan)
    batches = {}
    for k, d in enumerate(differences):
        if d.size == 0 or (np.isposinf(d).any() and np.isneginf(d).any()):
            continue
        if not np.isfinite(d).all() or d.size == 1:
            ci = bootstrap_mean_ci(d, n_resamples=n_resamples, confidence=confidence, seed=seed)
            out[k] = ci.estimate, ci.low, ci.high
            continue
        batches.setdefault(d.size, []).append(k)
    tail = 50 * (1 - confidence)
    for n, rows in batches.items():
        block = np.stack([differences[k] for k in rows])
        weights = _draw_weights(np.random.default_rng(seed), n, n_resamples)
        means = (block @ weights.T) / n  # (runs, B)
        out[rows, 0] = block.mean(axis=1)
        out[rows, 1:] = np.percentile(means, [tail, 100 - tail], axis=1).T
    return out


def compare_to_leader(
    per_case, leader: int, higher_is_better: bool, *, alpha=0.05, n_resamples=2000, seed=0, confidence=0.95
) -> list[PairedComparison | None]:
    """Every run against the leader on one metric, case by case.

    Args:
        per_case: (n_runs, n_cases) one metric's per-case values, NaN where a run has no value;
            column j is the same case for every run.
        leader: row of the leader (e.g. the run ranked first).
        higher_is_better: the metric's direction (who wins a case; the test itself is two-sided).
        alpha: family-wise error rate for ``significant`` (Holm over the comparisons).
        n_resamples, seed, confidence: the paired bootstrap of the mean difference -- cases
            resampled with the pair kept together, the percentile interval of
            :func:`evaluation.metrics.bootstrap.bootstrap_mean_ci` applied to the differences
            (same draws for the same number of pairs and seed, so the result is reproducible).

    Returns:
        One :class:`PairedComparison` per run, ``None`` at ``leader``.

    Pairs: a case where either run is NaN is dropped. Equal infinite values (both +inf: both
    reproduced the case exactly) are a tie, difference 0. Otherwise an infinite value gives a
    difference of ±inf, so the run with +inf wins that case when higher is better (loses when
    lower is better); ``mean_difference`` and the interval are then ±inf (NaN when both +inf and
    -inf differences occur). For the test an infinite difference is replaced by a finite one of
    the same sign above every finite |difference|, so it takes the top rank
    (``_tests_differences``).

    Test: two-sided Wilcoxon signed-rank, ``scipy.stats.wilcoxon(other, leader)`` with its
    defaults -- zero_method "wilcox": tied cases (zero differences) are dropped, as in
    Wilcoxon's test, since they say nothing about which run is better; method "auto" -- see
    :func:`wilcoxon_p_value` (every difference zero: p = 1; fewer than 2 pairs: NaN, left out of
    the Holm family). Holm's step-down correction (:func:`holm_adjust`) over the comparisons
    that have a p-value controls the chance of calling any run different from the leader by
    mistake.
    """
    per_case = np.asarray(per_case, dtype=np.float64)
    if per_case.ndim != 2:
        raise ValueError(f"per_case must be (n_runs, n_cases), got shape {per_case.shape}")
    n_runs = per_case.shape[0]
    if not 0 <= leader < n_runs:
        raise ValueError(f"leader {leader} is not a row of per_case ({n_runs} runs)")
    runs = [run for run in range(n_runs) if run != leader]
    differences = [_paired_differences(per_case[run], per_case[leader]) for run in runs]
    cis = _mean_difference_cis(differences, n_resamples=int(n_resamples), confidence=confidence, seed=seed)
    p_values = _wilcoxon_p_values([_tests_differences(d) for d in differences])
    adjusted = holm_adjust(p_values)
    m = int((~np.isnan(adjusted)).sum())
    test = (
        "Wilcoxon signed-rank (two-sided, tied cases dropped), "
        f"Holm-corrected over {m} comparison{'' if m == 1 else 's'}"
    )
    sign = 1.0 if higher_is_better else -1.0
    result: list[PairedComparison | None] = [None] * n_runs
    for k, run in enumerate(runs):
        d = differences[k]
        result[run] = PairedComparison(
            n_pairs=int(d.size),
            mean_difference=float(cis[k, 0]),
            ci_low=float(cis[k, 1]),
            ci_high=float(cis[k, 2]),
            p_value=float(p_values[k]),
            p_adjusted=float(adjusted[k]),
            significant=bool(adjusted[k] < alpha),
            test=test,
            n_better=int((sign * d > 0).sum()),
            n_worse=int((sign * d < 0).sum()),
            confidence=float(confidence),
        )
    return result


# ----------------------------------------------------------------------------------- rank stability


def _pairs_sign_sum(y, block=16):
    """Σ over item pairs i < j (in column order) of sign(y[:, j] − y[:, i]), per row.

    ``y``: (B, n) int ranks in 1..n, 0 = absent (pairs with an absent item count 0). Blocks of
    columns: pairs with earlier blocks come from a running histogram of the values seen so far
    (cumulative counts below / above each value), pairs inside a block are compared directly --
    O(B·n·(n/block + block)) instead of O(B·n²).
    """
    n_rows, n = y.shape
    n_values = int(y.max(initial=0)) + 1
    histogram = np.zeros((n_rows, n_values), dtype=np.int64)  # [b, v]: earlier items with value v
    offsets = (np.arange(n_rows) * n_values)[:, None]
    total = np.zeros(n_rows, dtype=np.int64)
    upper = np.triu(np.ones((block, block), dtype=bool), k=1)
    result = np.zeros(n_rows, dtype=np.int64)
    for start in range(0, n, block):
        values = y[:, start : start + block]
        present = values > 0
        at_most = np.cumsum(histogram, axis=1)  # [b, v]: earlier items with value ≤ v (absent = 0)
        below = np.take_along_axis(at_most, np.maximum(values - 1, 0), axis=1)
        above = total[:, None] - np.take_along_axis(at_most, values, axis=1)
        result += np.where(present, below - above, 0).sum(axis=1)
        k = values.shape[1]
        signs = np.sign(values[:, None, :] - values[:, :, None])  # [b, i, j] = sign(y_j − y_i)
        both = present[:, :, None] & present[:, None, :] & upper[:k, :k]
        result += np.where(both, signs, 0).sum(axis=(1, 2))
        histogram += np.bincount((values + offsets).ravel(), minlength=histogram.size).reshape(histogram.shape)
        histogram[:, 0] = 0
        total += present.sum(axis=1)
    return result


def kendall_tau_b(reference, rankings) -> np.ndarray:
    """Kendall's tau-b between one ranking and each row of ``rankings``.

    Args:
        reference: (n,) values (e.g. ranks), NaN = absent.
        rankings: (B, n) values, NaN = absent.

    Returns:
        (B,) tau-b = (concordant − discordant) / √(pairs untied in reference · pairs untied in
        the row), over the items present in both -- what ``scipy.stats.kendalltau(reference, row,
        nan_policy="omit")`` gives (its default variant "b"); NaN when a side has no untied pair.
        Only the order of the values matters: both sides are replaced by competition ranks
        (values within ``RANK_RTOL`` tie, as in :func:`competition_ranks`).
    """
    reference = np.asarray(reference, dtype=np.float64)
    rankings = np.atleast_2d(np.asarray(rankings, dtype=np.float64))
    keep = ~np.isnan(reference)
    reference = _min_ranks(reference[keep])[0]  # ties as everywhere here (RANK_RTOL)
    order = np.argsort(reference, kind="stable")
    reference = reference[order]
    y, missing = _min_ranks(rankings[:, keep][:, order])
    y[missing] = 0
    present = ~missing
    numerator = _pairs_sign_sum(y)
    # Pairs tied in the reference (runs of equal values after sorting) were counted above as if
    # ordered: take them out, and count them for the denominator.
    starts = np.flatnonzero(np.r_[True, reference[1:] != reference[:-1]])
    sizes = np.diff(np.r_[starts, reference.size])
    tied_reference = np.zeros(len(y), dtype=np.int64)
    small = []
    for s, t in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        if t > _KENDALL_DIRECT_GROUP:
            numerator -= _pairs_sign_sum(y[:, s : s + t])
        else:
            small.append(np.array(np.triu_indices(t, k=1)) + s)
        n_tied = present[:, s : s + t].sum(axis=1)
        tied_reference += n_tied * (n_tied - 1) // 2
    if small:
        first, second = np.concatenate(small, axis=1)
        for b in range(0, len(y), _KENDALL_ROWS):  # blocks of rows bound the memory
            a, c = y[b : b + _KENDALL_ROWS, first], y[b : b + _KENDALL_ROWS, second]
            numerator[b : b + _KENDALL_ROWS] -= np.where((a > 0) & (c > 0), np.sign(c - a), 0).sum(axis=1)
    n_present = present.sum(axis=1)
    pairs = n_present * (n_present - 1) // 2
    width = y.shape[1] + 1
    counts = np.bincount((y + (np.arange(len(y)) * width)[:, None]).ravel(), minlength=len(y) * width)
    counts = counts.reshape(len(y), width)[:, 1:]  # [b, v - 1]: items of row b with rank v
    tied_row = (counts * (counts - 1) // 2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return numerator / np.sqrt((pairs - tied_reference).astype(np.float64) * (pairs - tied_row))


@dataclass(frozen=True)
class RankStability:
    """Bootstrap distribution of every run's rank (Wiegand et al. 2021, challengeR blob plots)."""

    rank_counts: np.ndarray  # (n_runs, n_runs): [i, r] = fraction of resamples where run i had rank r + 1
    median_rank: np.ndarray  # (n_runs,) median bootstrap rank
    rank_ci_low: np.ndarray  # (n_runs,) 2.5th percentile of the bootstrap ranks
    rank_ci_high: np.ndarray  # (n_runs,) 97.5th percentile
    kendall_tau_mean: float  # mean Kendall's tau-b between the bootstrap rankings and the full-data ranking
    n_resamples: int
    seed: int
    rank: np.ndarray  # (n_runs,) the full-data ranking the resamples are compared with
    kendall_tau: np.ndarray  # (n_resamples,) tau-b of each resample's ranking


def _draw_weights(rng, n_cases, n_resamples):
    """Case counts (B, n_cases) of the draws ``rng.integers(0, n_cases, (B, n_cases))``.

    Row b counts how often each case is drawn in resample b: the draws of
    ``evaluation.metrics.bootstrap`` (drawn in the same row blocks, which give the same indices
    as one call), so the memory for the indices stays bounded for many cases.
    """
    weights = np.empty((n_resamples, n_cases), dtype=np.float64)
    block = max(1, _DRAW_BLOCK // n_cases)
    for start in range(0, n_resamples, block):
        draws = rng.integers(0, n_cases, size=(min(block, n_resamples - start), n_cases))
        flat = draws + n_cases * np.arange(draws.shape[0])[:, None]
        weights[start : start + draws.shape[0]] = np.bincount(flat.ravel(), minlength=draws.size).reshape(draws.shape)
    return weights


def _rankings(keys, weights):
    """Final ranks (B, n_runs) from keys (n_metrics, n_runs, n_cases), one ranking per weight row."""
    n_metrics, n_runs, n_cases = keys.shape
    aggregates, scale = aggregate_cases(keys.reshape(n_metrics * n_runs, n_cases), weights, return_scale=True)
    return _rank_over_metrics(aggregates.reshape(-1, n_metrics, n_runs), scale.reshape(n_metrics, n_runs))[1]


def rank_stability(per_case, higher_is_better, *, n_resamples=1000, seed=0) -> RankStability:
    """Case bootstrap of the leaderboard ranking.

    Args:
        per_case: (n_runs, n_metrics, n_cases) per-case values, NaN = missing; a 2-D
            (n_runs, n_cases) array is one metric. One metric: runs are ranked by its aggregate
            (:func:`competition_ranks`); several: by their mean rank (:func:`mean_ranks`).
        higher_is_better: (n_metrics,) bools, or one bool.
        n_resamples: bootstrap resamples B.
        seed: seed of ``np.random.default_rng``; the resamples are ``rng.integers(0, n_cases,
            (B, n_cases))`` -- case indices drawn with replacement, the same draw for every run
            and metric (the draws of ``evaluation.metrics.bootstrap``).

    Returns:
        :class:`RankStability`. Each resample aggregates each run's metric as the nan-mean over
        the drawn cases (inf stays inf: :func:`aggregate_cases`) and ranks the runs with
        competition ranks (ties, to ``RANK_RTOL``, share). A run unranked in a resample (no value on any drawn case)
        is left out of that resample, so its ``rank_counts`` row sums to the fraction of
        resamples where it was ranked (1 for a run with values on every case) and its
        percentiles use those resamples (NaN if none). Kendall's tau-b compares each resample's
        ranking with the full-data ranking (:func:`kendall_tau_b`); ``kendall_tau_mean`` is its
        mean over the resamples, ignoring NaN (a resample where every run ties).
    """
    per_case = np.asarray(per_case, dtype=np.float64)
    if per_case.ndim == 2:
        per_case = per_case[:, None, :]
    if per_case.ndim != 3:
        raise ValueError(f"per_case must be (n_runs, n_metrics, n_cases), got shape {per_case.shape}")
    n_runs, n_metrics, n_cases = per_case.shape
    if n_cases < 1 or n_metrics < 1:
        raise ValueError("rank_stability needs at least one metric and one case")
    if int(n_resamples) < 1:
        raise ValueError("n_resamples must be at least 1")
    directions = _directions(higher_is_better, n_metrics)
    # Keys (lower = better), metric-major; negating is exact, so means of keys are -means.
    keys = per_case.transpose(1, 0, 2)
    keys = np.where(directions[:, None, None], -keys, keys)
    full = _rankings(keys, np.ones((1, n_cases)))[0]
    ranks = _rankings(keys, _draw_weights(np.random.default_rng(seed), n_cases, int(n_resamples)))

    ranked = ~np.isnan(ranks)
    runs = np.broadcast_to(np.arange(n_runs), ranks.shape)[ranked]
    cells = runs * n_runs + ranks[ranked].astype(np.int64) - 1
    counts = np.bincount(cells, minlength=n_runs * n_runs).reshape(n_runs, n_runs) / ranks.shape[0]
    ordered = np.sort(ranks, axis=0)  # NaN last: each run's ranked resamples come first
    median, low, high = (np.full(n_runs, np.nan) for _ in range(3))
    n_ranked = ranked.sum(axis=0)
    for k in np.unique(n_ranked[n_ranked > 0]):  # usually one group: every run ranked every time
        cols = np.flatnonzero(n_ranked == k)
        median[cols], low[cols], high[cols] = np.percentile(ordered[:k, cols], [50.0, 2.5, 97.5], axis=0)
    taus = kendall_tau_b(full, ranks)
    tau_mean = float(np.nanmean(taus)) if np.isfinite(taus).any() else math.nan
    return RankStability(
        rank_counts=counts,
        median_rank=median,
        rank_ci_low=low,
        rank_ci_high=high,
        kendall_tau_mean=tau_mean,
        n_resamples=int(n_resamples),
        seed=int(seed),
        rank=full,
        kendall_tau=taus,
    )
