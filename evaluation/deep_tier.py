"""Per-case deep metrics of an evaluation (LPIPS): every output sample against its case's reference.

Runs after the pixel tier, on the cases it scored (status OK), for a task that lists the metric
(``catalog.PER_CASE_FEATURE_METRICS``). The network comes from local weights files only
(``metrics.lpips``); where they are not configured, the reason (which setting to set) is named in
the evaluation's `unavailable` and nothing is computed. A case's value is the mean over its samples,
added to the case's stored values; the per-run mean gets a bootstrap CI over cases, as the pixel
metrics' do. Runs in the worker's process with its torch threads (`core.threads`).
"""

import numpy as np
from django.conf import settings

from .formatting import decode_value, encode_value
from .metrics import bootstrap, catalog, lpips
from .metrics.extractors import ExtractorUnavailable
from .models import CaseResult, CaseStatus
from .pixel_tier import reference_array
from .services import store_metric


def deep_metrics_for(task):
    return [key for key in (task.metrics or []) if key in catalog.PER_CASE_FEATURE_METRICS]


def lpips_configuration():
    return lpips.configuration(settings)


def deep_tier(run, cases, outputs_by_case, window, unavailable, *, metric_keys):
    """LPIPS per case and its per-run summary, for the keys the task lists; the set of MetricResults written."""
    if "lpips" not in metric_keys:
        return set()
    config = lpips_configuration()
    try:
        network = lpips.load(config)
    except ExtractorUnavailable as exc:
        unavailable["lpips"] = str(exc)
        return set()
    compute = catalog.get("lpips").compute
    ok = {r.case_id: r for r in CaseResult.objects.filter(run=run, status=CaseStatus.OK)}
    values = []
    for case in cases:
        result = ok.get(case.pk)
        if result is None:
            continue
        reference, _ = reference_array(case)  # an OK case has one (the pixel tier checked)
        samples = np.stack([output.load() for output in outputs_by_case[case.pk]]).astype(np.float32, copy=False)
        try:
            per_sample = compute(samples, np.broadcast_to(reference, samples.shape), window=window, network=network)
        except ValueError as exc:  # images smaller than the trunk accepts
            unavailable["lpips"] = str(exc)
            return set()
        value = float(np.mean(per_sample))
        result.values = {**result.values, "lpips": encode_value(value)}
        result.save(update_fields=["values"])
        values.append(decode_value(result.values["lpips"]))
    if not values:
        return set()
    ci = bootstrap.bootstrap_mean_ci(
        np.asarray(values, dtype=np.float64),
        n_resamples=settings.MEDGEN_BOOTSTRAP_RESAMPLES,
        seed=settings.MEDGEN_BOOTSTRAP_SEED,
    )
    spec = lpips.NETS[config.net]
    extra = {
        "net": config.net,
        "heads_version": lpips.HEADS_VERSION,
        "backbone_file": spec.backbone.weights_filename,
        "heads_from": config.heads_source,
        "window": [float(window[0]), float(window[1])],
    }
    excluded = CaseResult.objects.filter(run=run).exclude(status=CaseStatus.OK).count()
    return {
        store_metric(
            run,
            "lpips",
            value=ci.estimate,
            ci_low=ci.low,
            ci_high=ci.high,
            n_resamples=ci.n_resamples,
            confidence=ci.confidence,
            n_cases=len(values),
            n_excluded=excluded,
            data_range=float(window[1] - window[0]),
            extra=extra,
        )
    }
