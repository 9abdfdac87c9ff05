"""Statistics for blinded reader studies of generative medical-imaging models (numpy and scipy only; no Django).

mrmc: Obuchowski–Rockette–Hillis MRMC ROC analysis (jackknife or DeLong covariance) and equivalence to chance.
turing: visual Turing tests (real/synthetic calls): ratings, per-reader accuracy and AUC, per-model OR records,
Fleiss' kappa. agreement: Likert mean opinion scores (two-way bootstrap), ICC(2,1)/ICC(2,k), weighted kappa.
pairwise: Bradley–Terry strengths (Hunter's MM) with Fisher-information or bootstrap CIs.
marks: hallucination marks per image.
froc: lesion-level (FROC) figures of merit (wAFROC, AFROC, HrAuc) and their OR significance test, as RJafroc
computes them (``from readerstudy.stats import froc``; ``froc.figure_of_merit``, ``froc.significance``).
"""

from .agreement import icc, mean_opinion_score, weighted_kappa
from .marks import hallucination_marks
from .mrmc import auc, equivalence_to_chance, obuchowski_rockette
from .pairwise import bradley_terry, bradley_terry_bootstrap
from .turing import (
    calls_fleiss_kappa,
    fleiss_kappa,
    per_model_or,
    reader_accuracy,
    synthetic_rating,
    wilson_interval,
)

__all__ = [
    "auc",
    "bradley_terry",
    "bradley_terry_bootstrap",
    "calls_fleiss_kappa",
    "equivalence_to_chance",
    "fleiss_kappa",
    "hallucination_marks",
    "icc",
    "mean_opinion_score",
    "obuchowski_rockette",
    "per_model_or",
    "reader_accuracy",
    "synthetic_rating",
    "weighted_kappa",
    "wilson_interval",
]
