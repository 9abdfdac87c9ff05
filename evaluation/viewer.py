"""The evaluation's parts of the image viewer: a run's case beside its input, reference and error map
with the case's metrics, and the per-voxel SD map of a stochastic run as an array source."""

from django.http import Http404
from django.shortcuts import render

from core import policy
from inference.models import Case, Run
from inference.selectors import runs_with_output
from inference.viewer import ArraySource, image_viewports, open_field, spacing_of, viewport

from . import selectors
from .models import CaseResult


def uncertainty_source(request, pk):
    result = policy.visible(request.user, CaseResult).exclude(uncertainty_map="").filter(pk=pk).first()
    if result is None:
        raise Http404("Not found.")
    return ArraySource(open_field(result.uncertainty_map), spacing_of(result.case), "uncertainty")


def _neighbours(run, case):
    case_ids = list(run.outputs.values_list("case_id", flat=True).distinct().order_by("case__case_id"))
    if case.pk not in case_ids:
        return {}
    position = case_ids.index(case.pk)
    neighbours = {}
    if position > 0:
        neighbours["previous"] = case_ids[position - 1]
    if position + 1 < len(case_ids):
        neighbours["next"] = case_ids[position + 1]
    return neighbours


def run_case(request, run_pk, case_pk):
    """Input, output (one sample), reference, |output − reference| and, for stochastic runs, the SD map."""
    run = policy.get_visible(request.user, Run, pk=run_pk)
    case = policy.get_visible(request.user, Case, dataset=run.task.dataset_id, pk=case_pk)
    outputs = list(run.outputs.filter(case=case).order_by("sample"))
    try:
        sample = int(request.GET.get("sample", outputs[0].sample if outputs else 0))
    except ValueError:
        sample = 0
    output = next((o for o in outputs if o.sample == sample), outputs[0] if outputs else None)

    viewports, reference = image_viewports(case, request.user)
    if output is not None:
        label = "Output" + (f" (sample {output.sample})" if len(outputs) > 1 else "")
        viewports.append(viewport(label, "output", output.pk, "image"))
    if reference is not None:
        viewports.append(viewport("Reference", "case-image", reference.pk, "image", leader=True))
        if output is not None and list(output.shape) == list(reference.shape):
            viewports.append(viewport("|Output − reference|", "difference", output.pk, "difference"))
    result, metrics = selectors.case_metrics(run, case)
    if result is not None and result.uncertainty_map:
        viewports.append(viewport(f"SD over {result.samples} samples", "uncertainty", result.pk, "uncertainty"))
    return render(
        request,
        "evaluation/run_case.html",
        {
            "run": run,
            "case": case,
            "outputs": outputs,
            "output": output,
            "result": result,
            "metrics": metrics,
            "viewer_config": {"viewports": viewports, "sync": True, "frameOfReferenceUID": f"case-{case.pk}"},
            "neighbours": _neighbours(run, case),
            "compare_with": runs_with_output(request.user, case).exclude(pk=run.pk).first(),
        },
    )
