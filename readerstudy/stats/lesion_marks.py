"""Marks matched to truth regions, and lesion-level (FROC) scores of detectors (no Django).

**Matching (acceptance radius).** A mark at (row, col) on a case is a lesion localisation (LL) of the nearest
lesion of that case whose centre lies within ``radius`` px (Euclidean, ties to the lesion listed first); a mark
within no lesion's radius is a non-lesion localisation (NL). **Two marks on one lesion count once, at the higher
rating**: the lower ones are dropped (not turned into NLs), as RJafroc's data format keeps one rating per lesion.

The matched marks are the (reader, modality, case, lesion or None, rating) tuples of ``froc.figure_of_merit``.
For detectors, the "reader" is the detector (e.g. "error", "sd") and the "modality" the run.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from . import froc


def match_marks(marks: Iterable[tuple], lesions: Iterable[tuple], radius: float) -> list[tuple]:
    """marks: (reader, modality, case, row, col, rating); lesions: (case, lesion, row, col).
    → (reader, modality, case, lesion or None, rating) with one LL per (reader, modality, lesion)."""
    if not radius > 0:
        raise ValueError(f"the acceptance radius must be positive, not {radius!r}")
    by_case: dict = {}
    for case, lesion, row, col in lesions:
        by_case.setdefault(case, []).append((lesion, float(row), float(col)))
    best: dict = {}
    matched = []
    for reader, modality, case, row, col, rating in marks:
        nearest, nearest_distance = None, math.inf
        for lesion, lr, lc in by_case.get(case, ()):
            distance = math.hypot(float(row) - lr, float(col) - lc)
            if distance <= radius and distance < nearest_distance:
                nearest, nearest_distance = lesion, distance
        if nearest is None:
            matched.append((reader, modality, case, None, float(rating)))
            continue
        key = (reader, modality, case, nearest)
        if key not in best or float(rating) > best[key]:
            best[key] = float(rating)
    matched.extend((*key, rating) for key, rating in best.items())
    return matched


def match_marks_overlap(marks: Iterable[tuple], lesions: Iterable[tuple]) -> list[tuple]:
    """Overlap acceptance: a mark at (row, col) (array index coordinates) is a lesion localisation of the lesion
    whose truth mask holds the pixel it falls in (index ``floor(row + ½), floor(col + ½)``), the first listed
    when masks overlap; else a non-lesion localisation. marks: (reader, modality, case, row, col, rating);
    lesions: (case, lesion, mask (H, W) bool). Two marks on one lesion count once, at the higher rating."""
    by_case: dict = {}
    for case, lesion, mask in lesions:
        by_case.setdefault(case, []).append((lesion, mask))
    best: dict = {}
    matched = []
    for reader, modality, case, row, col, rating in marks:
        i, j = math.floor(float(row) + 0.5), math.floor(float(col) + 0.5)
        hit = None
        for lesion, mask in by_case.get(case, ()):
            if 0 <= i < mask.shape[0] and 0 <= j < mask.shape[1] and mask[i, j]:
                hit = lesion
                break
        if hit is None:
            matched.append((reader, modality, case, None, float(rating)))
            continue
        key = (reader, modality, case, hit)
        if key not in best or float(rating) > best[key]:
            best[key] = float(rating)
    matched.extend((*key, rating) for key, rating in best.items())
    return matched


def detector_scores(marks, lesions, cases, radius: float, foms=froc.FOMS) -> dict:
    """{(modality, reader): {fom: value}} for detector marks (see ``match_marks``) against ``lesions``
    (case, lesion, row, col) on ``cases``; equal lesion weights. A figure of merit that the truth cannot give
    (no normal or no abnormal case) is None, with the reason under "why"."""
    marks = list(marks)
    lesions = list(lesions)
    matched = match_marks(marks, lesions, radius)
    pairs = sorted({(m[1], m[0]) for m in marks}, key=repr)
    truth = [(case, lesion, None) for case, lesion, _, _ in lesions]
    out = {pair: {} for pair in pairs}
    for fom in foms:
        try:
            values = froc.figure_of_merit(
                matched,
                truth,
                cases,
                fom,
                readers=sorted({p[1] for p in pairs}, key=repr),
                modalities=sorted({p[0] for p in pairs}, key=repr),
            )
        except ValueError as exc:
            for pair in pairs:
                out[pair][fom] = None
                out[pair]["why"] = str(exc)
            continue
        for pair in pairs:
            out[pair][fom] = values[pair]
    return out
