"""The evaluation app's writes: requesting a run's evaluation (by staff, or by the platform when the run
succeeds) and storing a per-run metric result, which every tier (pixel, feature, downstream) goes through.

The evaluation job itself is `evaluation_job.evaluate`; its tiers are `pixel_tier` and `feature_tier`.
"""

import math

from django.conf import settings
from django.db import transaction

from core import jobs
from core.errors import InvalidInput
from core.models import JobStatus
from inference.models import Run

from .formatting import encode_value
from .metrics import catalog
from .models import Evaluation, MetricResult


class EvaluationError(InvalidInput):
    """An evaluation cannot be requested or cannot finish; the message says why."""


def request_evaluation(run: Run, *, user=None) -> Evaluation:
    """Queue (or re-queue) the evaluation of a succeeded run; the job is sent on commit."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != JobStatus.SUCCEEDED:
            raise EvaluationError(f"Only a succeeded run can be evaluated; this run is {run.status}.")
        evaluation, _ = Evaluation.objects.select_for_update().get_or_create(run=run)
        if evaluation.is_active:
            raise EvaluationError(f"The evaluation is already {evaluation.status}.")
        evaluation.requested_by = user
        evaluation.progress_done = 0
        evaluation.append_log(f"requested by {user or 'the platform'}", save=False)
        jobs.queue(evaluation)
    return evaluation


def on_run_finished(sender, job_id, status, **kwargs):
    """`job_finished` receiver: every run that succeeds is evaluated once (a repeated signal changes nothing);
    probe runs are not (their scores are the probes')."""
    if status != JobStatus.SUCCEEDED:
        return
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=job_id)
        if run.probe_of_id is not None:  # a probe run is scored against its probes' truth (evaluation.probes)
            return
        evaluation, created = Evaluation.objects.select_for_update().get_or_create(run=run)
        if created or evaluation.status == JobStatus.PENDING:
            evaluation.append_log("requested by the platform: the run succeeded", save=False)
            jobs.queue(evaluation)


def _number(value):
    """NaN is no value (a float column would store it, and no page or ranking could use it)."""
    return None if value is None or math.isnan(value) else float(value)


def json_safe(value):
    """`value` with every float made JSON-safe (NaN → None, ±inf → "inf"/"-inf", as `formatting` encodes them):
    PostgreSQL refuses NaN in a JSON column, which would fail the whole evaluation."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, float):
        return encode_value(value)
    return value


def store_metric(
    run: Run,
    metric: str,
    *,
    extractor: str = "",
    value: float | None,
    ci_low: float | None = None,
    ci_high: float | None = None,
    **fields,
) -> MetricResult:
    """Write the run's one result of `metric` (per extractor), with the catalogue's tier and current version.

    `fields` are the result's other columns (n_cases, n_excluded, confidence, n_resamples, data_range,
    extra); the bootstrap seed is the platform's.
    """
    if "extra" in fields:
        fields["extra"] = json_safe(fields["extra"])
    result, _ = MetricResult.objects.update_or_create(
        run=run,
        metric=metric,
        extractor=extractor,
        defaults={
            "tier": catalog.get(metric).tier,
            "value": _number(value),
            "ci_low": _number(ci_low),
            "ci_high": _number(ci_high),
            "bootstrap_seed": settings.MEDGEN_BOOTSTRAP_SEED,
            "version": catalog.metric_version(metric, extractor),
            **fields,
        },
    )
    return result
