"""Multi-reader multi-case (MRMC) ROC analysis: the Obuchowski–Rockette model with Hillis's degrees of freedom.

Reference: Hillis SL (2007), "A comparison of denominator degrees of freedom methods for multiple observer ROC
analysis", Stat Med 26:596-619 (with Obuchowski & Rockette 1995 and Hillis et al. 2005 for the model). The
formulas are those printed by OR-DBM MRMC 2.51 (University of Iowa) and implemented by MRMCaov and RJafroc (R).

Written here because no maintained Python package implements MRMC analysis; it is checked against the published
OR-DBM MRMC 2.51 and MRMCaov outputs for the Van Dyke (1993) study in tests/test_readerstudy_stats.py.

Terms: a *modality* (test, treatment) is what is compared, e.g. an imaging method or a generative model; *readers*
rate every *case* under every modality (fully crossed design); *truth* is 1 for a positive (abnormal) case, 0 for a
negative one; a higher *rating* means more confidence that the case is positive. AUCs are empirical
(trapezoidal / Wilcoxon), so ratings on any ordinal or continuous scale work.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
from scipy import stats

__all__ = [
    "ChanceEquivalence",
    "Difference",
    "ModalityEstimate",
    "ORResult",
    "Verdict",
    "auc",
    "equivalence_to_chance",
    "obuchowski_rockette",
    "structural_components",
]

COVARIANCE_METHODS = ("jackknife", "delong")


def auc(ratings_neg, ratings_pos):
    """Empirical (trapezoidal / Wilcoxon–Mann–Whitney) area under the ROC curve; ties count 1/2.

    ratings_neg: (..., n0) ratings of the negative cases; ratings_pos: (..., n1) ratings of the positive cases.
    Leading dimensions broadcast, so one call computes many AUCs (e.g. modalities × readers).
    Returns P(rating_pos > rating_neg) + ½ P(tie): a float, or an array of the broadcast leading shape.
    """
    neg = np.asarray(ratings_neg, dtype=float)
    pos = np.asarray(ratings_pos, dtype=float)
    if neg.ndim == 0 or pos.ndim == 0 or neg.shape[-1] == 0 or pos.shape[-1] == 0:
        raise ValueError("auc needs at least one negative and one positive rating")
    lead = np.broadcast_shapes(neg.shape[:-1], pos.shape[:-1])
    neg = np.broadcast_to(neg, lead + neg.shape[-1:])
    pos = np.broadcast_to(pos, lead + pos.shape[-1:])
    n0, n1 = neg.shape[-1], pos.shape[-1]
    # Mann–Whitney U from midranks: O(n log n) instead of the n0·n1 comparison matrix.
    ranks = stats.rankdata(np.concatenate([pos, neg], axis=-1), axis=-1)
    value = (ranks[..., :n1].sum(axis=-1) - n1 * (n1 + 1) / 2) / (n0 * n1)
    return float(value) if value.ndim == 0 else value


def structural_components(ratings_neg, ratings_pos):
    """DeLong's structural components (placement values) of the empirical AUC.

    ratings_neg: (..., n0), ratings_pos: (..., n1) with the same leading shape.
    Returns (v10, v01): v10 (..., n1) is, for each positive case, the fraction of negatives rated below it (ties ½);
    v01 (..., n0) is, for each negative case, the fraction of positives rated above it. Both average to the AUC.
    """
    neg = np.asarray(ratings_neg, dtype=float)
    pos = np.asarray(ratings_pos, dtype=float)
    n0, n1 = neg.shape[-1], pos.shape[-1]
    both = stats.rankdata(np.concatenate([pos, neg], axis=-1), axis=-1)
    # A midrank in the pooled sample minus the midrank within its own group counts the other group below it.
    v10 = (both[..., :n1] - stats.rankdata(pos, axis=-1)) / n0
    v01 = 1.0 - (both[..., n1:] - stats.rankdata(neg, axis=-1)) / n1
    return v10, v01


@dataclass(frozen=True)
class ModalityEstimate:
    """One modality's reader-averaged AUC with its random-reader random-case CI (Hillis 2007 single-treatment).

    var = MS(R)/r + max(Cov2, 0); df = [MS(R) + r·max(Cov2, 0)]² / [MS(R)²/(r − 1)].

    ``ci`` is the published symmetric t interval (OR-DBM MRMC, MRMCaov), which can pass 1 for an AUC
    near 1 (1.04 on the demo). ``ci_bounded`` is the one to show: the same t quantile and SE on the
    logit scale (delta method, SE/(AUC·(1 − AUC))), mapped back, so it lies inside (0, 1) and is
    asymmetric near the bounds (:func:`logit_ci`).
    """

    modality: Hashable
    auc: float
    se: float
    df: float
    ci: tuple[float, float]
    ms_r: float
    cov2: float
    var_error: float
    ci_bounded: tuple[float, float] = (math.nan, math.nan)


@dataclass(frozen=True)
class Difference:
    """Reader-averaged AUC of modality ``a`` minus that of modality ``b``, with its CI and t test."""

    a: Hashable
    b: Hashable
    estimate: float
    se: float
    df: float
    ci: tuple[float, float]
    t: float
    p_value: float


@dataclass(frozen=True)
class ORResult:
    """Obuchowski–Rockette analysis (random readers, random cases) of a fully crossed MRMC ROC study.

    auc_table: (n_modalities, n_readers) AUCs, rows in ``modalities`` order, columns in ``readers`` order.
    covariance: (t·r, t·r) covariance of the flattened auc_table (row-major: modality, then reader) over cases.
    var_error, cov1 (same reader, different modality), cov2 (same modality, different reader), cov3 (both
    different): the averaged OR error (co)variances. ms_t, ms_r, ms_tr: treatment, reader and treatment×reader mean
    squares of the AUC table. var_r, var_tr: OR variance components (for sizing future studies; can be negative).
    f_stat on (df_num, df_denom) with df_denom = Hillis's ddf_H tests equal modality AUCs (NaN for one modality).
    differences: every pair (modalities[i] − modalities[j], i < j), each with SE = √(2/r·[MS(T×R) +
    r·max(Cov2 − Cov3, 0)]) and t on ddf_H. difference / difference_ci / se: modalities[0] − modalities[1] when
    there are exactly two modalities (the "1 - 2" row of OR-DBM MRMC and MRMCaov), else None.
    single_modality: modality → ModalityEstimate.
    """

    readers: tuple
    modalities: tuple
    n_positive: int
    n_negative: int
    covariance_method: str
    alpha: float
    auc_table: np.ndarray
    covariance: np.ndarray
    var_error: float
    cov1: float
    cov2: float
    cov3: float
    ms_t: float
    ms_r: float
    ms_tr: float
    var_r: float
    var_tr: float
    f_stat: float
    df_num: int
    df_denom: float
    p_value: float
    differences: tuple[Difference, ...]
    single_modality: dict
    difference: float | None
    difference_ci: tuple[float, float] | None
    se: float | None

    @property
    def reader_auc(self) -> dict:
        """modality → {reader → AUC}."""
        return {
            m: {rd: float(self.auc_table[i, j]) for j, rd in enumerate(self.readers)}
            for i, m in enumerate(self.modalities)
        }

    @property
    def modality_auc(self) -> dict:
        """modality → reader-averaged AUC."""
        return {m: float(v) for m, v in zip(self.modalities, self.auc_table.mean(axis=1), strict=True)}


def _sorted_labels(values) -> tuple:
    unique = set(values)
    try:
        return tuple(sorted(unique))
    except TypeError:  # mixed label types: any stable order will do
        return tuple(sorted(unique, key=repr))


def _crossed_ratings(records):
    """records → (readers, modalities, cases, truth (K,) bool, ratings (t, r, K)); validates the design."""
    rows = [tuple(rec) for rec in records]
    if not rows:
        raise ValueError("no records")
    if any(len(row) != 5 for row in rows):
        raise ValueError("each record must be (reader, modality, case, truth, rating)")
    reader_col, modality_col, case_col, truth_col, rating_col = zip(*rows, strict=True)
    readers, modalities = _sorted_labels(reader_col), _sorted_labels(modality_col)
    cases = _sorted_labels(case_col)
    if len(readers) < 2:
        raise ValueError(f"the OR random-reader analysis needs at least 2 readers, got {len(readers)}")

    truth_of: dict = {}
    for case, truth in zip(case_col, truth_col, strict=True):
        if truth not in (0, 1):
            raise ValueError(f"truth must be 0 (negative) or 1 (positive); case {case!r} has {truth!r}")
        if truth_of.setdefault(case, truth) != truth:
            raise ValueError(f"case {case!r} has both truth 0 and 1")
    truth = np.array([truth_of[c] == 1 for c in cases])

    ratings = np.array(rating_col, dtype=float)
    if not np.all(np.isfinite(ratings)):
        raise ValueError("ratings must be finite numbers")
    r_index = {v: i for i, v in enumerate(readers)}
    m_index = {v: i for i, v in enumerate(modalities)}
    c_index = {v: i for i, v in enumerate(cases)}
    t, r, k = len(modalities), len(readers), len(cases)
    flat = (
        np.array([m_index[v] for v in modality_col]) * r + np.array([r_index[v] for v in reader_col])
    ) * k + np.array([c_index[v] for v in case_col])
    counts = np.bincount(flat, minlength=t * r * k)
    if counts.max() > 1:
        m, rd, c = np.unravel_index(int(np.argmax(counts > 1)), (t, r, k))
        raise ValueError(
            f"reader {readers[rd]!r} rated case {cases[c]!r} under modality {modalities[m]!r} more than once"
        )
    if counts.min() == 0:
        missing = np.flatnonzero(counts == 0)
        examples = ", ".join(
            f"(reader {readers[rd]!r}, modality {modalities[m]!r}, case {cases[c]!r})"
            for m, rd, c in zip(*np.unravel_index(missing[:3], (t, r, k)), strict=True)
        )
        raise ValueError(
            f"the design is not fully crossed: {missing.size} of {t * r * k} reader×modality×case ratings are "
            f"missing, e.g. {examples}; every reader must rate every case under every modality"
        )
    n_pos = int(truth.sum())
    if n_pos < 2 or k - n_pos < 2:
        raise ValueError(
            f"every modality needs at least 2 positive and 2 negative cases (got {n_pos} positive, "
            f"{k - n_pos} negative)"
        )
    grid = np.empty(t * r * k)
    grid[flat] = ratings
    return readers, modalities, cases, truth, grid.reshape(t, r, k)


def _jackknife_covariance(theta, v10, v01):
    """(K−1)/K Σ_k (θ_(k) − θ̄_(·))(θ_(k) − θ̄_(·))ᵀ over the leave-one-case-out AUCs, K = all cases."""
    n1, n0 = v10.shape[-1], v01.shape[-1]
    # Leaving out one case only removes its structural component from the AUC's double sum.
    loo_pos = (n1 * theta[..., None] - v10) / (n1 - 1)
    loo_neg = (n0 * theta[..., None] - v01) / (n0 - 1)
    loo = np.concatenate([loo_pos, loo_neg], axis=-1).reshape(-1, n1 + n0)
    centred = loo - loo.mean(axis=1, keepdims=True)
    k = n1 + n0
    return (k - 1) / k * centred @ centred.T


def _delong_covariance(theta, v10, v01):
    """DeLong et al. (1988): S10/n1 + S01/n0 from the structural components' sample covariances."""
    n1, n0 = v10.shape[-1], v01.shape[-1]
    d10 = (v10 - theta[..., None]).reshape(-1, n1)
    d01 = (v01 - theta[..., None]).reshape(-1, n0)
    return (d10 @ d10.T) / ((n1 - 1) * n1) + (d01 @ d01.T) / ((n0 - 1) * n0)


