"""Lesion-level (free-response, FROC) reader-study statistics: figures of merit and Obuchowski–Rockette testing.

The figures of merit and their conventions are RJafroc's (Chakraborty; R package RJafroc 2.1, ``UtilFigureOfMerit``
and ``St(dataset, FOM, method = "OR", analysisOption = "RRRC")``); they are checked against RJafroc's outputs for
its FROC datasets in tests/readerstudy/test_froc.py.

Terms. A *mark* is a reader's click with a confidence *rating* (higher = more confident) on a *case* (an image)
under a *modality* (what is compared, e.g. a generative model). A mark that the caller matched to a true *lesion*
is a lesion localisation (LL); one that matched none is a non-lesion localisation (NL). A *normal* case has no
lesion; an *abnormal* case has one or more, each with a *weight* (clinical importance; per case the weights sum
to 1). Matching marks to lesions (acceptance radius, overlap) is the caller's job; this module receives its
outcome. Every reader is assumed to have read every case under every modality (FROC data cannot show a missed
read: no mark is a valid answer).

Conventions (RJafroc's):
- Unmarked is −∞: a lesion nobody marked has rating −∞, a normal case without a NL mark has rating −∞.
- Ties count ½, and −∞ against −∞ is a tie. So a reader who marks nothing at all scores AFROC = wAFROC = HrAuc
  = ½ (the AFROC runs straight from (0, 0) to (1, 1)); a reader who marks no lesion but leaves a NL on every
  normal case scores 0.
- Two marks on one lesion count once, at the higher rating (RJafroc's data format has one rating per lesion);
  this module applies the rule itself, in ``_collect``. Several NL marks on one case likewise leave only the
  highest, the only one these figures of merit use.

Figures of merit (K1 normal cases, K2 abnormal cases, L lesions in all; ψ(x, y) = 1 if y > x, ½ if y = x, else 0):
- "wAFROC": Σ_normal Σ_abnormal Σ_lesions w_l ψ(FP_n, LL_l) / (K1·K2), where FP_n is the highest NL rating on
  normal case n. NL marks on abnormal cases play no part.
- "AFROC": Σ_normal Σ_lesions ψ(FP_n, LL_l) / (K1·L): every lesion counts once, unweighted.
- "HrAuc": the ROC AUC (ties ½) of the highest rating per case: on a normal case its highest NL, on an abnormal
  case its highest mark of any kind (LL or NL), −∞ when unmarked.

Significance (``significance``): RJafroc's default OR analysis. The FOM of every modality × reader is recomputed
leaving out each case in turn, all K1 + K2 of them (dropping a case changes K1 or K2, and for AFROC the lesion
count); the covariance of the FOMs over cases is (K − 1)/K · Σ of centred products of those leave-one-out values;
the Obuchowski–Rockette–Hillis test on that covariance is the one ``mrmc.obuchowski_rockette`` runs for ROC AUCs.

Lesion weights: pass ``None`` as the weight of every lesion of a case to mean equal weights (1/number of lesions),
RJafroc's default; otherwise a case's weights must be positive and sum to 1.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np

from .mrmc import ORResult, _or_analysis, _sorted_labels, structural_components

__all__ = ["FOMS", "Jackknife", "figure_of_merit", "jackknife", "significance", "significance_by_modality"]

FOMS = ("wAFROC", "AFROC", "HrAuc")
_WEIGHT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class _Froc:
    """Marks gathered per modality × reader; −∞ where unmarked.

    fp: (t, r, K1) highest NL rating on each normal case. tp: (t, r, K2) highest rating of any mark on each
    abnormal case. ll: (t, r, L) rating of each lesion (highest of its marks). lesion_case: (L,) index of each
    lesion's abnormal case; weight: (L,) its weight.
    """

    readers: tuple
    modalities: tuple
    normal: tuple
    abnormal: tuple
    fp: np.ndarray
    tp: np.ndarray
    ll: np.ndarray
    lesion_case: np.ndarray
    weight: np.ndarray


@dataclass(frozen=True)
class Jackknife:
    """Leave-one-case-out figures of merit.

    values: (t, r, K) with rows in ``modalities`` order, columns in ``readers`` order and the last axis in ``cases``
    order (normal cases first, then abnormal, each sorted). full: (t, r) figures of merit on all cases.
    """

    fom: str
    readers: tuple
    modalities: tuple
    cases: tuple
    full: np.ndarray
    values: np.ndarray


def _check_fom(fom: str) -> None:
    if fom not in FOMS:
        raise ValueError(f"fom must be one of {FOMS}, got {fom!r}")


def _truth(lesions, cases):
    """→ (normal, abnormal, lesion keys in order, weights); validates the truth."""
    case_list = list(cases)
    case_set = set(case_list)
    if len(case_set) != len(case_list):
        raise ValueError("cases lists a case more than once")
    rows = [tuple(row) for row in lesions]
    if any(len(row) != 3 for row in rows):
        raise ValueError("each lesion must be (case, lesion, weight)")
    per_case: dict = {}
    for case, lesion, weight in rows:
        if case not in case_set:
            raise ValueError(f"lesion {lesion!r} is on case {case!r}, which is not in cases")
        if lesion is None:
            raise ValueError(f"a lesion of case {case!r} has no id (None is reserved for non-lesion marks)")
        if lesion in per_case.setdefault(case, {}):
            raise ValueError(f"case {case!r} lists lesion {lesion!r} more than once")
        per_case[case][lesion] = weight
    abnormal = _sorted_labels(per_case)
    normal = _sorted_labels(case_set - set(per_case))
    if not normal or not abnormal:
        raise ValueError(
            f"these figures of merit need normal and abnormal cases (got {len(normal)} normal, "
            f"{len(abnormal)} abnormal)"
        )
    keys, weights = [], []
    for case in abnormal:
        given = per_case[case]
        labels = _sorted_labels(given)
        values = [given[lesion] for lesion in labels]
        if all(v is None for v in values):
            values = [1.0 / len(labels)] * len(labels)
        elif any(v is None for v in values):
            raise ValueError(f"case {case!r} has weights for some lesions and None for others")
        else:
            try:
                values = [float(v) for v in values]
            except (TypeError, ValueError):
                raise ValueError(f"case {case!r} has a lesion weight that is not a number") from None
            if not all(math.isfinite(v) and v > 0 for v in values):
                raise ValueError(f"lesion weights must be positive numbers; case {case!r} has {values}")
            if abs(sum(values) - 1.0) > _WEIGHT_TOLERANCE:
                raise ValueError(f"the lesion weights of case {case!r} sum to {sum(values):g}, not 1")
        keys.extend((case, lesion) for lesion in labels)
        weights.extend(values)
    return normal, abnormal, keys, np.array(weights)


def _collect(marks, lesions, cases, readers=None, modalities=None) -> _Froc:
    normal, abnormal, lesion_keys, weight = _truth(lesions, cases)
    rows = [tuple(row) for row in marks]
    if any(len(row) != 5 for row in rows):
        raise ValueError("each mark must be (reader, modality, case, lesion or None, rating)")
    readers = _sorted_labels(r[0] for r in rows) if readers is None else tuple(readers)
    modalities = _sorted_labels(r[1] for r in rows) if modalities is None else tuple(modalities)
    if not readers or not modalities:
        raise ValueError("no readers or no modalities: pass them explicitly when nobody marked anything")
    r_index = {v: i for i, v in enumerate(readers)}
    m_index = {v: i for i, v in enumerate(modalities)}
    if len(r_index) != len(readers) or len(m_index) != len(modalities):
        raise ValueError("readers and modalities must not repeat")
    n_index = {v: i for i, v in enumerate(normal)}
    a_index = {v: i for i, v in enumerate(abnormal)}
    l_index = {key: i for i, key in enumerate(lesion_keys)}
    t, r = len(modalities), len(readers)
    fp = np.full((t, r, len(normal)), -np.inf)
    tp = np.full((t, r, len(abnormal)), -np.inf)
    ll = np.full((t, r, len(lesion_keys)), -np.inf)
    for reader, modality, case, lesion, rating in rows:
        if reader not in r_index:
            raise ValueError(f"mark by reader {reader!r}, who is not among the readers {readers}")
        if modality not in m_index:
            raise ValueError(f"mark under modality {modality!r}, which is not among the modalities {modalities}")
        try:
            value = float(rating)
        except (TypeError, ValueError):
            raise ValueError(f"rating {rating!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"ratings must be finite numbers, got {rating!r}")
        i, j = m_index[modality], r_index[reader]
        if lesion is not None:
            if (case, lesion) not in l_index:
                raise ValueError(f"a mark localises lesion {lesion!r} of case {case!r}, which the truth does not have")
            k = l_index[(case, lesion)]
            ll[i, j, k] = max(ll[i, j, k], value)  # two marks on one lesion: the higher rating counts, once
            a = a_index[case]
            tp[i, j, a] = max(tp[i, j, a], value)
        elif case in n_index:
            k = n_index[case]
            fp[i, j, k] = max(fp[i, j, k], value)
        elif case in a_index:
            a = a_index[case]
            tp[i, j, a] = max(tp[i, j, a], value)
        else:
            raise ValueError(f"a mark is on case {case!r}, which is not in cases")
    lesion_case = np.array([a_index[case] for case, _ in lesion_keys])
    return _Froc(readers, modalities, normal, abnormal, fp, tp, ll, lesion_case, weight)


def _placements(fp, ll, coef):
    """ψ summed both ways for one modality × reader, by sorting (O((K1 + L) log), no K1 × L matrix).

    fp: (K1,) normal-case ratings, ll: (L,) lesion ratings, coef: (L,) lesion coefficients.
    Returns v (L,) = mean over normal cases of ψ(FP_n, LL_l), and row (K1,) = Σ_l coef_l ψ(FP_n, LL_l).
    """
    fs = np.sort(fp)
    below = np.searchsorted(fs, ll, side="left")  # normal cases rated below each lesion
    tied = np.searchsorted(fs, ll, side="right") - below  # −∞ = −∞ counts as a tie
    v = (below + 0.5 * tied) / fp.size
    order = np.argsort(ll, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(coef[order])])
    lo = np.searchsorted(ll[order], fp, side="left")
    hi = np.searchsorted(ll[order], fp, side="right")
    row = (cum[-1] - cum[hi]) + 0.5 * (cum[hi] - cum[lo])
    return v, row


def _full_and_loo(data: _Froc, fom: str):
    """→ (θ (t, r), leave-one-out θ (t, r, K1 + K2), normal cases first)."""
    k1, k2 = len(data.normal), len(data.abnormal)
    if fom == "HrAuc":
        v10, v01 = structural_components(data.fp, data.tp)
        theta = v10.mean(axis=-1)
        loo_neg = (k1 * theta[..., None] - v01) / (k1 - 1) if k1 > 1 else np.full(v01.shape, np.nan)
        loo_pos = (k2 * theta[..., None] - v10) / (k2 - 1) if k2 > 1 else np.full(v10.shape, np.nan)
        return theta, np.concatenate([loo_neg, loo_pos], axis=-1)
    n_les = np.bincount(data.lesion_case, minlength=k2).astype(float)
    if fom == "wAFROC":  # θ = Σ_n Σ_l w_l ψ / (K1 K2); dropping an abnormal case leaves K2 − 1
        coef, total, denom_loo = data.weight, float(k2), np.full(k2, k2 - 1.0)
    else:  # AFROC: θ = Σ_n Σ_l ψ / (K1 L); dropping an abnormal case removes its lesions from L
        coef, total = np.ones(data.ll.shape[-1]), n_les.sum()
        denom_loo = total - n_les
    t, r = data.ll.shape[:2]
    theta = np.empty((t, r))
    loo = np.empty((t, r, k1 + k2))
    for i in range(t):
        for j in range(r):
            v, row = _placements(data.fp[i, j], data.ll[i, j], coef)
            by_normal = row / total  # normal case n's term; θ is their mean
            theta[i, j] = by_normal.mean()
            loo[i, j, :k1] = (k1 * theta[i, j] - by_normal) / (k1 - 1) if k1 > 1 else np.nan
            by_case = np.bincount(data.lesion_case, weights=v * coef, minlength=k2)  # a case's share of θ·total
            with np.errstate(invalid="ignore", divide="ignore"):
                loo[i, j, k1:] = (total * theta[i, j] - by_case) / denom_loo
    return theta, loo


def figure_of_merit(
    marks: Iterable[tuple],
    lesions: Iterable[tuple],
    cases: Iterable[Hashable],
    fom: str = "wAFROC",
    *,
    readers: Iterable[Hashable] | None = None,
    modalities: Iterable[Hashable] | None = None,
) -> dict:
    """Figure of merit of every modality × reader: {(modality, reader): value in [0, 1]}.

    marks: (reader, modality, case, lesion or None, rating) tuples; lesion None = a non-lesion localisation.
    lesions: (case, lesion, weight) tuples, every lesion of the truth; weight None on all of a case's lesions =
    equal weights, else positive weights summing to 1 per case. cases: every case id (a case without a lesion is
    normal); at least one normal and one abnormal case. fom: "wAFROC", "AFROC" or "HrAuc" (module docstring).
    readers, modalities: the full lists when someone may have marked nothing (default: those seen in marks).
    Raises ValueError on inconsistent input (a mark on an unknown case or lesion, an LL mark on a normal case...).
    """
    _check_fom(fom)
    data = _collect(marks, lesions, cases, readers, modalities)
    theta, _ = _full_and_loo(data, fom)
    return {(m, rd): float(theta[i, j]) for i, m in enumerate(data.modalities) for j, rd in enumerate(data.readers)}


def jackknife(
    marks: Iterable[tuple],
    lesions: Iterable[tuple],
    cases: Iterable[Hashable],
    fom: str = "wAFROC",
    *,
    readers: Iterable[Hashable] | None = None,
    modalities: Iterable[Hashable] | None = None,
) -> Jackknife:
    """Leave-one-case-out figures of merit (RJafroc's ``UtilPseudoValues(...)$jkFomValues``); arguments as for
    ``figure_of_merit``. Pseudovalues, if wanted, are K·full − (K − 1)·values."""
    _check_fom(fom)
    data = _collect(marks, lesions, cases, readers, modalities)
    theta, loo = _full_and_loo(data, fom)
    return Jackknife(fom, data.readers, data.modalities, data.normal + data.abnormal, theta, loo)


def significance(
    marks: Iterable[tuple],
    lesions: Iterable[tuple],
    cases: Iterable[Hashable],
    fom: str = "wAFROC",
    *,
    alpha: float = 0.05,
    readers: Iterable[Hashable] | None = None,
    modalities: Iterable[Hashable] | None = None,
) -> ORResult:
    """Obuchowski–Rockette–Hillis comparison of modalities on a FROC figure of merit, random readers and cases.

    Arguments as for ``figure_of_merit``; at least 2 readers and 2 normal and 2 abnormal cases. Returns the
    ``mrmc.ORResult`` that ``obuchowski_rockette`` returns for ROC AUCs (its ``auc_table`` holds the figures of
    merit; n_positive / n_negative count abnormal / normal cases): the F test on (t − 1, ddf_H), its p value,
    every pairwise difference with its CI and t test, and per modality the reader-averaged FOM with its CI. The
    same numbers as RJafroc's ``St(dataset, FOM, method = "OR", analysisOption = "RRRC")`` (jackknife
    covariance): FTests, ciDiffTrt and ciAvgRdrEachTrt.
    """
    _check_fom(fom)
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    data = _collect(marks, lesions, cases, readers, modalities)
    if len(data.readers) < 2:
        raise ValueError(f"the OR random-reader analysis needs at least 2 readers, got {len(data.readers)}")
    if len(data.normal) < 2 or len(data.abnormal) < 2:
        raise ValueError(
            f"the jackknife needs at least 2 normal and 2 abnormal cases (got {len(data.normal)} normal, "
            f"{len(data.abnormal)} abnormal)"
        )
    theta, loo = _full_and_loo(data, fom)
    t, r, k = loo.shape
    flat = loo.reshape(t * r, k)
    centred = flat - flat.mean(axis=1, keepdims=True)
    cov = (k - 1) / k * centred @ centred.T
    return _or_analysis(
        theta, cov, data.readers, data.modalities, alpha, "jackknife", len(data.abnormal), len(data.normal)
    )


def significance_by_modality(
    marks: Iterable[tuple],
    truths: dict,
    cases: Iterable[Hashable],
    fom: str = "wAFROC",
    *,
    alpha: float = 0.05,
    readers: Iterable[Hashable] | None = None,
) -> ORResult:
    """``significance`` when each modality has a truth of its own (e.g. each generative model hallucinated at
    other probes): truths maps modality → its lesions (case, lesion, weight). The cases are shared (a case is
    read under every modality), and the jackknife leaves each case out of every modality at once, so the OR
    covariances between modalities are those of ``significance``; with the same truth for every modality the
    result is ``significance``'s. Each modality needs at least 2 normal and 2 abnormal cases of its truth.
    ``n_positive`` / ``n_negative`` of the result are the smallest counts over the modalities."""
    _check_fom(fom)
    if not 0 < alpha < 1:
        raise ValueError("alpha must lie in (0, 1)")
    rows = [tuple(row) for row in marks]
    modalities = _sorted_labels(truths)
    readers = _sorted_labels(r[0] for r in rows) if readers is None else tuple(readers)
    if len(readers) < 2:
        raise ValueError(f"the OR random-reader analysis needs at least 2 readers, got {len(readers)}")
    case_list = list(cases)
    unknown = {r[1] for r in rows} - set(modalities)
    if unknown:
        raise ValueError(f"marks under modalities without a truth: {sorted(map(repr, unknown))}")
    order = _sorted_labels(case_list)
    thetas, loos, n_pos, n_neg = [], [], [], []
    for modality in modalities:
        data = _collect([r for r in rows if r[1] == modality], truths[modality], case_list, readers, [modality])
        if len(data.normal) < 2 or len(data.abnormal) < 2:
            raise ValueError(
                f"the jackknife needs at least 2 normal and 2 abnormal cases under each modality ({modality!r} "
                f"has {len(data.normal)} normal, {len(data.abnormal)} abnormal)"
            )
        theta, loo = _full_and_loo(data, fom)
        position = {case: i for i, case in enumerate(data.normal + data.abnormal)}
        thetas.append(theta[0])
        loos.append(loo[0][:, [position[case] for case in order]])
        n_pos.append(len(data.abnormal))
        n_neg.append(len(data.normal))
    theta, loo = np.array(thetas), np.array(loos)
    t, r, k = loo.shape
    flat = loo.reshape(t * r, k)
    centred = flat - flat.mean(axis=1, keepdims=True)
    cov = (k - 1) / k * centred @ centred.T
    return _or_analysis(theta, cov, readers, modalities, alpha, "jackknife", min(n_pos), min(n_neg))
