"""The evaluation app's parts of other apps' pages: the run page's evaluation and downstream sections
(registered with `inference.extensions` from `hooks`)."""

from django.core.paginator import Paginator
from django.template.loader import render_to_string

from core import policy
from core.models import JobStatus
from inference.extensions import Script, Section

from . import selectors
from .downstream import selectors as downstream_selectors

PLOTS = [Script("vendor/plotly/plotly.min.js", module=False), Script("js/run_plots.js")]


def evaluation_section(request, run):
    context = selectors.run_evaluation_panel(run, case_sort=request.GET.get("csort", ""))
    context["case_page"] = Paginator(context["case_results"], 50).get_page(request.GET.get("cpage"))
    context["can_evaluate"] = policy.can(request.user, "evaluation.request_evaluation", run)
    html = render_to_string("evaluation/_run_evaluation.html", context, request=request)
    return Section(html, scripts=PLOTS)


def downstream_section(request, run):
    if run.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        return None  # nothing to train on: the run's own error says why
    context = downstream_selectors.run_downstream_panel(run)
    if context is None:
        return None
    context["can_train"] = policy.can(request.user, "evaluation.request_downstream", run)
    return Section(render_to_string("evaluation/_run_downstream.html", context, request=request))
