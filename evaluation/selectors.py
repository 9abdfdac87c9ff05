"""Reads of the evaluation app: the run page's evaluation block (its downstream block is the downstream
tier's, `downstream.selectors`), the viewer's per-case
metrics and SD map, the feature extractors' availability here, a case's images by role. Each takes what
it needs as arguments (no request), in a fixed number of queries."""

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


def run_evaluation_panel(run, *, case_sort=""):
    """The run page's evaluation block: the job, per-run results by tier, per-case results in the
    requested order (worst first by the primary metric), the extractors' availability, plot data."""
    evaluation = Evaluation.objects.filter(run=run).first()
    results = list(run.metric_results.all())
    pixel = sorted((r for r in results if r.tier == catalog.PIXEL), key=_pixel_order)
    feature = [r for r in results if r.tier == catalog.FEATURE]
    for result in feature:  # what a number rests on: why precision is 0, how many values were clipped
        result.note = feature_note(result.metric, result.extra, result.n_cases)
    metric_keys = [r.metric for r in pixel] + [
        r.metric for r in feature if r.metric in catalog.PER_CASE_FEATURE_METRICS
    ]
    primary = run.task.primary_metric if run.task.primary_metric in metric_keys else next(iter(metric_keys), "")
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