def _t_ci(estimate, se, df, alpha):
    q = stats.t.ppf(1 - alpha / 2, df) if math.isfinite(df) else stats.norm.ppf(1 - alpha / 2)
    return (float(estimate - q * se), float(estimate + q * se))


def logit_ci(estimate, se, df, alpha):
    """A CI for a proportion-like estimate in [0, 1] (an AUC) on the logit scale, mapped back.

    logit(θ) ± q·SE/(θ(1 − θ)), with q the t quantile on ``df`` (normal when infinite), through
    the logistic function: inside (0, 1) by construction and, for small SE, equal to the symmetric
    t interval to first order. Where θ is 0 or 1 (or SE is 0) the logit is not defined; there the
    symmetric interval clipped to [0, 1] is returned. (low, high) floats.
    """
    q = stats.t.ppf(1 - alpha / 2, df) if math.isfinite(df) else stats.norm.ppf(1 - alpha / 2)
    if not 0 < estimate < 1 or se <= 0:
        return (float(min(max(estimate - q * se, 0.0), 1.0)), float(min(max(estimate + q * se, 0.0), 1.0)))
    centre = math.log(estimate / (1 - estimate))
    half = q * se / (estimate * (1 - estimate))
    return (float(1 / (1 + math.exp(-(centre - half)))), float(1 / (1 + math.exp(-(centre + half)))))


