import json

from rest_framework import serializers

from .models import Case, CaseImage, CaseOutput, Dataset, GenerativeModel, ModelFormat, Normalisation, Run, Task


class TaskSerializer(serializers.ModelSerializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=Dataset.objects.all())
    url = serializers.SerializerMethodField()

    class Meta:
        model = Task
        fields = [
            "id",
            "slug",
            "name",
            "kind",
            "description",
            "dataset",
            "reference_dataset",
            "data_range",
            "metrics",
            "primary_metric",
            "ranking",
            "is_public",
            "created_at",
            "url",
        ]

    def get_url(self, obj) -> str:
        return obj.get_absolute_url()


class DatasetSerializer(serializers.ModelSerializer):
    case_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "source", "is_public", "case_count", "created_at"]


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    is_public = serializers.BooleanField(required=False, default=False)
    file = serializers.FileField(help_text="A zip of cases (folders with input/reference/label files) or images.")


class CaseImageSerializer(serializers.ModelSerializer):
    class Meta:
        model = CaseImage
        fields = [
            "role",
            "index",
            "source_format",
            "original_name",
            "shape",
            "spacing",
            "direction",
            "origin",
            "intensity_min",
            "intensity_max",
        ]


class CaseSerializer(serializers.ModelSerializer):
    images = CaseImageSerializer(many=True, read_only=True)

    class Meta:
        model = Case
        fields = ["id", "dataset", "case_id", "metadata", "images"]


class GenerativeModelSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = GenerativeModel
        fields = [
            "id",
            "name",
            "description",
            "task",
            "format",
            "original_name",
            "sha256",
            "size_bytes",
            "parameter_count",
            "in_channels",
            "out_channels",
            "spatial_shape",
            "normalisation",
            "stochastic",
            "samples_per_case",
            "status",
            "validation_error",
            "validated_at",
            "created_at",
        ]
        read_only_fields = fields


class JSONListField(serializers.JSONField):
    """Accepts a JSON list in a multipart form field ("[128, 128]") as well as in JSON bodies."""

    def to_internal_value(self, data):
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except json.JSONDecodeError:
                raise serializers.ValidationError("Give a JSON list, e.g. [128, 128].") from None
        if not isinstance(data, list) or len(data) not in (2, 3):
            raise serializers.ValidationError("Give 2 (H, W) or 3 (D, H, W) sizes, e.g. [128, 128].")
        for size in data:
            if size is not None and (not isinstance(size, int) or size < 1):
                raise serializers.ValidationError("Each size is a positive integer or null (any size).")
        return data


class ModelUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    task = serializers.SlugRelatedField(slug_field="slug", queryset=Task.objects.all())
    file = serializers.FileField(help_text="TorchScript (.pt) or ONNX (.onnx). Pickles are refused.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    in_channels = serializers.IntegerField(min_value=1, max_value=64, default=1)
    out_channels = serializers.IntegerField(min_value=1, max_value=64, default=1)
    spatial_shape = JSONListField()
    normalisation = serializers.ChoiceField(choices=Normalisation.choices, default=Normalisation.NONE)
    stochastic = serializers.BooleanField(default=False)
    samples_per_case = serializers.IntegerField(min_value=1, max_value=64, default=1)
    format = serializers.ChoiceField(choices=ModelFormat.choices, required=False, help_text="Detected from content.")


class RunSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_name = serializers.CharField(source="model.name", read_only=True, default=None)
    progress_percent = serializers.IntegerField(read_only=True)
    is_final = serializers.BooleanField(read_only=True)

    class Meta:
        model = Run
        fields = [
            "id",
            "uid",
            "name",
            "task",
            "model",
            "model_name",
            "kind",
            "status",
            "is_final",
            "progress_done",
            "progress_total",
            "progress_percent",
            "attempts",
            "device",
            "seed",
            "error",
            "problems",
            "created_at",
            "queued_at",
            "started_at",
            "finished_at",
            "total_inference_seconds",
            "throughput_cases_per_s",
            "latency_ms_p50",
            "latency_ms_p95",
        ]
        read_only_fields = fields


class RunDetailSerializer(RunSerializer):
    class Meta(RunSerializer.Meta):
        fields = RunSerializer.Meta.fields + ["log"]
        read_only_fields = fields


class RunCreateSerializer(serializers.Serializer):
    model = serializers.PrimaryKeyRelatedField(queryset=GenerativeModel.objects.all())
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(required=False, default=0, min_value=0)


class SubmissionSerializer(serializers.Serializer):
    task = serializers.SlugRelatedField(slug_field="slug", queryset=Task.objects.all())
    name = serializers.CharField(max_length=200)
    file = serializers.FileField(help_text="A zip of outputs named by case id (<case_id>.nii.gz, .npy, .png, …).")


class CaseOutputSerializer(serializers.ModelSerializer):
    case_id = serializers.CharField(source="case.case_id", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = CaseOutput
        fields = ["id", "case", "case_id", "sample", "shape", "latency_ms", "nonfinite_count", "download"]

    def get_download(self, obj) -> str:
        from django.urls import reverse

        return reverse("api-run-output-array", args=[obj.run_id, obj.pk])
