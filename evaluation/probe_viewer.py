"""The probe viewer: one probe case of a probe run, its maps and its truth, for the task's organisers.

Viewports: the probe's input(s), the run's output (one sample), the probe's truth image (the probe's reference:
what a faithful output shows), |output − truth image| (the error detector's map, per sample) and, for a stochastic
run, the per-pixel SD over its samples (the SD detector's map, ``scoring.sd_map``); the probe's truth region drawn
as an outline over all of them. Beside it: the truth (kind, site, centre, extent, contrast), each sample's outcome
(the contrast fraction and what it was scored) and the detectors' marks on the case. Previous / next walk the
probe cases hallucinated first (``probes.selectors.probe_cases``).

Who sees it: whoever may see the probe run and the probe case. A probe set's dataset is private to its task
(``Dataset.private_to``), so its cases, truth images and truth regions reach the task's organisers and staff only;
everyone else gets a 404, as for any case they may not see.

Array sources: ``probe-truth`` (a ``ProbeCase``'s truth mask, a label) and ``samples-sd`` (the SD over a run's
samples of the case of one ``CaseOutput``, computed on request: a probe run is not evaluated, so it has no stored
SD map, and its few 2D probe cases are cheap to reduce).
"""

import math

import numpy as np
from django.http import Http404
from django.shortcuts import render
from django.urls import reverse

from core import policy
from inference.models import Case, CaseOutput, Run
from inference.viewer import ArraySource, open_field, output_viewports, pick_sample, spacing_of, viewport

from .models import ProbeCase, ProbeScore
from .probes import scoring
from .probes import selectors as probe_selectors
from .probes.construct import INSERTED
from .selectors import neighbours_in

COLUMNS = 3
SITE_LABELS = {"white_matter": "in tissue", "csf": "in CSF", "outside": "outside the body", "lesion": "a real lesion"}


def probe_truth_source(request, pk):
    probe = policy.get_visible(request.user, ProbeCase, pk=pk)
    return ArraySource(open_field(probe.truth_mask), spacing_of(probe.case), "label")


def samples_sd_source(request, pk):
    """Probe runs only (a main run's SD map is stored by its evaluation: the ``uncertainty`` source), and only
    single-channel 2D samples of one shape, as probes are: anything else is a 404 with the reason."""
    output = policy.get_visible(request.user, CaseOutput, pk=pk, run__probe_of__isnull=False)
    siblings = policy.visible(request.user, CaseOutput).filter(run=output.run_id, case=output.case_id)
    samples = [open_field(o.array) for o in siblings.order_by("sample")]
    shapes = {tuple(sample.shape) for sample in samples}
    if len(shapes) != 1 or len(next(iter(shapes))) != 3 or next(iter(shapes))[0] != 1:
        raise Http404(f"The samples' shapes {sorted(shapes)} are not one (1, H, W): no SD map over them.")
    sd = scoring.sd_map(samples)
    if sd is None:
        raise Http404("This run has one sample of this case: no SD over samples.")
    return ArraySource(sd.astype(np.float32)[None], spacing_of(output.case), "uncertainty")


def _walk(run, rows, case):
    """Previous / next probe (URLs) and the position, in the probe cases' order (hallucinated first)."""
    neighbours = neighbours_in([row["probe"].case_id for row in rows], case.pk)
    for side in ("previous", "next"):
        if side in neighbours:
            neighbours[f"{side}_url"] = reverse("probe-case", args=[run.pk, neighbours[side]])
    return neighbours


def _marks(score, probe):
    centre = probe.truth["centre"]
    marks = probe_selectors.case_marks(score, probe.case.case_id)
    for mark in marks:
        mark["distance"] = math.hypot(mark["row"] - centre[0], mark["col"] - centre[1])
    return marks


def probe_case(request, run_pk, case_pk):
    run = policy.get_visible(request.user, Run, pk=run_pk, probe_of__isnull=False)
    case = policy.get_visible(request.user, Case, pk=case_pk, dataset=run.dataset_id)
    probe = policy.get_visible(request.user, ProbeCase, case=case)
    outputs = list(policy.visible(request.user, CaseOutput).filter(run=run, case=case).order_by("sample"))
    output = pick_sample(outputs, request.GET.get("sample"))
    viewports, _truth_image = output_viewports(
        case, request.user, outputs, output, input_label="Probe input", reference_label="Truth image"
    )
    if len(outputs) > 1:
        viewports.append(viewport(f"SD over {len(outputs)} samples", "samples-sd", outputs[0].pk, "uncertainty"))
    score = ProbeScore.objects.filter(run=run).first()
    rows = probe_selectors.probe_cases(run, score)
    row = next((r for r in rows if r["probe"].pk == probe.pk), {"outcomes": [], "hallucinated": None, "shown": ""})
    config = {
        "viewports": viewports,
        "sync": True,
        "frameOfReferenceUID": f"case-{case.pk}",
        "columns": COLUMNS,
        "overlay": {
            "headerUrl": reverse("array-probe-truth", args=[probe.pk]),
            "label": "Truth region",
            "outline": True,
            "maps": True,
        },
    }
    source = policy.visible(request.user, Case).filter(pk=probe.source_id).first()
    return render(
        request,
        "evaluation/probe_case.html",
        {
            "run": run,
            "main_run": policy.visible(request.user, Run).filter(pk=run.probe_of_id).first(),
            "case": case,
            "probe": probe,
            "truth": probe.truth,
            "site": SITE_LABELS.get(probe.truth.get("site", ""), probe.truth.get("site", "")),
            "inserted": probe.kind in INSERTED,
            "source": source,
            "outputs": outputs,
            "output": output,
            "row": row,
            "marks": _marks(score, probe),
            "present_fraction": scoring.PRESENT_FRACTION,
            "neighbours": _walk(run, rows, case),
            "viewer_config": config,
        },
    )
