"""Pages of the evaluation app: re-running an evaluation, the uncertainty map image."""

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from inference import access
from inference.views import png_response

from . import services
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
