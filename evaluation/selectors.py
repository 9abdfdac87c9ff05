"""Reads of the evaluation app: the run page's evaluation block (its downstream block is the downstream
tier's, `downstream.selectors`), the viewer's per-case
metrics and SD map, the feature extractors' availability here, a case's images by role. Each takes what
it needs as arguments (no request), in a fixed number of queries."""

import math

from django.conf import settings
from django.urls import reverse

from inference.storage import load_array

from .formatting import decode_value, encode_value, feature_note
from .metrics import catalog
from .metrics.extractors import availability, configured_weights_path, configured_weights_sha256
from .models import CaseResult, CaseStatus, Evaluation


def case_images(case, role):
    """The case's images of `role` in index order, from its prefetched images (no query when prefetched)."""
    return sorted((im for im in case.images.all() if im.role == role), key=lambda im: im.index)


def extractor_weights(name):
    """The weights file configured for extractor `name` (its setting, else the environment variable); None
    where it needs none or none is configured."""
    return configured_weights_path(name, settings)


def extractor_sha256(name):
    """The sha256 the admin pinned for extractor `name`'s weights (DINOv2: none is published), else None."""
    return configured_weights_sha256(name, settings)


def extractor_status(name):
    """(available, reason) for the page, without loading anything."""
    return availability(name, extractor_weights(name), weights_sha256=extractor_sha256(name))


def case_order(requested, metric_keys, primary):
    """(column, worst_first) for the per-case table from `?csort=ssim` / `?csort=-ssim` (best first) /
    `?csort=case`; worst first by the primary metric by default."""
    best_first = requested.startswith("-")
    key = requested.lstrip("-")
    if key == "case" or key in metric_keys:
        return key, not best_first
    return primary, True


def _pixel_order(result):
    order = list(catalog.DEFAULT_PIXEL_METRICS)
    return order.index(result.metric) if result.metric in order else len(order)


def _sorted_cases(case_results, sort_key, worst_first):
    if sort_key == "case":
        return sorted(case_results, key=lambda result: result.case.case_id, reverse=not worst_first)
    if not sort_key:
        return case_results
    higher = catalog.get(sort_key).higher_is_better

    def badness(result):
        # Excluded cases (NaN output, wrong shape, missing) come first: they are the worst.
        value = decode_value(result.values.get(sort_key))
        if result.status != CaseStatus.OK or value is None:
            return (0, 0.0)
        return (1, value if higher else -value)

    return sorted(case_results, key=badness, reverse=not worst_first)


def _case_columns(run, results):
    """(pixel results, feature results, per-case metric keys, primary key) of a run's results."""
    pixel = sorted((r for r in results if r.tier == catalog.PIXEL), key=_pixel_order)
    feature = [r for r in results if r.tier == catalog.FEATURE]
    metric_keys = [r.metric for r in pixel] + [
        r.metric for r in feature if r.metric in catalog.PER_CASE_FEATURE_METRICS
    ]
    primary = run.task.primary_metric if run.task.primary_metric in metric_keys else next(iter(metric_keys), "")
    return pixel, feature, metric_keys, primary


def ordered_case_results(run, *, case_sort=""):
    """(case results in the run page's per-case order, sort key, worst_first): worst first by the
    primary metric unless `?csort=` asks otherwise (see `case_order`)."""
    _, _, metric_keys, primary = _case_columns(run, list(run.metric_results.all()))
    sort_key, worst_first = case_order(case_sort, metric_keys, primary)
    return _sorted_cases(list(run.case_results.select_related("case")), sort_key, worst_first), sort_key, worst_first


def case_sequence(run, *, case_sort=""):
    """The pks of a run's cases in the run page's order (`ordered_case_results`), then those with an
    output but no result yet, by case id: what the viewer's previous / next walk through."""
    ordered = [result.case_id for result in ordered_case_results(run, case_sort=case_sort)[0]]
    seen = set(ordered)
    rest = run.outputs.exclude(case_id__in=seen).order_by("case__case_id").values_list("case_id", flat=True)
    return ordered + [pk for pk in dict.fromkeys(rest)]


