from rest_framework import serializers

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
            "stale",
            "extra",
            "computed_at",
        ]

    def get_direction(self, result):
        return catalog.get(result.metric).direction


class EvaluationSerializer(serializers.ModelSerializer):
    progress_percent = serializers.IntegerField(read_only=True)
    is_final = serializers.BooleanField(read_only=True)
    results = serializers.SerializerMethodField()

    class Meta:
        model = Evaluation
        fields = [
            "status",
            "is_final",
            "phase",
            "progress_done",
            "progress_total",
            "progress_percent",
            "attempts",
            "error",
            "data_range",
            "data_range_source",
            "config",
            "unavailable",
            "seconds",
            "cases_per_second",
            "queued_at",
            "started_at",
            "finished_at",
            "results",
        ]

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
            "uncertainty_mean",
            "uncertainty_p95",
            "computed_at",
        ]
