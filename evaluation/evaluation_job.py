"""The evaluation job: a run's pixel tier per case, its feature tier per extractor, summaries with bootstrap CIs.

An evaluation is a kind of `core.models.Job`; `evaluate` is its handler (`core.jobs` claims it,
beats its heartbeat and finishes it). It writes every result with update-or-create on its unique
key and reports progress between batches, which stops it once the evaluation was handed to
another attempt. The tiers are `pixel_tier` and `feature_tier`; the numbers come from
`evaluation.metrics`, a plain library with no Django in it.
"""

import time

from django.conf import settings

from core.models import JobStatus
from inference.models import CaseImage, CaseOutput, ImageRole

from .deep_tier import deep_metrics_for, deep_tier
from .feature_tier import feature_tier
from .metrics import catalog, profiles
from .metrics.extractors import ExtractorUnavailable
from .models import CaseResult, MetricResult
from .pixel_tier import pixel_summaries, pixel_tier
from .services import EvaluationError
from .task_settings import region_name


def evaluate(evaluation, context):
    """Job handler: the pixel tier per case, the feature tier per extractor, summaries with bootstrap CIs."""
    started = time.monotonic()
    run = evaluation.run
    task = run.task
    metric_keys = pixel_metrics_for(task)
    deep_keys = deep_metrics_for(task)
    window, range_source = resolve_intensity_window(task)
    data_range = window[1] - window[0]
    extractors = extractors_for(task)
    cases = list(task.dataset.cases.order_by("case_id").prefetch_related("images"))
    config = {
        "pixel_metrics": metric_keys,
        "profile": {"name": task.profile, "version": profiles.get(task.profile).version},
        "region": region_name(task),
        "extractors": extractors,
        "bootstrap": {
            "method": "percentile, case resampling",
            "n_resamples": settings.MEDGEN_BOOTSTRAP_RESAMPLES,
            "feature_resamples": settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES,
            "seed": settings.MEDGEN_BOOTSTRAP_SEED,
            "confidence": 0.95,
        },
        "deep_metrics": deep_keys,
        "versions": {key: catalog.metric_version(key) for key in metric_keys + deep_keys},
        "samples_per_case": run.samples_per_case
        if run.sampling_steps is not None  # a diffusion run: its own setting
        else (run.model.samples_per_case if run.model and run.model.stochastic else 1),
    }
    context.progress(
        done=0,
        total=len(cases) + len(extractors),
        phase="pixel metrics",
        data_range=data_range,
        data_range_source=range_source,
        config=config,
        unavailable={},
    )

    unavailable = {}
    outputs_by_case = {}
    for output in CaseOutput.objects.filter(run=run).order_by("case_id", "sample"):
        outputs_by_case.setdefault(output.case_id, []).append(output)

    evaluated = pixel_tier(context, run, cases, outputs_by_case, metric_keys, data_range, unavailable)
    written = pixel_summaries(run, metric_keys, data_range, unavailable)
    written |= deep_tier(run, cases, outputs_by_case, window, unavailable, metric_keys=deep_keys)

    for position, name in enumerate(extractors):
        context.progress(done=len(cases) + position, phase=f"features: {name}")
        try:
            written |= feature_tier(run, name, cases, evaluated, window)
        except ExtractorUnavailable as exc:
            unavailable[name] = str(exc)
        except ValueError as exc:  # the data do not allow the metric (e.g. a reference set with no spread)
            unavailable[name] = f"Not computed on this run: {exc}."

    # Results this evaluation did not produce (a metric dropped from the task, an extractor
    # no longer configured) would otherwise linger beside fresh ones. Only this job's tiers:
    # other tiers (the downstream task's clinical results) belong to other jobs.
    stale = MetricResult.objects.filter(run=run, tier__in=[catalog.PIXEL, catalog.FEATURE])
    stale = stale.exclude(pk__in=[result.pk for result in written])
    stale.delete()
    CaseResult.objects.filter(run=run).exclude(case__in=cases).delete()

    seconds = time.monotonic() - started
    context.finish(
        JobStatus.SUCCEEDED,
        progress_done=len(cases) + len(extractors),
        phase="",
        unavailable=unavailable,
        seconds=seconds,
        cases_per_second=len(cases) / seconds if seconds else None,
    )


def extractors_for(task):
    """The platform's extractors, then those whose metrics the task lists (CLIP, DINOv2) if not among them."""
    names = list(settings.MEDGEN_FEATURE_EXTRACTORS)
    for name, keys in catalog.EMBEDDING_EXTRACTOR_METRICS.items():
        if name not in names and any(key in (task.metrics or []) for key in keys):
            names.append(name)
    return names


def pixel_metrics_for(task):
    """The pixel metrics the task evaluates: those it lists of its profile's (all of them when it lists none)."""
    if task.profile == profiles.DEFAULT_PROFILE:
        own = catalog.PIXEL_METRICS
    else:
        own = catalog.PROFILE_KEYS[task.profile]
    chosen = [key for key in (task.metrics or []) if key in own]
    return chosen or list(catalog.PROFILE_KEYS[task.profile])


def resolve_intensity_window(task):
    """((lo, hi), source): hi − lo is the data_range of PSNR/SSIM; the window maps intensities for extractors.

    lo is the lowest reference intensity (0 without references); hi is lo + the task's data_range, else
    the highest reference intensity.
    """
    references = CaseImage.objects.filter(case__dataset=task.dataset, role=ImageRole.REFERENCE)
    bounds = list(references.values_list("intensity_min", "intensity_max"))
    lows = [lo for lo, _ in bounds if lo is not None]
    highs = [hi for _, hi in bounds if hi is not None]
    lo = float(min(lows)) if lows else 0.0
    if task.data_range:
        return (lo, lo + float(task.data_range)), "task setting"
    if not lows or not highs or max(highs) <= lo:
        raise EvaluationError(
            "The task has no data_range and its reference images have no usable intensity range; "
            "set the task's data_range."
        )
    return (lo, float(max(highs))), "reference images' intensity range (max − min)"
