"""Pages of the evaluation app: the task leaderboard, re-running an evaluation, the uncertainty map image."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from inference import access
from inference.views import png_response

from . import downstream, leaderboard, services
from .models import CaseResult


@staff_member_required
@require_POST
def run_evaluate(request, pk):
    run = get_object_or_404(access.visible_runs(request.user), pk=pk)
    try:
        services.request_evaluation(run, user=request.user)
    except services.EvaluationError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Evaluation queued.")
    return redirect(f"{run.get_absolute_url()}#evaluation")


def uncertainty_png(request, pk, result_pk):
    run = get_object_or_404(access.visible_runs(request.user), pk=pk)
    result = get_object_or_404(CaseResult.objects.exclude(uncertainty_map=""), run=run, pk=result_pk)
    return png_response(services.load_uncertainty(result))


def task_leaderboard(request, slug):
    task = get_object_or_404(access.visible_tasks(request.user), slug=slug)
    method, chosen = leaderboard.requested_ranking(request.GET, task)
    board = leaderboard.build(task, method=method or "primary", chosen=chosen)
    chosen_keys = {column.key for column in board.chosen}
    rankable = [
        column
        for column in board.columns
        if column.direction and column.tier in (leaderboard.catalog.PIXEL, leaderboard.catalog.FEATURE)
    ]
    return render(
        request,
        "evaluation/leaderboard.html",
        {
            "task": task,
            "board": board,
            "methods": leaderboard.RANKING_METHODS,
            "rankable": [(column, column.key in chosen_keys) for column in rankable],
            "query": request.GET.urlencode(),
            "cache_key": f"{board.version}:{method}:{','.join(sorted(chosen_keys))}",
        },
    )


# --------------------------------------------------------------- downstream-task tier (clinical)


@staff_member_required
@require_POST
def run_downstream_start(request, pk):
    run = get_object_or_404(access.visible_runs(request.user), pk=pk)
    try:
        downstream.request_downstream(run, user=request.user)
    except downstream.DownstreamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Downstream job queued.")
    return redirect(f"{run.get_absolute_url()}#downstream")


@staff_member_required
@require_POST
def run_downstream_cancel(request, pk):
    run = get_object_or_404(access.visible_runs(request.user), pk=pk)
    job = downstream.job_of(run)
    try:
        if job is None:
            raise downstream.DownstreamError("This run has no downstream job.")
        downstream.cancel_downstream(job.pk)
    except downstream.DownstreamError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, "Downstream job cancelled.")
    return redirect(f"{run.get_absolute_url()}#downstream")


def _curves(job):
    if job is None:
        return []
    return [
        {"seed": seed, "loss": part.get("loss", [])}
        for seed, part in sorted(job.curves.items(), key=lambda i: int(i[0]))
    ]


def run_downstream_curves(request, pk):
    """The training curves (loss per epoch and seed) of the run's downstream job beside the real→real reference's."""
    run = get_object_or_404(access.visible_runs(request.user), pk=pk)
    job = downstream.job_of(run)
    if job is None:
        raise Http404("This run has no downstream job.")
    reference = downstream.reference_job(job.setup)
    return render(
        request,
        "evaluation/downstream_curves.html",
        {
            "task": run.task,
            "run": run,
            "job": job,
            "setup": job.setup,
            "reference": reference,
            "curves": {"run": _curves(job), "reference": _curves(reference), "run_name": str(run)},
        },
    )


def task_downstream_curves(request, slug):
    """The real→real reference's training curves."""
    task = get_object_or_404(access.visible_tasks(request.user), slug=slug)
    setup = downstream.setup_of(task)
    if setup is None:
        raise Http404("This task has no downstream evaluation.")
    reference = downstream.reference_job(setup)
    return render(
        request,
        "evaluation/downstream_curves.html",
        {
            "task": task,
            "run": None,
            "job": reference,
            "setup": setup,
            "reference": reference,
            "curves": {"run": [], "reference": _curves(reference), "run_name": ""},
        },
    )