def _hillis_ddf(denominator, ms, df_ms):
    """Satterthwaite-type ddf = denominator² / (MS²/df); infinite when MS is 0 (only the case term remains)."""
    return math.inf if ms == 0 else float(denominator**2 / (ms**2 / df_ms))


def _or_analysis(theta, cov, readers, modalities, alpha, method, n_pos, n_neg) -> ORResult:
    t, r = theta.shape
    cov4 = cov.reshape(t, r, t, r)
    same_t = np.broadcast_to(np.eye(t, dtype=bool)[:, None, :, None], cov4.shape)
    same_r = np.broadcast_to(np.eye(r, dtype=bool)[None, :, None, :], cov4.shape)

    def mean_where(mask):
        return float(cov4[mask].mean()) if mask.any() else math.nan

    var_error = mean_where(same_t & same_r)
    cov1 = mean_where(~same_t & same_r)
    cov2 = mean_where(same_t & ~same_r)
    cov3 = mean_where(~same_t & ~same_r)

    mean_t, mean_r, grand = theta.mean(axis=1), theta.mean(axis=0), theta.mean()
    ms_r = float(t * ((mean_r - grand) ** 2).sum() / (r - 1))
    ms_r_each = ((theta - mean_t[:, None]) ** 2).sum(axis=1) / (r - 1)
    off_r = ~np.eye(r, dtype=bool)

    single = {}
    for i, m in enumerate(modalities):
        block = cov4[i, :, i, :]
        cov2_i, var_i = float(block[off_r].mean()), float(np.diag(block).mean())
        ms = float(ms_r_each[i])
        den = ms + r * max(cov2_i, 0.0)
        se_i = math.sqrt(den / r)
        df_i = _hillis_ddf(den, ms, r - 1)
        single[m] = ModalityEstimate(
            m,
            float(mean_t[i]),
            se_i,
            df_i,
            _t_ci(mean_t[i], se_i, df_i, alpha),
            ms,
            cov2_i,
            var_i,
            ci_bounded=logit_ci(float(mean_t[i]), se_i, df_i, alpha),
        )

    nan = math.nan
    ms_t = ms_tr = var_r = var_tr = f_stat = df_denom = p_value = nan
    differences: list[Difference] = []
    if t > 1:
        ms_t = float(r * ((mean_t - grand) ** 2).sum() / (t - 1))
        ms_tr = float(((theta - mean_t[:, None] - mean_r[None, :] + grand) ** 2).sum() / ((t - 1) * (r - 1)))
        # OR variance components (Hillis 2005; RJafroc UtilORVarComponentsFactorial), for sample-size planning.
        var_tr = ms_tr - var_error + cov1 + max(cov2 - cov3, 0.0)
        var_r = (ms_r - var_error - (t - 1) * cov1 + cov2 + (t - 1) * cov3 - var_tr) / t
        den = ms_tr + r * max(cov2 - cov3, 0.0)
        df_denom = _hillis_ddf(den, ms_tr, (t - 1) * (r - 1))
        if den > 0:
            f_stat = ms_t / den
            if math.isfinite(df_denom):
                p_value = float(stats.f.sf(f_stat, t - 1, df_denom))
            else:
                p_value = float(stats.chi2.sf(f_stat * (t - 1), t - 1))
        se_diff = math.sqrt(2 * den / r)
        for a in range(t):
            for b in range(a + 1, t):
                est = float(mean_t[a] - mean_t[b])
                t_stat = est / se_diff if se_diff > 0 else nan
                dist = stats.t(df_denom) if math.isfinite(df_denom) else stats.norm()
                differences.append(
                    Difference(
                        modalities[a],
                        modalities[b],
                        est,
                        se_diff,
                        df_denom,
                        _t_ci(est, se_diff, df_denom, alpha),
                        t_stat,
                        float(2 * dist.sf(abs(t_stat))) if se_diff > 0 else nan,
                    )
                )
    two = differences[0] if t == 2 else None
    theta = theta.copy()
    theta.flags.writeable = False
    cov = cov.copy()
    cov.flags.writeable = False
    return ORResult(
        readers=readers,
        modalities=modalities,
        n_positive=n_pos,
        n_negative=n_neg,
        covariance_method=method,
        alpha=alpha,
        auc_table=theta,
        covariance=cov,
        var_error=var_error,
        cov1=cov1,
        cov2=cov2,
        cov3=cov3,
        ms_t=ms_t,
        ms_r=ms_r,
        ms_tr=ms_tr,
        var_r=var_r,
        var_tr=var_tr,
        f_stat=f_stat,
        df_num=t - 1,
        df_denom=df_denom,
        p_value=p_value,
        differences=tuple(differences),
        single_modality=single,
        difference=two.estimate if two else None,
        difference_ci=two.ci if two else None,
        se=two.se if two else None,
    )


