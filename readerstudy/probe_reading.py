"""Probe-mode hallucination studies (reads): the truth per probe run, readers' marks matched to it, the FROC
analysis, and the reader marks of a probe run for other checks.

**Truth.** For each (probe run, probe case) the lesions are the probe regions where the run hallucinated
(`probe_detectors.hallucinated_regions`: at least half its samples invented or omitted a structure), at the
probe's truth centre (row, col). Every probe case shown is a case; one where the run did not hallucinate is
normal. So each run (modality) has a truth of its own over the same cases.

**Coordinates.** The viewer's marks are in pixel-corner coordinates (x = column, y = row, 0 … columns from the
image's top-left corner: `frontend/marks.js`), so a pixel's centre is at index + ½. Marks are turned into array
index coordinates (row, col) = (y − ½, x − ½) before matching; a box counts at its centre, except that under
overlap acceptance a box holding a pixel (centre) of the truth mask localises that lesion.

**Matching** (`stats.lesion_marks`): radius acceptance, a mark within the study's `acceptance_radius_px` of a
lesion's centre localises it; overlap acceptance, a mark whose pixel lies in the lesion's truth mask does. Other
marks are non-lesion localisations; two marks on one lesion count once, at the higher rating.

**Analysis.** The readers who read every regular item: wAFROC per reader and run (`stats.froc.figure_of_merit`,
each run against its own truth), FROC curves per run (readers pooled), and the Obuchowski–Rockette comparison of
the runs on wAFROC (`stats.froc.significance_by_modality`, which equals `significance` when truths coincide).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from django.core.cache import cache

from core import policy
from evaluation.models import ProbeCase, ProbeScore
from evaluation.probes import scoring, uncertainty

from . import selectors
from .models import Acceptance, ImageSource, ItemKind, ReaderStudy, StudyImage, StudyStatus
from .probe_detectors import hallucinated_regions
from .stats import froc, lesion_marks

LESION = "region"  # one probe region per probe case
FOM = "wAFROC"


def mark_position(mark: dict) -> tuple[float, float]:
    """A viewer mark → (row, col) in array index coordinates (pixel centres at integers)."""
    points = mark["points"]
    x = sum(p[0] for p in points) / len(points)
    y = sum(p[1] for p in points) / len(points)
    return y - 0.5, x - 0.5


def study_truth(study) -> dict:
    """{"cases": probe case ids shown, "runs": {probe run pk: {"lesions": [(case, LESION, row, col)],
    "kinds": {case: "invented" | "omitted"}}}, "masks": {case: (H, W) bool} (overlap acceptance only)}."""
    images = StudyImage.objects.filter(study=study, source=ImageSource.SYNTHETIC, run__isnull=False)
    run_ids = sorted(set(images.values_list("run_id", flat=True)))
    case_pks = set(images.values_list("case_id", flat=True))
    probes = {p.case.case_id: p for p in ProbeCase.objects.filter(case__in=case_pks).select_related("case")}
    scores = {s.run_id: s for s in ProbeScore.objects.filter(run__in=run_ids)}
    runs = {}
    for run_id in run_ids:
        regions = hallucinated_regions(scores[run_id]) if run_id in scores else {}
        regions = {case: kind for case, kind in regions.items() if case in probes}
        runs[run_id] = {
            "lesions": [(case, LESION, *probes[case].truth["centre"]) for case in sorted(regions)],
            "kinds": regions,
            "scored": run_id in scores,
        }
    masks = {}
    if study.acceptance == Acceptance.OVERLAP:
        wanted = {case for entry in runs.values() for case in entry["kinds"]}
        masks = {case: probes[case].truth_mask_array() for case in sorted(wanted)}
    return {"cases": sorted(probes), "runs": runs, "masks": masks}


def box_hit(mark: dict, mask) -> tuple[int, int] | None:
    """Overlap acceptance of a box: the first truth-mask pixel (row, col) whose centre lies inside the box."""
    (x0, y0), (x1, y1) = mark["points"]
    rows = np.arange(mask.shape[0])
    cols = np.arange(mask.shape[1])
    inside_rows = rows[(rows + 0.5 >= min(y0, y1)) & (rows + 0.5 <= max(y0, y1))]
    inside_cols = cols[(cols + 0.5 >= min(x0, x1)) & (cols + 0.5 <= max(x0, x1))]
    hits = np.argwhere(mask[np.ix_(inside_rows, inside_cols)])
    return (int(inside_rows[hits[0][0]]), int(inside_cols[hits[0][1]])) if len(hits) else None


def reader_marks(records, masks=None) -> list[tuple]:
    """(reader, probe run, case, row, col, rating) of every mark of regular answers; unrated marks rate 1.

    With `masks` (overlap acceptance: case → truth mask), a box that holds a pixel of its case's mask is placed
    on that pixel (it overlaps the lesion); other marks sit at their centre (`mark_position`)."""
    rows = []
    for r in records:
        if r["item_kind"] != ItemKind.REGULAR or r["run"] is None:
            continue
        for mark in r["answer"].get("marks", []):
            row, col = mark_position(mark)
            if masks and mark["type"] == "box" and r["case"] in masks:
                row, col = box_hit(mark, masks[r["case"]]) or (row, col)
            rows.append((r["reader"], r["run"], r["case"], row, col, float(mark.get("rating", 1))))
    return rows


def match(study, marks, truth) -> list[tuple]:
    """Marks (reader, run, case, row, col, rating) → froc's (reader, run, case, lesion or None, rating)."""
    matched = []
    by_run = defaultdict(list)
    for mark in marks:
        by_run[mark[1]].append(mark)
    for run_id, run_marks in by_run.items():
        lesions = truth["runs"].get(run_id, {"lesions": []})["lesions"]
        if study.acceptance == Acceptance.OVERLAP:
            with_masks = [(case, lesion, truth["masks"][case]) for case, lesion, _, _ in lesions]
            matched += lesion_marks.match_marks_overlap(run_marks, with_masks)
        else:
            matched += lesion_marks.match_marks(run_marks, lesions, study.acceptance_radius_px)
    return matched


