"""Visual Turing tests: readers call each image "real" or "synthetic" with a confidence of 1–5.

Answers are records (reader, model, case, call, confidence): ``model`` is None for a real image, whose ``case`` is
that real image's identifier; for a synthetic image ``model`` is the generative model and ``case`` the source case
it was generated from (so the images of all models from one source case share a ``case``).

Each answer maps to a 10-point "synthetic" rating (``synthetic_rating``), so a reader's ROC curve for telling
synthetic from real images (real = negative, synthetic = positive) and its AUC follow, and several models can be
compared with the Obuchowski–Rockette MRMC analysis of readerstudy.stats.mrmc (``per_model_or``). AUC 0.5 means
the readers cannot tell a model's images from real ones; ``mrmc.equivalence_to_chance`` turns that into a verdict.

References: Wilson EB (1927), J Am Stat Assoc 22:209-212 (score interval); Fleiss JL (1971), "Measuring nominal
scale agreement among many raters", Psychol Bull 76:378-382. Fleiss' kappa and the Wilson interval are checked
against statsmodels in tests/test_readerstudy_stats.py; only numpy and scipy are used here.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from .mrmc import _sorted_labels, auc

__all__ = [
    "CALLS",
    "PerModelRecords",
    "ReaderAccuracy",
    "call_table",
    "calls_fleiss_kappa",
    "fleiss_kappa",
    "per_model_or",
    "reader_accuracy",
    "synthetic_rating",
    "wilson_interval",
]

CALLS = ("real", "synthetic")


def synthetic_rating(call, confidence):
    """Map a call and its confidence to a 1–10 "synthetic" rating (higher = more sure the image is synthetic).

    call "synthetic" with confidence c (1–5) → 5 + c (6 … 10); call "real" with confidence c → 6 − c (5 … 1).
    So 1 = surely real, 5 = guessing real, 6 = guessing synthetic, 10 = surely synthetic: one ordinal scale whose
    thresholds trace the reader's ROC curve. Scalars give an int, array-likes an int array.
    """
    calls = np.asarray(call)
    conf = np.asarray(confidence)
    if not np.all(np.isin(calls, CALLS)):
        raise ValueError(f"call must be one of {CALLS}")
    if not (np.issubdtype(conf.dtype, np.integer) or np.all(np.mod(conf, 1) == 0)) or np.any((conf < 1) | (conf > 5)):
        raise ValueError("confidence must be an integer from 1 to 5")
    conf = conf.astype(int)
    rating = np.where(calls == "synthetic", 5 + conf, 6 - conf)
    return int(rating) if rating.ndim == 0 else rating


def wilson_interval(successes: int, n: int, conf_level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion successes / n (stays inside [0, 1], good at small n)."""
    if n <= 0 or not 0 <= successes <= n:
        raise ValueError("need 0 ≤ successes ≤ n and n > 0")
    z = stats.norm.ppf(1 - (1 - conf_level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class ReaderAccuracy:
    """One reader's Turing-test performance.

    accuracy: fraction of correct calls, with its Wilson CI. sensitivity: fraction of synthetic images called
    synthetic; specificity: fraction of real images called real. auc: AUC of the 10-point synthetic rating (real
    images negative, synthetic positive); NaN if the reader saw only one kind.
    """

    reader: Hashable
    n: int
    n_correct: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    sensitivity: float
    specificity: float
    auc: float


def _answers(records):
    rows = [tuple(rec) for rec in records]
    if not rows:
        raise ValueError("no answers")
    if any(len(row) != 5 for row in rows):
        raise ValueError("each answer must be (reader, model, case, call, confidence)")
    return rows


def reader_accuracy(answers: Iterable[tuple], conf_level: float = 0.95) -> dict:
    """Per-reader accuracy (Wilson CI), sensitivity, specificity and AUC of the synthetic rating.

    answers: (reader, model, case, call, confidence) records, model None for real images (see the module doc).
    Returns reader → ReaderAccuracy in sorted reader order.
    """
    rows = _answers(answers)
    by_reader: dict = {}
    for reader, model, _case, call, confidence in rows:
        by_reader.setdefault(reader, []).append((model is not None, call, confidence))
    out = {}
    for reader in _sorted_labels(by_reader):
        synthetic, calls, conf = (np.asarray(col) for col in zip(*by_reader[reader], strict=True))
        synthetic = synthetic.astype(bool)
        rating = np.atleast_1d(synthetic_rating(calls, conf))
        called_synthetic = rating >= 6
        correct = int((called_synthetic == synthetic).sum())
        n = synthetic.size
        both = synthetic.any() and (~synthetic).any()
        out[reader] = ReaderAccuracy(
            reader=reader,
            n=n,
            n_correct=correct,
            accuracy=correct / n,
            accuracy_ci=wilson_interval(correct, n, conf_level),
            sensitivity=float(called_synthetic[synthetic].mean()) if synthetic.any() else math.nan,
            specificity=float((~called_synthetic[~synthetic]).mean()) if (~synthetic).any() else math.nan,
            auc=auc(rating[~synthetic], rating[synthetic]) if both else math.nan,
        )
    return out


@dataclass(frozen=True)
class PerModelRecords:
    """OR records for comparing models' "synthetic" AUCs, and what was left out to keep the design crossed.

    records: (reader, model, case, truth, rating) tuples for ``mrmc.obuchowski_rockette``; cases are
    ("real", image) negatives and ("synthetic", source_case) positives. source_cases: the source cases used (those
    every model has an image for); dropped_source_cases: those left out because some model lacks an image.
    """

    records: tuple
    models: tuple
    real_images: tuple
    source_cases: tuple
    dropped_source_cases: tuple


def per_model_or(answers: Iterable[tuple]) -> PerModelRecords:
    """Build Obuchowski–Rockette records that compare generative models in a visual Turing test.

    answers: (reader, model, case, call, confidence), model None for real images (see the module doc).
    Modality = model. Negatives = the pool of real images, shared by every modality: each reader's rating of a real
    image enters every model's ROC analysis, so the comparison between models is paired on them. Positives = a
    model's synthetic images, keyed by the source case they were generated from.

    A jackknife "case" is therefore either one real image (a negative) or one source case (a positive, whose images
    from all models are left out together): the images that models generated from the same source share its
    anatomy and are correlated, and resampling the source case captures that. The design must be fully crossed, so
    only source cases for which every model has an image are kept (the rest are listed in dropped_source_cases).
    Every reader must have rated every kept image; otherwise obuchowski_rockette reports the missing ratings.

    Usage: ``obuchowski_rockette(per_model_or(answers).records)``.
    """
    rows = _answers(answers)
    real: dict = {}
    synthetic: dict = {}
    for reader, model, case, call, confidence in rows:
        rating = synthetic_rating(call, confidence)
        key, store = ((reader, case), real) if model is None else ((reader, model, case), synthetic)
        if key in store:
            raise ValueError(f"reader {reader!r} answered image ({model!r}, {case!r}) more than once")
        store[key] = rating
    if not real or not synthetic:
        raise ValueError("a Turing-test comparison needs answers on both real and synthetic images")
    models = _sorted_labels(m for _, m, _ in synthetic)
    cases_of = {m: set() for m in models}
    for _, m, case in synthetic:
        cases_of[m].add(case)
    common = set.intersection(*cases_of.values())
    dropped = set.union(*cases_of.values()) - common
    if not common:
        raise ValueError("no source case has an image from every model")
    negatives = [(reader, m, ("real", case), 0, rating) for (reader, case), rating in real.items() for m in models]
    positives = [
        (reader, m, ("synthetic", case), 1, rating) for (reader, m, case), rating in synthetic.items() if case in common
    ]
    return PerModelRecords(
        records=tuple(negatives + positives),
        models=models,
        real_images=_sorted_labels(c for _, c in real),
        source_cases=_sorted_labels(common),
        dropped_source_cases=_sorted_labels(dropped),
    )


def fleiss_kappa(table) -> float:
    """Fleiss' kappa for many raters: agreement beyond chance on nominal categories.

    table: (n_items, n_categories) counts; row i holds how many raters put item i in each category, and every row
    sums to the same number of raters m ≥ 2. κ = (P̄ − P̄_e) / (1 − P̄_e), P̄ the mean per-item agreement
    (Σ_j n_ij² − m) / (m(m − 1)), P̄_e = Σ_j p_j² with p_j the overall category shares.
    """
    x = np.asarray(table, dtype=float)
    if x.ndim != 2 or x.shape[0] < 1:
        raise ValueError("table must be (items, categories)")
    m = x.sum(axis=1)
    if np.any(m != m[0]) or m[0] < 2:
        raise ValueError("every item must be rated by the same number (≥ 2) of raters")
    m = m[0]
    p_item = ((x * x).sum(axis=1) - m) / (m * (m - 1))
    p_cat = x.sum(axis=0) / x.sum()
    p_e = (p_cat**2).sum()
    if p_e == 1:
        raise ValueError("kappa is undefined when every rating falls in one category")
    return float((p_item.mean() - p_e) / (1 - p_e))


def call_table(answers: Iterable[tuple]) -> tuple[tuple, np.ndarray]:
    """(images, (n_images, 2) counts of "real" and "synthetic" calls) from Turing-test answers.

    An image is (model, case). Raises ValueError unless every image was called by the same number of readers.
    """
    counts: dict = {}
    for _reader, model, case, call, _conf in _answers(answers):
        if call not in CALLS:
            raise ValueError(f"call must be one of {CALLS}")
        counts.setdefault((model, case), [0, 0])[CALLS.index(call)] += 1
    images = tuple(sorted(counts, key=repr))
    table = np.array([counts[i] for i in images], dtype=float)
    if np.unique(table.sum(axis=1)).size != 1:
        raise ValueError("Fleiss' kappa needs every image called by the same number of readers")
    return images, table


def calls_fleiss_kappa(answers: Iterable[tuple]) -> float:
    """Fleiss' kappa of the readers' real/synthetic calls (agreement between readers, not accuracy)."""
    return fleiss_kappa(call_table(answers)[1])
