"""The evaluation app's parts of other apps' pages: the run page's evaluation, downstream and probe sections
(registered with `inference.extensions` from `hooks`)."""

from django.core.paginator import Paginator
from django.template.loader import render_to_string

from core import policy
from core.models import JobStatus
from inference.extensions import Script, Section

from . import formatting, selectors
from .downstream import selectors as downstream_selectors
from .probes import selectors as probe_selectors

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


def _interval_text(ci):
    if not ci or ci.get("estimate") is None:
        return "—"
    value, low, high = formatting.format_interval(ci["estimate"], ci.get("low"), ci.get("high"))
    return f"{value} [{low}, {high}]" if ci.get("low") is not None else value


def probe_section(request, run):
    """The main run's latest scored probe run: its hallucination index, omission rates, and the analysis page."""
    if run.probe_of_id is not None:
        return None
    score = probe_selectors.run_probe_score(run)
    if score is None:
        return None
    index = score.index or {}
    context = {
        "score": score,
        "index_text": _interval_text(index.get("index")),
        "omitted": [(kind, _interval_text(ci)) for kind, ci in sorted(index.get("omitted", {}).items())],
        "counts": index.get("counts", {}),
        "sd_auc": (score.uncertainty or {}).get("sd_auc"),
        "page": probe_selectors.page_url(run.task),
    }
    return Section(render_to_string("evaluation/_run_probes.html", context, request=request))
