"""Likert-scale reader studies: mean opinion scores, inter-reader ICC and intra-reader weighted kappa.

References: Shrout PE & Fleiss JL (1979), "Intraclass correlations: uses in assessing rater reliability",
Psychol Bull 86:420-428 (ICC(2,1), ICC(2,k) and their F-based CIs); Cohen J (1968), "Weighted kappa", Psychol Bull
70:213-220, with the large-sample variance of Fleiss, Cohen & Everitt (1969), Psychol Bull 72:323-327.
Checked against pingouin ``intraclass_corr``, statsmodels ``cohens_kappa`` and scikit-learn ``cohen_kappa_score``
in tests/test_readerstudy_stats.py; only numpy and scipy are used here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "ICCResult",
    "KappaResult",
    "MeanOpinionScore",
    "icc",
    "mean_opinion_score",
    "two_way_bootstrap_means",
    "weighted_kappa",
]


def _index(values) -> tuple[tuple, np.ndarray]:
    """Sorted unique labels and each value's index into them."""
    unique = set(values)
    try:
        labels = tuple(sorted(unique))
    except TypeError:
        labels = tuple(sorted(unique, key=repr))
    lookup = {v: i for i, v in enumerate(labels)}
    return labels, np.array([lookup[v] for v in values], dtype=np.intp)


def _draw_counts(draws: np.ndarray, size: int) -> np.ndarray:
    """(B, m) drawn indices in [0, size) → (B, size) float counts of each index per resample."""
    offset = draws + size * np.arange(draws.shape[0])[:, None]
    return np.bincount(offset.ravel(), minlength=draws.shape[0] * size).reshape(-1, size).astype(float)


