"""Publishing a study's per-run results into the clinical tier of its task's leaderboard.

Published values are `MetricResult` rows (tier "clinical", metric `reader_*`, extractor
"study-<pk>" or "study-<pk>:<scale>"), so the leaderboard's cache key, which counts the
task's results and their latest time, changes with every publish and withdrawal.
"""

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from evaluation.metrics import catalog
from evaluation.models import MetricResult

from .. import analysis
from ..errors import StudyError
from ..models import ReaderStudy, StudyStatus


class PublishError(StudyError):
    """Nothing (yet) to publish; the message says why."""


def extractor_of(study):
    return f"study-{study.pk}"


@transaction.atomic
def publish(study: ReaderStudy) -> list[MetricResult]:
    """Write the study's per-run results as clinical-tier `MetricResult`s (replacing any published before)."""
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if not study.is_frozen:
        raise PublishError("Start the study and collect answers before publishing.")
    if study.status != StudyStatus.CLOSED:
        raise PublishError(
            "Close the study before publishing: publishing shows its readers the images' sources, so no one may "
            "still be answering."
        )
    result = analysis.analyse(study)
    if not result["per_run"]:
        reason = result.get("mrmc_note") or "; ".join(result["notes"]) or "no per-run result could be computed"
        raise PublishError(f"Nothing to publish yet: {reason}")
    _remove(study)
    url = reverse("study-analysis", args=[study.pk])
    rows = []
    for run_id, entries in result["per_run"].items():
        for entry in entries:
            metric = entry["metric"]
            rows.append(
                MetricResult(
                    run_id=run_id,
                    metric=metric,
                    extractor=extractor_of(study) + entry["suffix"],
                    tier=catalog.CLINICAL,
                    value=entry["value"],
                    ci_low=entry["ci_low"],
                    ci_high=entry["ci_high"],
                    n_cases=entry["n"],
                    version=catalog.metric_version(metric),
                    extra={
                        "study_id": study.pk,
                        "study_title": study.title,
                        "study_url": url,
                        **({"scale_label": entry["scale_label"]} if "scale_label" in entry else {}),
                    },
                )
            )
    MetricResult.objects.bulk_create(rows)
    study.published_at = timezone.now()
    study.sources_released_at = study.sources_released_at or study.published_at
    study.save(update_fields=["published_at", "sources_released_at"])
    return rows


def _remove(study):
    MetricResult.objects.filter(
        run__task=study.task, tier=catalog.CLINICAL, metric__in=list(catalog.READER_METRICS), extra__study_id=study.pk
    ).delete()


@transaction.atomic
def unpublish(study: ReaderStudy) -> None:
    """Withdraw the study's results from the leaderboard."""
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    _remove(study)
    study.published_at = None
    study.save(update_fields=["published_at"])