def _froc_curve(matched, n_readers, n_lesions, n_cases):
    """Operating points (NLF, LLF) per rating threshold 5 … 1, readers pooled (the FROC curve)."""
    points = []
    for threshold in (5, 4, 3, 2, 1):
        ll = sum(1 for m in matched if m[3] is not None and m[4] >= threshold)
        nl = sum(1 for m in matched if m[3] is None and m[4] >= threshold)
        points.append(
            {
                "threshold": threshold,
                "llf": ll / (n_readers * n_lesions) if n_lesions else None,
                "nlf": nl / (n_readers * n_cases),
            }
        )
    return points


def analyse(study, records, complete) -> dict:
    """The probe-mode part of a study's analysis (see the module docstring); readers are those in `complete`."""
    truth = study_truth(study)
    cases = truth["cases"]
    out = {
        "acceptance": study.acceptance,
        "radius_px": study.acceptance_radius_px,
        "fom": FOM,
        "readers": list(complete),
        "cases": len(cases),
        "runs": {},
        "notes": [],
    }
    unscored = [run for run, entry in truth["runs"].items() if not entry["scored"]]
    if unscored:
        out["notes"].append(f"Probe run(s) {', '.join(map(str, unscored))} have no probe score: no lesions.")
    if not complete:
        out["notes"].append("No reader has read every regular item yet: no FROC analysis.")
        return out
    wanted = set(complete)
    marks = [m for m in reader_marks(records, truth["masks"]) if m[0] in wanted]
    matched = match(study, marks, truth)
    truths = {}
    for run_id, entry in truth["runs"].items():
        run_matched = [m for m in matched if m[1] == run_id]
        lesions = [(case, lesion, None) for case, lesion, _, _ in entry["lesions"]]
        truths[run_id] = lesions
        row = {
            "lesions": len(lesions),
            "kinds": entry["kinds"],
            "froc": _froc_curve(run_matched, len(complete), len(lesions), len(cases)),
            "ll": sum(1 for m in run_matched if m[3] is not None),
            "nl": sum(1 for m in run_matched if m[3] is None),
        }
        try:
            values = froc.figure_of_merit(run_matched, lesions, cases, FOM, readers=complete, modalities=[run_id])
            row["reader_fom"] = {reader: values[(run_id, reader)] for reader in complete}
            row["mean_fom"] = sum(row["reader_fom"].values()) / len(complete)
        except ValueError as exc:
            row["reader_fom"], row["mean_fom"], row["why"] = {}, None, str(exc)
        out["runs"][run_id] = row
    try:
        out["significance"] = froc.significance_by_modality(matched, truths, cases, FOM, readers=complete)
        out["significance_note"] = None
    except ValueError as exc:
        out["significance"], out["significance_note"] = None, str(exc)
    return out


def probe_marks(run) -> list[tuple]:
    """Readers' marks on a probe run's images in closed studies: (case id, x, y, rating, reader), with x the
    column and y the row in array index coordinates (pixel centres at integers; the viewer's value − ½), the
    rating 1–5 (None when the study asked for none). Regular items only (not repeats)."""
    return probe_marks_of_runs([run])[run.pk]


def marking_studies(runs, user=None) -> list[ReaderStudy]:
    """The closed studies that read these probe runs' images as regular items, by pk; with `user`, only those
    whose analysis `user` may read (``readerstudy.read_analysis``: editors, and everyone once published)."""
    studies = ReaderStudy.objects.filter(
        items__image__run__in=[run.pk for run in runs], items__kind=ItemKind.REGULAR, status=StudyStatus.CLOSED
    ).distinct()
    studies = sorted(studies, key=lambda s: s.pk)
    if user is None:
        return studies
    return [study for study in studies if policy.can(user, "readerstudy.read_analysis", study)]