def two_way_bootstrap_means(values, observed, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Means of a (groups, readers, cases) array over bootstrap resamples of readers and of cases.

    values: (g, r, c) floats (ignored where not observed); observed: (g, r, c) bool.
    Readers and cases are resampled independently, with replacement, the same draws for every group (so groups
    stay paired). A resample's mean for group g is Σ_{a,b} w_a w_b x_gab / Σ_{a,b} w_a w_b o_gab, where w counts
    how often each reader / case was drawn: the mean over all observed cells of the resampled reader×case table.
    Returns (n_boot, g); NaN where a resample holds no observed cell of a group.
    """
    g, r, c = values.shape
    x = np.where(observed, values, 0.0)
    o = observed.astype(float)
    w_r = _draw_counts(rng.integers(0, r, size=(n_boot, r)), r)
    w_c = _draw_counts(rng.integers(0, c, size=(n_boot, c)), c)
    out = np.empty((n_boot, g))
    step = max(1, 2_000_000 // max(1, g * c))  # bound the (chunk, g, c) intermediates to ~16 MB each
    for start in range(0, n_boot, step):
        wr, wc = w_r[start : start + step], w_c[start : start + step]
        # Σ_a w_a x_gac first, then weight the cases: O(B·g·r·c) without materialising resampled tables.
        num = np.einsum("bgc,bc->bg", np.einsum("br,grc->bgc", wr, x), wc)
        den = np.einsum("bgc,bc->bg", np.einsum("br,grc->bgc", wr, o), wc)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start : start + step] = np.where(den > 0, num / den, np.nan)
    return out


@dataclass(frozen=True)
class MeanOpinionScore:
    """A model's mean opinion score (mean of all its reader×case scores) with a two-way bootstrap percentile CI."""

    model: object
    mean: float
    ci: tuple[float, float]
    n_scores: int
    n_readers: int
    n_cases: int


def mean_opinion_score(records: Iterable[tuple], n_boot: int = 2000, seed: int = 0, conf_level: float = 0.95) -> dict:
    """Mean opinion score per model, with a CI from a bootstrap over readers and cases.

    records: iterable of (reader, model, case, score), score a number (e.g. a Likert 1–5 rating); at most one
    score per reader, model and case. ``case`` is the unit that is resampled: use the source case when every model
    produced an image for it, so models stay paired across resamples.
    The CI resamples readers and cases independently (both are random samples, and ignoring either makes the CI
    too narrow), with ``n_boot`` resamples from ``numpy.random.default_rng(seed)``, percentile method.
    Returns model → MeanOpinionScore, in sorted model order.
    """
    rows = [tuple(rec) for rec in records]
    if not rows:
        raise ValueError("no records")
    readers_col, models_col, cases_col, scores_col = zip(*rows, strict=True)
    readers, ri = _index(readers_col)
    models, mi = _index(models_col)
    cases, ci = _index(cases_col)
    scores = np.asarray(scores_col, dtype=float)
    if not np.all(np.isfinite(scores)):
        raise ValueError("scores must be finite numbers")
    shape = (len(models), len(readers), len(cases))
    flat = np.ravel_multi_index((mi, ri, ci), shape)
    if np.bincount(flat).max() > 1:
        raise ValueError("a reader scored the same model and case more than once")
    values = np.zeros(shape)
    observed = np.zeros(shape, dtype=bool)
    values.flat[flat] = scores
    observed.flat[flat] = True

    boots = two_way_bootstrap_means(values, observed, n_boot, np.random.default_rng(seed))
    tail = (1 - conf_level) / 2 * 100
    lo, hi = np.nanpercentile(boots, [tail, 100 - tail], axis=0)
    out = {}
    for g, model in enumerate(models):
        mask = observed[g]
        out[model] = MeanOpinionScore(
            model,
            float(values[g][mask].mean()),
            (float(lo[g]), float(hi[g])),
            int(mask.sum()),
            int(mask.any(axis=1).sum()),
            int(mask.any(axis=0).sum()),
        )
    return out


@dataclass(frozen=True)
class ICCResult:
    """Two-way random-effects, absolute-agreement intraclass correlations (Shrout & Fleiss ICC(2,1) and ICC(2,k)).

    icc_single: reliability of one rater's score; icc_average: of the mean of the k raters' scores.
    f, df1, df2, p_value: the F test of ICC = 0 (MS(targets)/MS(error)).
    """

    icc_single: float
    icc_single_ci: tuple[float, float]
    icc_average: float
    icc_average_ci: tuple[float, float]
    f: float
    df1: int
    df2: int
    p_value: float
    n_targets: int
    n_raters: int


def icc(matrix, conf_level: float = 0.95) -> ICCResult:
    """ICC(2,1) and ICC(2,k): two-way random effects (targets and raters random), absolute agreement.

    matrix: (n_targets, k_raters) scores, complete (no NaN), n ≥ 2 and k ≥ 2; e.g. cases × readers Likert scores
    for one model. CIs are the F-based intervals of Shrout & Fleiss (1979) / McGraw & Wong (1996), with the
    Satterthwaite degrees of freedom for ICC(2,1); ICC(2,k)'s CI is the Spearman–Brown transform of it.
    """
    x = np.asarray(matrix, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2 or x.shape[1] < 2:
        raise ValueError("icc needs a (targets, raters) matrix with at least 2 of each")
    if not np.all(np.isfinite(x)):
        raise ValueError("icc needs a complete matrix (every rater scores every target)")
    n, k = x.shape
    grand = x.mean()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()
    ss_err = ((x - grand) ** 2).sum() - ss_rows - ss_cols
    df1, df2 = n - 1, (n - 1) * (k - 1)
    msr, msc, mse = ss_rows / df1, ss_cols / (k - 1), ss_err / df2

    icc1 = (msr - mse) / (msr + (k - 1) * mse + k * (msc - mse) / n)
    icck = (msr - mse) / (msr + (msc - mse) / n)
    f = msr / mse if mse > 0 else math.inf
    p_value = float(stats.f.sf(f, df1, df2)) if math.isfinite(f) else 0.0

    alpha = 1 - conf_level
    if mse > 0:
        # Satterthwaite df for the linear combination of MS(raters) and MS(error) (Shrout & Fleiss, eq. 8).
        fj = msc / mse
        a = n * (1 + (k - 1) * icc1) - k * icc1
        v = df2 * (k * icc1 * fj + a) ** 2 / (df1 * k**2 * icc1**2 * fj**2 + a**2)
        f_up = stats.f.ppf(1 - alpha / 2, df1, v)
        f_lo = stats.f.ppf(1 - alpha / 2, v, df1)
        lo = n * (msr - f_up * mse) / (f_up * (k * msc + (k * n - k - n) * mse) + n * msr)
        hi = n * (f_lo * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_lo * msr)
    else:  # perfect agreement within every target
        lo = hi = icc1

    def spearman_brown(rho):
        return rho * k / (1 + (k - 1) * rho)

    return ICCResult(
        float(icc1),
        (float(lo), float(hi)),
        float(icck),
        (float(spearman_brown(lo)), float(spearman_brown(hi))),
        float(f),
        df1,
        df2,
        p_value,
        n,
        k,
    )


@dataclass(frozen=True)
class KappaResult:
    """Cohen's (weighted) kappa with its large-sample standard error and Wald CI."""

    kappa: float
    se: float
    ci: tuple[float, float]
    n: int
    weights: str


def weighted_kappa(
    a,
    b,
    weights: str = "linear",
    categories: Sequence = (1, 2, 3, 4, 5),
    conf_level: float = 0.95,
) -> KappaResult:
    """Cohen's weighted kappa between two ratings of the same items (e.g. one reader's repeat reads).

    a, b: (n,) ratings of the same n items, each a value in ``categories`` (ordered, equally spaced by rank).
    weights: "linear" (disagreement |i − j|), "quadratic" ((i − j)²) or "none" (Cohen's unweighted kappa).
    κ_w = 1 − Σ w·observed / Σ w·expected (expected from the two marginal distributions). The SE is the
    Fleiss–Cohen–Everitt (1969) large-sample SE (not under the null), the CI κ ± z·SE.
    """
    if weights not in ("linear", "quadratic", "none"):
        raise ValueError("weights must be 'linear', 'quadratic' or 'none'")
    cats = list(categories)
    lookup = {c: i for i, c in enumerate(cats)}
    try:
        ia = np.array([lookup[v] for v in a], dtype=np.intp)
        ib = np.array([lookup[v] for v in b], dtype=np.intp)
    except KeyError as exc:
        raise ValueError(f"rating {exc.args[0]!r} is not one of the categories {cats}") from None
    if ia.size != ib.size or ia.size == 0:
        raise ValueError("a and b must be non-empty and of equal length")
    m, n = len(cats), ia.size
    p = np.bincount(ia * m + ib, minlength=m * m).reshape(m, m) / n
    idx = np.arange(m)
    dist = np.abs(idx[:, None] - idx[None, :]).astype(float)
    if weights == "none":
        dist = (dist > 0).astype(float)
    elif weights == "quadratic":
        dist = dist**2
    w = 1 - dist / dist.max()  # agreement weights in [0, 1]; kappa does not depend on the scale
    row, col = p.sum(axis=1), p.sum(axis=0)
    p_o = (w * p).sum()
    p_e = (w * np.outer(row, col)).sum()
    if p_e == 1:
        raise ValueError("kappa is undefined when both ratings use a single category")
    kappa = (p_o - p_e) / (1 - p_e)
    # Fleiss, Cohen & Everitt (1969), eq. 13.
    w_row, w_col = w @ col, row @ w
    term = w - (w_row[:, None] + w_col[None, :]) * (1 - kappa)
    var = ((p * term**2).sum() - (kappa - p_e * (1 - kappa)) ** 2) / (n * (1 - p_e) ** 2)
    se = math.sqrt(max(var, 0.0))
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    return KappaResult(float(kappa), se, (float(kappa - z * se), float(kappa + z * se)), n, weights)
