"""The evaluation app's parts of other apps' pages: the run page's evaluation, downstream and probe sections, and
a probe run's page's probe cases (registered with `inference.extensions` from `hooks`)."""

from django.core.paginator import Paginator
from django.template.loader import render_to_string

from core import policy
from core.models import JobStatus
from inference.extensions import Script, Section
from inference.models import Case, Run

from . import formatting, selectors
from .downstream import selectors as downstream_selectors
from .probes import scoring as probe_scoring
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
        "uncertainty": score.uncertainty or {},
        "page": probe_selectors.page_url(run.task),
        "probe_run_openable": policy.visible(request.user, Run).filter(pk=score.run_id).exists(),
    }
    return Section(render_to_string("evaluation/_run_probes.html", context, request=request))


def probe_cases_section(request, run):
    """A probe run's cases, hallucinated first, each with its truth and its samples' outcomes, linked to the probe
    viewer. Whoever sees a probe run sees its probe set (both are the task's organisers'); the cases are still
    filtered through the policy, as every case is."""
    if run.probe_of_id is None:
        return None
    rows = probe_selectors.probe_cases(run)
    visible = set(
        policy.visible(request.user, Case)
        .filter(pk__in=[r["probe"].case_id for r in rows])
        .values_list("pk", flat=True)
    )
    context = {
        "run": run,
        "main_run": policy.visible(request.user, Run).filter(pk=run.probe_of_id).first(),
        "rows": [row for row in rows if row["probe"].case_id in visible],
        "present_fraction": probe_scoring.PRESENT_FRACTION,
    }
    return Section(render_to_string("evaluation/_run_probe_cases.html", context, request=request))
