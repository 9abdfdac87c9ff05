"""Seeded case-resampling (nonparametric) bootstrap confidence intervals.

Cases -- images, patients -- are the unit of resampling: a bootstrap sample draws n case
indices with replacement, ``np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))``
(row b is resample b), and the statistic is recomputed on each. The interval is the
percentile interval (Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13):
the (1 − confidence)/2 and (1 + confidence)/2 quantiles of the resampled statistics, with
numpy's default "linear" quantile interpolation. Percentile rather than BCa: it needs no
jackknife (which would cost n more evaluations of the feature-tier statistics) and is what
``scipy.stats.bootstrap(method="percentile")`` computes.

The same seed and the same inputs always give the same interval; the index draws are shared
by :func:`bootstrap_mean_ci` and :func:`bootstrap_statistic_ci`, so the mean of ``values[idx]``
through the latter gives exactly the former.

Pure numpy: nothing here imports Django.
"""

import math
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["BootstrapResult", "bootstrap_mean_ci", "bootstrap_statistic_ci"]

# Index matrix rows drawn (and reduced) at once: at most this many indices (32 MiB of int64).
_CHUNK_INDICES = 1 << 22


@dataclass(frozen=True)
class BootstrapResult:
    """A point estimate with its bootstrap confidence interval [low, high]."""

    estimate: float
    low: float
    high: float
    n: int
    n_resamples: int
    seed: int
    confidence: float
    method: str = "percentile"

    def as_dict(self):
        return asdict(self)


def _validate(n, n_resamples, confidence):
    if n < 1:
        raise ValueError("A bootstrap needs at least one case")
    if int(n_resamples) < 1:
        raise ValueError("n_resamples must be at least 1")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def _index_chunks(rng, n, n_resamples):
    """Successive row blocks of the (n_resamples, n) index matrix, drawn in order from ``rng``.

    Drawing the rows block by block gives the same indices as one ``rng.integers(0, n, (B, n))``
    call; blocks keep the memory at ``_CHUNK_INDICES`` indices for large n.
    """
    rows = max(1, _CHUNK_INDICES // n)
    for start in range(0, n_resamples, rows):
        yield rng.integers(0, n, size=(min(rows, n_resamples - start), n))


def _percentile_interval(samples, confidence):
    """Linear-interpolation quantiles (numpy's default) that stay inf, not nan, next to +/-inf."""
    ordered = np.sort(np.asarray(samples, dtype=np.float64))
    alpha = (1 - confidence) / 2
    bounds = []
    for q in (alpha, 1 - alpha):
        position = (len(ordered) - 1) * q
        below = math.floor(position)
        above = min(below + 1, len(ordered) - 1)
        fraction = position - below
        lo, hi = ordered[below], ordered[above]
        if fraction == 0 or lo == hi or np.isneginf(lo):
            bounds.append(float(lo))
        elif np.isposinf(hi):
            bounds.append(float(hi))
        elif fraction < 0.5:  # numpy's two-sided lerp, so finite bounds equal np.percentile's bit for bit
            bounds.append(float(lo + (hi - lo) * fraction))
        else:
            bounds.append(float(hi - (hi - lo) * (1 - fraction)))
    return bounds


def bootstrap_mean_ci(values, *, n_resamples=1000, confidence=0.95, seed=0) -> BootstrapResult:
    """Mean of per-case values with a percentile bootstrap confidence interval.

    Args:
        values: per-case values, shape (n,) (e.g. PSNR of each test case), n ≥ 1.
        n_resamples: bootstrap resamples B.
        confidence: coverage of the interval, e.g. 0.95.
        seed: seed of ``np.random.default_rng``.

    Returns:
        :class:`BootstrapResult` with ``estimate`` = the plain mean of ``values``.

    Non-finite values: NaN raises ``ValueError`` (callers drop or count failed cases first).
    Infinite values are allowed in one direction -- PSNR is +inf for a case reproduced exactly:
    the mean is then +inf, a resample that contains such a case has mean +inf, and the bounds
    are the quantiles of resample means that may be +inf (``high`` is +inf once more than
    (1 − confidence)/2 of the resamples contain an infinite case; ``low`` stays finite while
    enough resamples avoid them). Values with both +inf and −inf have no mean: ``ValueError``.
    n = 1 gives low = high = estimate.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {values.shape}")
    n = values.shape[0]
    _validate(n, n_resamples, confidence)
    if np.isnan(values).any():
        raise ValueError("values contain NaN; drop or count the failed cases before bootstrapping")
    if np.isposinf(values).any() and np.isneginf(values).any():
        raise ValueError("values contain both +inf and -inf; their mean is undefined")
    estimate = float(values.mean())
    rng = np.random.default_rng(seed)
    means = np.concatenate([values[idx].mean(axis=1) for idx in _index_chunks(rng, n, int(n_resamples))])
    low, high = _percentile_interval(means, confidence)
    if n == 1:
        low = high = estimate
    return BootstrapResult(estimate, low, high, n, int(n_resamples), int(seed), float(confidence))


def bootstrap_statistic_ci(n_cases, statistic, *, n_resamples=200, confidence=0.95, seed=0) -> BootstrapResult:
    """Any statistic of the cases with a percentile bootstrap interval, resampling cases jointly.

    Args:
        n_cases: number of cases n ≥ 1.
        statistic: ``statistic(indices) -> float``, computed on the cases ``indices`` (an int
            array of length n, with repeats); ``estimate`` is ``statistic(np.arange(n))``. For
            a feature-tier metric such as FRD, index the generated features (and, for paired
            data, the matching reference features) with the same indices.
        n_resamples: bootstrap resamples B (each is one call of ``statistic``).
        confidence: coverage of the interval.
        seed: seed of ``np.random.default_rng``; the draws are those of :func:`bootstrap_mean_ci`.

    Returns:
        :class:`BootstrapResult`. A NaN from ``statistic`` raises ``ValueError``; ±inf is kept
        and handled as in :func:`bootstrap_mean_ci`.
    """
    n = int(n_cases)
    _validate(n, n_resamples, confidence)
    estimate = float(statistic(np.arange(n)))
    rng = np.random.default_rng(seed)
    samples = np.empty(int(n_resamples))
    b = 0
    for chunk in _index_chunks(rng, n, int(n_resamples)):
        for idx in chunk:
            samples[b] = float(statistic(idx))
            b += 1
    if np.isnan(estimate) or np.isnan(samples).any():
        raise ValueError("statistic returned NaN")
    low, high = _percentile_interval(samples, confidence)
    if n == 1:
        low = high = estimate
    return BootstrapResult(estimate, low, high, n, int(n_resamples), int(seed), float(confidence))