def obuchowski_rockette(records: Iterable[tuple], covariance: str = "jackknife", alpha: float = 0.05) -> ORResult:
    """Obuchowski–Rockette–Hillis MRMC analysis of empirical AUCs, random readers and random cases.

    records: iterable of (reader, modality, case, truth, rating) with truth 1 = positive, 0 = negative and a higher
    rating = more confident positive. The design must be fully crossed: every reader rates every case under every
    modality, exactly once; a case has one truth; at least 2 readers and 2 positive and 2 negative cases.
    Labels may be any sortable hashables; readers and modalities are reported in sorted order.
    covariance: "jackknife" (leave one case out, over all cases) or "delong" (structural components) for the
    covariance of the reader×modality AUCs over cases; the OR covariances are its averages.
    alpha: 1 − confidence level of every CI.

    With one modality only the single-modality estimate is meaningful (the F test fields are NaN).
    Raises ValueError for any design the method does not cover.
    """
    if covariance not in COVARIANCE_METHODS:
        raise ValueError(f"covariance must be one of {COVARIANCE_METHODS}, got {covariance!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    readers, modalities, _cases, truth, ratings = _crossed_ratings(records)
    v10, v01 = structural_components(ratings[..., ~truth], ratings[..., truth])
    theta = v10.mean(axis=-1)
    estimate = _jackknife_covariance if covariance == "jackknife" else _delong_covariance
    cov = estimate(theta, v10, v01)
    return _or_analysis(theta, cov, readers, modalities, alpha, covariance, int(truth.sum()), int((~truth).sum()))


class Verdict(StrEnum):
    """Outcome of comparing a "synthetic" AUC with chance (0.5)."""

    INDISTINGUISHABLE = "indistinguishable from real"
    DETECTED = "readers detect synthetic images"
    REVERSED = "synthetic images judged more real than real ones"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class ChanceEquivalence:
    verdict: Verdict
    auc: float
    ci: tuple[float, float]
    margin: float

    @property
    def text(self) -> str:
        lo, hi = self.ci
        return (
            f"{self.verdict.value}: AUC {self.auc:.3f} (CI {lo:.3f} to {hi:.3f}); equivalence margin "
            f"0.5 ± {self.margin:g}"
        )


def equivalence_to_chance(estimate: ModalityEstimate, margin: float = 0.05) -> ChanceEquivalence:
    """Is a model's "synthetic" AUC equivalent to chance? (visual Turing test, real = negative, synthetic = positive)

    estimate: a ModalityEstimate, e.g. ``obuchowski_rockette(...).single_modality[model]``.
    INDISTINGUISHABLE when the whole CI lies within [0.5 − margin, 0.5 + margin] (two one-sided tests: with the
    default 95 % CI each side is tested at 2.5 %; run the analysis with alpha=0.10 for the usual 5 % TOST);
    DETECTED when the CI lies above 0.5; REVERSED when it lies below 0.5; otherwise INCONCLUSIVE (too few readers
    or cases to tell). A non-significant difference from 0.5 alone is not evidence of realism: only the
    equivalence verdict is.
    """
    if not 0 < margin < 0.5:
        raise ValueError("margin must lie in (0, 0.5)")
    lo, hi = estimate.ci
    if 0.5 - margin <= lo and hi <= 0.5 + margin:
        verdict = Verdict.INDISTINGUISHABLE
    elif lo > 0.5:
        verdict = Verdict.DETECTED
    elif hi < 0.5:
        verdict = Verdict.REVERSED
    else:
        verdict = Verdict.INCONCLUSIVE
    return ChanceEquivalence(verdict, estimate.auc, (lo, hi), margin)
