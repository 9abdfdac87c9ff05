"""The evaluation block of the run page, and metric value formatting."""

from django import template
from django.core.paginator import Paginator
from django.urls import reverse

from .. import downstream, formatting
from ..formatting import decode_value, encode_value
from ..metrics import catalog
from ..models import CaseStatus, Evaluation
from ..services import extractor_status

register = template.Library()


@register.filter
def metric_value(value, digits=4):
    """∞ for infinite values, an em dash for missing ones, else `digits` significant figures."""
    return formatting.format_value(value, digits)


@register.inclusion_tag("evaluation/_run_evaluation.html", takes_context=True)
def run_evaluation(context, run):
    request = context["request"]
    evaluation = Evaluation.objects.filter(run=run).first()
    results = list(run.metric_results.all())
    pixel = [r for r in results if r.tier == catalog.PIXEL]
    pixel.sort(
        key=lambda r: list(catalog.DEFAULT_PIXEL_METRICS).index(r.metric)
        if r.metric in catalog.DEFAULT_PIXEL_METRICS
        else 99
    )
    feature = [r for r in results if r.tier == catalog.FEATURE]
    metric_keys = [r.metric for r in pixel]
    primary = (
        run.task.primary_metric if run.task.primary_metric in metric_keys else (metric_keys[0] if metric_keys else "")
    )
    case_results = list(run.case_results.select_related("case"))
    problems = [r for r in case_results if r.status != CaseStatus.OK]
    sort_key, worst_first = _case_order(request.GET.get("csort", ""), metric_keys, primary)
    if sort_key == "case":
        case_results.sort(key=lambda result: result.case.case_id, reverse=not worst_first)
    elif sort_key:
        higher = catalog.get(sort_key).higher_is_better

        def badness(result):
            # Excluded cases (NaN output, wrong shape, missing) come first: they are the worst.
            value = decode_value(result.values.get(sort_key))
            if result.status != CaseStatus.OK or value is None:
                return (0, 0.0)
            return (1, value if higher else -value)

        case_results.sort(key=badness, reverse=not worst_first)
    plot_data = {
        "metrics": [{"key": key, "label": catalog.get(key).label, "direction": catalog.get(key).direction}
                    for key in metric_keys],
        "cases": [
            {"case_id": r.case.case_id, "url": reverse("run-case", args=[run.pk, r.case_id]), "status": r.status,
             "values": {key: encode_value(decode_value(r.values.get(key))) for key in metric_keys}}
            for r in case_results
        ],
        "primary": primary,
    }  # fmt: skip
    page = Paginator(case_results, 50).get_page(request.GET.get("cpage"))
    reported = set(evaluation.unavailable) if evaluation else set()
    extractors = [(name, *extractor_status(name)) for name in _configured_extractors() if name not in reported]
    return {
        "request": request,
        "user": context.get("user"),
        "run": run,
        "evaluation": evaluation,
        "pixel_results": pixel,
        "feature_results": feature,
        "metric_keys": metric_keys,
        "metric_infos": [catalog.get(key) for key in metric_keys],
        "primary": primary,
        "case_page": page,
        "problem_cases": problems,
        "extractors": extractors,
        "stochastic": bool(run.model and run.model.stochastic),
        "case_sort": sort_key,
        "case_worst_first": worst_first,
        "case_plot_data": plot_data,
    }


def _case_order(requested, metric_keys, primary):
    """(column, worst_first) for the per-case table from `?csort=ssim` / `?csort=-ssim` (best first) /
    `?csort=case`; worst first by the primary metric by default."""
    best_first = requested.startswith("-")
    key = requested.lstrip("-")
    if key == "case" or key in metric_keys:
        return key, not best_first
    return primary, True


def _configured_extractors():
    from django.conf import settings

    return settings.MEDGEN_FEATURE_EXTRACTORS


@register.filter
def case_value(result, key):
    return result.values.get(key)


@register.filter
def get_item(mapping, key):
    return mapping.get(key)


@register.filter
def sort_number(value):
    """A plain number for data-value attributes (client-side numeric sorting); blank when missing."""
    return formatting.sort_number(value)


@register.filter
def percent(value):
    return "—" if value is None else f"{100 * float(value):.0f}%"


@register.inclusion_tag("evaluation/_run_downstream.html", takes_context=True)
def run_downstream(context, run):
    """The run page's downstream-task block: the job's live progress, Dice / HD95 / utility ratio with CIs."""
    setup = downstream.setup_of(run.task)
    job = downstream.job_of(run) if setup else None
    results = {r.metric: r for r in run.metric_results.all() if r.tier == catalog.CLINICAL}
    return {
        "request": context.get("request"),
        "user": context.get("user"),
        "run": run,
        "setup": setup,
        "job": job,
        "rows": [(catalog.get(key), results.get(key)) for key in catalog.CLINICAL_METRICS],
        "reference": downstream.task_reference(run.task) if setup else None,
        "curves_url": downstream.curves_url(run) if job else None,
    }
