"""The evaluation's parts of the image viewer: a run's case beside its input, reference and error map
with the case's metrics, two runs' outputs of a case compared with their metric difference, both
walking through cases in the run page's order (worst first by the primary metric, or its `?csort=`),
and the per-voxel SD map of a stochastic run as an array source."""

from urllib.parse import urlencode

from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse

from core import policy
from inference.models import Case, CaseOutput, ImageRole, Run
from inference.selectors import case_image, runs_with_output
from inference.viewer import (
    ArraySource,
    label_overlay,
    open_field,
    output_viewports,
    pick_sample,
    spacing_of,
    viewport,
)

from . import selectors
from .models import CaseResult

#: Tiles per row: the run's case (input, output, reference, error, SD) two by two, large on a wide
#: screen; the compare view's reference and two outputs in a row, their error maps under them.
RUN_CASE_COLUMNS = 2
COMPARE_COLUMNS = 3


def uncertainty_source(request, pk):
    result = policy.visible(request.user, CaseResult).exclude(uncertainty_map="").filter(pk=pk).first()
    if result is None:
        raise Http404("Not found.")
    return ArraySource(open_field(result.uncertainty_map), spacing_of(result.case), "uncertainty")


def _query(**params):
    """`?a=1&csort=…` of the parameters that are set, or ""."""
    kept = {key: value for key, value in params.items() if value not in (None, "")}
    return f"?{urlencode(kept)}" if kept else ""


def _order_text(run, case_sort):
    _, sort_key, worst_first = selectors.ordered_case_results(run, case_sort=case_sort)
    if not sort_key:
        return "by case id"
    if sort_key == "case":
        return "by case id" if worst_first else "by case id, descending"
    return f"{'worst' if worst_first else 'best'} first by {sort_key}"


def _walk(run, case, case_sort, url_of):
    """Previous / next (URLs), the position, and how the cases are ordered, for the page's navigation."""
    neighbours = selectors.neighbours_in(selectors.case_sequence(run, case_sort=case_sort), case.pk)
    for side in ("previous", "next"):
        if side in neighbours:
            neighbours[f"{side}_url"] = url_of(neighbours[side])
    neighbours["order"] = _order_text(run, case_sort)
    return neighbours


def run_case(request, run_pk, case_pk):
    """Input, output (one sample), reference, |output − reference| and, for stochastic runs, the SD map;
    the label drawn over the images; previous / next in the run page's order (`?csort=` as there)."""
    run = policy.get_visible(request.user, Run, pk=run_pk)
    if run.probe_of_id is not None:  # a probe run's case has a truth: the probe viewer shows it
        case = policy.get_visible(request.user, Case, dataset=run.dataset_id, pk=case_pk)
        return redirect(reverse("probe-case", args=[run.pk, case.pk]) + _query(sample=request.GET.get("sample")))
    case = policy.get_visible(request.user, Case, dataset=run.task.dataset_id, pk=case_pk)
    case_sort = request.GET.get("csort", "")
    outputs = list(policy.visible(request.user, CaseOutput).filter(run=run, case=case).order_by("sample"))
    output = pick_sample(outputs, request.GET.get("sample"))
    viewports, _reference = output_viewports(case, request.user, outputs, output)
    result, metrics = selectors.case_metrics(run, case)
    if result is not None and result.uncertainty_map:
        viewports.append(viewport(f"SD over {result.samples} samples", "uncertainty", result.pk, "uncertainty"))
    config = {
        "viewports": viewports,
        "sync": True,
        "frameOfReferenceUID": f"case-{case.pk}",
        "columns": RUN_CASE_COLUMNS,
        "overlay": label_overlay(case, request.user),
    }
    return render(
        request,
        "evaluation/run_case.html",
        {
            "run": run,
            "case": case,
            "case_sort": case_sort,
            "outputs": outputs,
            "output": output,
            "result": result,
            "metrics": metrics,
            "viewer_config": config,
            "neighbours": _walk(
                run, case, case_sort, lambda pk: reverse("run-case", args=[run.pk, pk]) + _query(csort=case_sort)
            ),
            "compare_with": runs_with_output(request.user, case).exclude(pk=run.pk).first(),
        },
    )


def _pick(request, name, by_pk, default):
    try:
        return by_pk.get(int(request.GET.get(name, "")), default)
    except ValueError:
        return default


def _first_output(user, run, case):
    return policy.visible(user, CaseOutput).filter(run=run, case=case).order_by("sample").first()


def case_compare(request, case_pk):
    """Reference, run A's and run B's outputs, and both difference maps, synchronised; the case's metrics
    for A and B with B − A; previous / next through the cases both runs have, in A's run-page order."""
    case = policy.get_visible(request.user, Case, pk=case_pk)
    runs = list(runs_with_output(request.user, case))
    by_pk = {run.pk: run for run in runs}
    run_a = _pick(request, "a", by_pk, runs[0] if runs else None)
    run_b = _pick(request, "b", by_pk, next((r for r in runs if r is not run_a), None))
    case_sort = request.GET.get("csort", "")
    viewports = []
    reference = case_image(request.user, case, ImageRole.REFERENCE)
    if reference is not None:
        viewports.append(viewport("Reference", "case-image", reference.pk, "image", leader=True))
    pairs = [
        (letter, run, _first_output(request.user, run, case)) for letter, run in (("A", run_a), ("B", run_b)) if run
    ]
    pairs = [(letter, run, output) for letter, run, output in pairs if output is not None]
    for letter, run, output in pairs:
        viewports.append(viewport(f"{letter}: {run}", "output", output.pk, "image"))
    for letter, _run, output in pairs:
        if reference is not None and list(output.shape) == list(reference.shape):
            viewports.append(viewport(f"|{letter} − reference|", "difference", output.pk, "difference"))
    neighbours = {}
    if run_a is not None:
        both = set(run_b.outputs.values_list("case_id", flat=True)) if run_b else None

        def url_of(pk):
            query = _query(a=run_a.pk, b=run_b.pk if run_b else None, csort=case_sort)
            return reverse("case-compare", args=[pk]) + query

        sequence = [pk for pk in selectors.case_sequence(run_a, case_sort=case_sort) if both is None or pk in both]
        neighbours = selectors.neighbours_in(sequence, case.pk)
        for side in ("previous", "next"):
            if side in neighbours:
                neighbours[f"{side}_url"] = url_of(neighbours[side])
        neighbours["order"] = _order_text(run_a, case_sort) + " of run A"
    config = {
        "viewports": viewports,
        "sync": True,
        "frameOfReferenceUID": f"case-{case.pk}",
        "columns": COMPARE_COLUMNS,
        "overlay": label_overlay(case, request.user),
    }
    return render(
        request,
        "evaluation/case_compare.html",
        {
            "case": case,
            "runs": runs,
            "run_a": run_a,
            "run_b": run_b,
            "case_sort": case_sort,
            "neighbours": neighbours,
            "differences": selectors.case_metric_difference(run_a, run_b, case) if run_a and run_b else [],
            "viewer_config": config,
        },
    )
