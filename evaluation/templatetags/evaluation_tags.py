"""The evaluation block of the run page, and metric value formatting."""

import math

from django import template
from django.core.paginator import Paginator

from ..metrics import catalog
from ..models import CaseStatus, Evaluation, decode_value
from ..services import extractor_status

register = template.Library()


@register.filter
def metric_value(value, digits=4):
    """∞ for infinite values, an em dash for missing ones, else `digits` significant figures."""
    value = decode_value(value)
    if value is None:
        return "—"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if magnitude < -3 or magnitude >= 7:
        return f"{value:.{max(0, int(digits) - 1)}e}"
    decimals = max(0, int(digits) - 1 - magnitude)
    return f"{value:.{decimals}f}"


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
    if primary:
        higher = catalog.get(primary).higher_is_better

        def badness(result):
            value = decode_value(result.values.get(primary))
            if result.status != CaseStatus.OK or value is None:
                return (0, 0.0)
            return (1, value if higher else -value)

        case_results.sort(key=badness)
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
    }


def _configured_extractors():
    from django.conf import settings

    return settings.MEDGEN_FEATURE_EXTRACTORS


@register.filter
def case_value(result, key):
    return result.values.get(key)
