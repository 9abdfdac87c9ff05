"""Pages of the evaluation app: the task leaderboard, re-running an evaluation, the uncertainty map image."""

import hashlib

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from core import policy
from core.errors import DomainError, InvalidInput
from core.pages import report
from inference.models import ModelFamily, Run, Task
from inference.views import png_response

from . import downstream, leaderboard, selectors, services
from .models import CaseResult


@require_POST
def run_evaluate(request, pk):
    run = policy.get_visible(request.user, Run, pk=pk)
    policy.require(request.user, "evaluation.request_evaluation", run)
    try:
        services.request_evaluation(run, user=request.user)
    except DomainError as exc:
        report(request, exc)
    else:
        messages.success(request, "Evaluation queued.")
    return redirect(f"{run.get_absolute_url()}#evaluation")


def uncertainty_png(request, pk, result_pk):
    result = policy.visible(request.user, CaseResult).exclude(uncertainty_map="").filter(run=pk, pk=result_pk).first()
    if result is None:
        raise Http404("Not found.")
    return png_response(selectors.load_uncertainty(result))


def task_leaderboard(request, slug):
    task = policy.get_visible(request.user, Task, slug=slug)
    method, chosen = leaderboard.requested_ranking(request.GET, task)
    private = policy.can(request.user, "inference.manage_task", task)
    board = leaderboard.build(task, method=method or "primary", chosen=chosen, private=private)
    chosen_keys = {column.key for column in board.chosen}
    # Runs of a hidden test set open for their owner and the organisers only; others' for everyone.
    openable = {row.run_id for row in board.rows}
    if task.hidden_references:
        openable &= set(policy.visible(request.user, Run).filter(pk__in=openable).values_list("pk", flat=True))
    # Any ranked column with values may enter the mean rank (clinical and efficiency too); a placeholder
    # column (no study or downstream evaluation yet) has none.
    rankable = [column for column in board.columns if column.direction and not column.placeholder]
    comparison, comparison_error = None, ""
    try:
        pair = leaderboard.requested_pair(request.GET)
        if pair is not None:
            comparison = leaderboard.compare_runs(task, board, *pair)
    except InvalidInput as exc:
        pair, comparison_error = None, str(exc)
    return render(
        request,
        "evaluation/leaderboard.html",
        {
            "task": task,
            "board": board,
            "openable": openable,
            "methods": leaderboard.RANKING_METHODS,
            "rankable": [(column, column.key in chosen_keys) for column in rankable],
            "query": _without(request.GET, "compare"),
            "families": [(key, label) for key, label in ModelFamily.choices if key in {r.family for r in board.rows}],
            "family": request.GET.get("family", ""),
            "comparison": comparison,
            "comparison_error": comparison_error,
            "pair": pair or (None, None),
            "kept_params": [
                (key, value) for key, values in request.GET.lists() if key != "compare" for value in values
            ],
            # Organisers (the same who see private phases) hide and unhide runs, and see the hidden ones.
            "can_moderate": private,
            "hidden_runs": leaderboard.hidden_runs(task) if private else [],
            # The cached table differs by what the viewer may open (their own runs, an organiser's all).
            "cache_key": f"{board.version}:{method}:{','.join(sorted(chosen_keys))}:{private}:"
            + hashlib.sha256(repr(sorted(openable)).encode()).hexdigest()[:12],
        },
    )


def _without(params, name):
    """The query string without `name` (the exports and plots read the board, not a comparison)."""
    params = params.copy()
    params.pop(name, None)
    return params.urlencode()


# --------------------------------------------------------------- downstream-task tier (clinical)


@require_POST
def run_downstream_start(request, pk):
    run = policy.get_visible(request.user, Run, pk=pk)
    policy.require(request.user, "evaluation.request_downstream", run)
    try:
        downstream.request_downstream(run, user=request.user)
    except DomainError as exc:
        report(request, exc)
    else:
        messages.success(request, "Downstream job queued.")
    return redirect(f"{run.get_absolute_url()}#downstream")


@require_POST
def run_downstream_cancel(request, pk):
    run = policy.get_visible(request.user, Run, pk=pk)
    policy.require(request.user, "evaluation.cancel_downstream", run)
    job = downstream.job_of(run)
    try:
        if job is None:
            raise downstream.DownstreamError("This run has no downstream job.")
        downstream.cancel_downstream(job.pk)
    except DomainError as exc:
        report(request, exc)
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
    run = policy.get_visible(request.user, Run, pk=pk)
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
    task = policy.get_visible(request.user, Task, slug=slug)
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
