"""The evaluation app's API shapes: evaluations with their results, per-case results, downstream jobs and setups."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.models import JobStatus
from core.serializers import JOB_FIELDS, JobSerializer, job_progress

from .downstream.selectors import curves_url, reference_curves_url, task_reference
from .formatting import encode_value
from .metrics import catalog
from .models import CaseResult, Evaluation, MetricResult


class JSONFloatField(serializers.FloatField):
    """Floats for strict JSON: +inf as the string "inf" (identical images' PSNR), NaN as null."""

    def to_representation(self, value):
        return encode_value(value)


class MetricResultSerializer(serializers.ModelSerializer):
    value = JSONFloatField()
    ci_low = JSONFloatField()
    ci_high = JSONFloatField()
    label = serializers.CharField(read_only=True)
    direction = serializers.SerializerMethodField()
    stale = serializers.BooleanField(source="is_stale", read_only=True)

    class Meta:
        model = MetricResult
        fields = [
            "metric",
            "label",
            "extractor",
            "tier",
            "direction",
            "value",
            "ci_low",
            "ci_high",
            "confidence",
            "n_resamples",
            "bootstrap_seed",
            "n_cases",
            "n_excluded",
            "data_range",
            "version",
            "region",
            "stale",
            "extra",
            "computed_at",
        ]

    @extend_schema_field(serializers.ChoiceField([catalog.HIGHER, catalog.LOWER, catalog.TARGET]))
    def get_direction(self, result) -> str:
        return catalog.get(result.metric).direction


class EvaluationSerializer(JobSerializer):
    results = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            *JOB_FIELDS,
            "data_range",
            "data_range_source",
            "config",
            "unavailable",
            "seconds",
            "cases_per_second",
            "results",
        ]

    @extend_schema_field(MetricResultSerializer(many=True))
    def get_results(self, evaluation):
        return MetricResultSerializer(evaluation.run.metric_results.all(), many=True).data


class CaseResultSerializer(serializers.ModelSerializer):
    case_id = serializers.CharField(source="case.case_id", read_only=True)
    case = serializers.IntegerField(source="case.pk", read_only=True)

    class Meta:
        model = CaseResult
        fields = [
            "case",
            "case_id",
            "status",
            "problem",
            "samples",
            "values",
            "region_fraction",
            "uncertainty_mean",
            "uncertainty_p95",
            "computed_at",
        ]


def downstream_job_payload(job):
    """What the API serves for a job: status, live progress, the run's clinical results, the reference."""
    results = []
    if job.run_id:
        rows = MetricResult.objects.filter(run=job.run, tier=catalog.CLINICAL).order_by("metric")
        results = MetricResultSerializer(rows, many=True).data
    setup = job.setup
    return {
        **job_progress(job),
        "reference": job.is_reference,
        "epoch": job.epoch,
        "epochs": setup.config.get("epochs"),
        "loss": job.loss,
        "device": job.device,
        "seconds": job.seconds,
        "config": {"name": setup.name, **setup.config},
        "seeds": list(setup.seeds),
        "n_train_cases": len(setup.train_case_ids),
        "n_test_cases": len(setup.test_case_ids),
        "summary": job.results.get("summary") if job.status == JobStatus.SUCCEEDED else None,
        "results": results,
        "real_reference": task_reference(setup.task),
        "curves_url": curves_url(job.run) if job.run_id else reference_curves_url(setup.task),
    }


def downstream_setup_payload(setup):
    """What the API serves for a task's downstream evaluation: recipe, seeds, the frozen split, the reference."""
    return {
        "task": setup.task.slug,
        "config": {"name": setup.name, **setup.config},
        "seeds": list(setup.seeds),
        "split_seed": setup.split_seed,
        "test_fraction": setup.test_fraction,
        "train_case_ids": list(setup.train_case_ids),
        "test_case_ids": list(setup.test_case_ids),
        "unused_case_ids": list(setup.unlabelled_case_ids),
        "frozen": setup.is_frozen,
        "auto_run": setup.auto_run,
        "real_reference": task_reference(setup.task),
    }