def neighbours_in(sequence, pk):
    """{"previous", "next", "position", "count"} of `pk` in `sequence` (previous/next left out at the ends),
    or {} when it is not in it."""
    if pk not in sequence:
        return {}
    position = sequence.index(pk)
    neighbours = {"position": position + 1, "count": len(sequence)}
    if position > 0:
        neighbours["previous"] = sequence[position - 1]
    if position + 1 < len(sequence):
        neighbours["next"] = sequence[position + 1]
    return neighbours


def run_evaluation_panel(run, *, case_sort=""):
    """The run page's evaluation block: the job, per-run results by tier, per-case results in the
    requested order (worst first by the primary metric), the extractors' availability, plot data."""
    evaluation = Evaluation.objects.filter(run=run).first()
    results = list(run.metric_results.all())
    pixel, feature, metric_keys, primary = _case_columns(run, results)
    for result in feature:  # what a number rests on: why precision is 0, how many values were clipped
        result.note = feature_note(result.metric, result.extra, result.n_cases)
    case_results = list(run.case_results.select_related("case"))
    sort_key, worst_first = case_order(case_sort, metric_keys, primary)
    case_results = _sorted_cases(case_results, sort_key, worst_first)
    reported = set(evaluation.unavailable) if evaluation else set()
    return {
        "run": run,
        "evaluation": evaluation,
        "pixel_results": pixel,
        "feature_results": feature,
        "metric_keys": metric_keys,
        "metric_infos": [catalog.get(key) for key in metric_keys],
        "primary": primary,
        "case_results": case_results,
        "problem_cases": [r for r in case_results if r.status != CaseStatus.OK],
        "extractors": [
            (name, *extractor_status(name)) for name in settings.MEDGEN_FEATURE_EXTRACTORS if name not in reported
        ],
        "stochastic": bool(run.model and run.model.stochastic),
        "case_sort": sort_key,
        "case_worst_first": worst_first,
        "case_plot_data": _case_plot_data(run, case_results, metric_keys, primary),
    }


def _case_plot_data(run, case_results, metric_keys, primary):
    return {
        "metrics": [
            {"key": key, "label": catalog.get(key).label, "direction": catalog.get(key).direction}
            for key in metric_keys
        ],
        "cases": [
            {
                "case_id": r.case.case_id,
                "url": reverse("run-case", args=[run.pk, r.case_id]),
                "status": r.status,
                "values": {key: encode_value(decode_value(r.values.get(key))) for key in metric_keys},
            }
            for r in case_results
        ],
        "primary": primary,
    }


def case_metrics(run, case):
    """(the case's result or None, [{"info", "value"}] for each catalogued metric it has)."""
    result = CaseResult.objects.filter(run=run, case=case).first()
    metrics = []
    for key in result.values if result else ():
        if key in catalog.METRICS:
            metrics.append({"info": catalog.get(key), "value": result.value(key)})
    return result, metrics


def load_uncertainty(result):
    """The case result's per-voxel SD map over samples, as stored."""
    return load_array(result.uncertainty_map)


def _better(info, a, b):
    """ "A", "B" or "" (equal, or a value missing) for two values of metric `info`."""
    if a is None or b is None or a == b or not (math.isfinite(a) and math.isfinite(b)):
        return ""
    if info.direction == catalog.TARGET:
        return "A" if abs(a - info.target) < abs(b - info.target) else "B"
    return "A" if (a > b) == info.higher_is_better else "B"


def case_metric_difference(run_a, run_b, case):
    """Each catalogued metric either run has for `case`: [{"info", "a", "b", "difference" (B − A, None
    when either is missing or not finite), "better" ("A" | "B" | "")}], in the catalogue's order."""
    result_a = CaseResult.objects.filter(run=run_a, case=case).first() if run_a else None
    result_b = CaseResult.objects.filter(run=run_b, case=case).first() if run_b else None
    keys = set(result_a.values if result_a else ()) | set(result_b.values if result_b else ())
    rows = []
    for key in catalog.METRICS:
        if key not in keys:
            continue
        info = catalog.get(key)
        a = result_a.value(key) if result_a else None
        b = result_b.value(key) if result_b else None
        finite = a is not None and b is not None and math.isfinite(a) and math.isfinite(b)
        difference = b - a if finite else None
        rows.append({"info": info, "a": a, "b": b, "difference": difference, "better": _better(info, a, b)})
    return rows