def probe_marks_of_runs(runs, studies=None) -> dict[int, list[tuple]]:
    """``probe_marks`` of several probe runs: run id → its rows, reading each closed study's answers once (a page
    that shows every probe run of a task would otherwise read a study's answers once per run); from `studies`
    (``marking_studies``) when given."""
    wanted = {run.pk for run in runs}
    studies = marking_studies(runs) if studies is None else studies
    rows: dict[int, list[tuple]] = {pk: [] for pk in wanted}
    for study in studies:
        for record in selectors.answer_records(study):
            if record["item_kind"] != ItemKind.REGULAR or record["run"] not in wanted:
                continue
            for mark in record["answer"].get("marks", []):
                row, col = mark_position(mark)
                rows[record["run"]].append((record["case"], col, row, mark.get("rating"), record["reader"]))
    return rows


#: Unmarked positions for the SD-at-marks check: a grid this many pixels apart, farther than the exclusion radius
#: from every reader mark on that image.
UNMARKED_GRID_PX = 4
UNMARKED_EXCLUSION_PX = 8.0


def sd_mark_agreement(probe_run, marks: list[tuple] | None = None) -> dict | None:
    """Does the run's uncertainty map agree with where readers marked? The AUC of the per-pixel SD over samples
    (`evaluation.probes.scoring.sd_map`) at readers' marks (closed studies, `probe_marks`) against grid positions
    no reader marked (every `UNMARKED_GRID_PX` px, more than `UNMARKED_EXCLUSION_PX` px from any mark on that
    image); `evaluation.probes.uncertainty.sd_at_marks_auc`. 0.5: the SD map does not know where readers saw
    something. None when the run has one sample per case or no closed study marked it. ``marks``: the run's
    ``probe_marks`` where the caller has read them (``probe_marks_of_runs``)."""
    if probe_run.samples_per_case < 2:
        return None
    marks = probe_marks(probe_run) if marks is None else marks
    if not marks:
        return None
    outputs: dict[str, list] = defaultdict(list)
    for output in probe_run.outputs.select_related("case").order_by("case_id", "sample"):
        outputs[output.case.case_id].append(output.load())
    sd_maps = {case: scoring.sd_map(samples) for case, samples in outputs.items() if len(samples) > 1}
    # A mark on the image's outer half pixel rounds off the map: it belongs to the edge pixel.
    shapes = {case: np.asarray(sd).shape[-2:] for case, sd in sd_maps.items()}
    marked = [
        (case, min(max(y, 0.0), shapes[case][0] - 1.0), min(max(x, 0.0), shapes[case][1] - 1.0))
        for case, x, y, _rating, _reader in marks
        if case in sd_maps
    ]
    by_case = defaultdict(list)  # where the marks are (not clipped): what the unmarked grid keeps away from
    for case, x, y, _rating, _reader in marks:
        by_case[case].append((y, x))
    unmarked = []
    for case, sd in sd_maps.items():
        height, width = np.asarray(sd).shape[-2:]
        rows, cols = np.mgrid[0:height:UNMARKED_GRID_PX, 0:width:UNMARKED_GRID_PX]
        grid = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(float)
        if by_case[case]:
            points = np.asarray(by_case[case], dtype=float)
            distance = np.sqrt(((grid[:, None, :] - points[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
            grid = grid[distance > UNMARKED_EXCLUSION_PX]
        unmarked.extend((case, row, col) for row, col in grid)
    value = uncertainty.sd_at_marks_auc(sd_maps, marked, unmarked)
    return {"auc": value, "marks": len(marked), "unmarked": len(unmarked), "readers": len({m[4] for m in marks})}


#: How long a probe run's SD-at-marks agreement is kept: its key changes whenever its inputs do (the probe run's
#: score, the studies read and when each closed), so this only bounds the cache's size.
AGREEMENT_CACHE_SECONDS = 24 * 3600


def reader_sd_agreements(scores, user) -> dict[int, dict | None]:
    """Probe run id → ``sd_mark_agreement`` for these stochastic ``ProbeScore``s, from the closed studies whose
    analysis `user` may read (an unpublished study's marks are its editors' until it is published). Cached per probe
    run under its score's time and those studies' closing times; on a miss the studies' answers are read once for
    every run that needs them."""
    scores = [score for score in scores if score.uncertainty and score.run.samples_per_case > 1]
    studies = marking_studies([score.run for score in scores], user) if scores else []
    closed = ",".join(f"{study.pk}@{study.closed_at.timestamp() if study.closed_at else ''}" for study in studies)
    keys = {
        score.run_id: f"probe-reader-sd:{score.run_id}:{score.computed_at.timestamp()}:{closed}" for score in scores
    }
    found = cache.get_many(list(keys.values())) if keys else {}
    out = {run_id: found[key]["value"] for run_id, key in keys.items() if key in found}
    missing = [score for score in scores if score.run_id not in out]
    if missing:
        marks = probe_marks_of_runs([score.run for score in missing], studies) if studies else {}
        for score in missing:
            value = sd_mark_agreement(score.run, marks.get(score.run_id, []))
            out[score.run_id] = value
            cache.set(keys[score.run_id], {"value": value}, AGREEMENT_CACHE_SECONDS)
    return out
