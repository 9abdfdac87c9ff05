"""Lesion-level (FROC) scores of a probe run's automated detectors (reads; the pure part is
`readerstudy.stats.lesion_marks`).

The truth a detector should find: the probe regions where the run hallucinated, i.e. where at least half of a
probe case's samples were scored ``invented`` or ``omitted`` (`evaluation.probes.scoring`); each is a lesion at
its truth centre. Every probe case of the set is a case (one without such a region is normal). A detector's mark
within ``radius`` px of a lesion's centre is its lesion localisation (default: the probe's largest semi-axis +
the scoring ring's outer edge, at most ``DEFAULT_RADIUS_PX``). Scored here, in the reader-study app, because
evaluation does not import it (layering).
"""

from __future__ import annotations

from evaluation.models import ProbeCase, ProbeScore
from evaluation.probes import scoring

from .stats import lesion_marks

DEFAULT_RADIUS_PX = 8.0


def hallucinated_regions(score: ProbeScore) -> dict[str, str]:
    """Probe case id → "invented" | "omitted" where at least half its samples were scored so."""
    return scoring.hallucinated_cases(score.outcomes)


def detector_scores(score: ProbeScore, *, radius: float = DEFAULT_RADIUS_PX) -> dict:
    """{detector: {"wAFROC", "AFROC", "HrAuc" (None with "why" when the truth cannot give them), "lesions",
    "cases"}} for the detectors that left marks on this probe run."""
    probes = {p.case.case_id: p for p in ProbeCase.objects.filter(probe_set=score.probe_set_id).select_related("case")}
    regions = hallucinated_regions(score)
    lesions = [(case, "region", *probes[case].truth["centre"]) for case in sorted(regions)]
    cases = sorted(probes)
    marks = [
        (detector, score.run_id, case, row, col, rating)
        for detector, rows in sorted(score.detector_marks.items())
        for case, row, col, rating in rows
    ]
    results = lesion_marks.detector_scores(marks, lesions, cases, radius)
    return {
        detector: {**values, "lesions": len(lesions), "cases": len(cases)}
        for (_, detector), values in sorted(results.items(), key=repr)
    }
