from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import policy
from core.serializers import JOB_FIELDS, JobSerializer, PrimaryKeyField

from . import extensions
from .forms import parse_scheduler, parse_spatial_shape
from .models import (
    Case,
    CaseImage,
    CaseOutput,
    Dataset,
    EvaluationProfile,
    EvaluationRegion,
    GenerativeModel,
    Membership,
    ModelFamily,
    ModelFormat,
    Normalisation,
    Run,
    SamplerKind,
    Task,
)


@extend_schema_field(OpenApiTypes.STR)
class VisibleTaskField(serializers.SlugRelatedField):
    """A task by slug among those the requesting user may see (another one does not exist for them)."""

    def get_queryset(self):
        return policy.visible(self.context["request"].user, Task)


class VisibleDatasetField(PrimaryKeyField):
    """A dataset among those the requesting user may see: an organiser who named a private dataset as
    their task's would otherwise be shown it through the task. Never a probe set's (`Dataset.private_to`)."""

    def get_queryset(self):
        return policy.visible(self.context["request"].user, Dataset).filter(private_to__isnull=True)


class TaskSerializer(serializers.ModelSerializer):
    dataset = VisibleDatasetField()
    reference_dataset = VisibleDatasetField(required=False, allow_null=True)
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
            "profile",
            "region",
            "region_threshold",
            "is_public",
            "created_at",
            "url",
        ]
        extra_kwargs = {
            "profile": {
                "error_messages": {
                    "invalid_choice": f'Unknown profile "{{input}}". Known: {", ".join(EvaluationProfile.values)}.'
                }
            },
            "region": {
                "error_messages": {
                    "invalid_choice": f'Unknown region "{{input}}". Known: {", ".join(EvaluationRegion.values)}.'
                }
            },
        }

    def get_url(self, obj) -> str:
        return obj.get_absolute_url()

    def validate_metrics(self, value):
        if not isinstance(value, list) or not all(isinstance(key, str) and key for key in value):
            raise serializers.ValidationError('Give a list of metric names, e.g. ["psnr", "ssim"].')
        return value

    def validate(self, attrs):
        errors = extensions.check_task_settings({**self._current(), **attrs})
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def _current(self):
        if self.instance is None:
            return {field: None for field in Task.SETTINGS_FIELDS}
        return self.instance.settings_for_checks()


class DatasetSerializer(serializers.ModelSerializer):
    case_count = serializers.IntegerField(read_only=True)
    private_to = serializers.SlugRelatedField(
        slug_field="slug", read_only=True, help_text="The task whose organisers alone see it (a probe set), or null."
    )

    class Meta:
        model = Dataset
        fields = ["id", "name", "description", "source", "is_public", "private_to", "case_count", "created_at"]


class DatasetUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    is_public = serializers.BooleanField(required=False, default=False)
    file = serializers.FileField(help_text="A zip of cases (folders with input/reference/label files) or images.")


class CaseImageSerializer(serializers.ModelSerializer):
    """A case image as the user may see it, with the addresses the viewer reads it from. The caller passes
    only visible images (`selectors.visible_images`): a hidden test set's reference or label never reaches
    here for someone who may not see it, so it gets no id and no URL."""

    header_url = serializers.SerializerMethodField(help_text="The viewer's JSON header (shape, spacing, window).")
    data_url = serializers.SerializerMethodField(help_text="The float32 bytes (`?slice=k` for one slice).")
    preview_url = serializers.SerializerMethodField(help_text="A PNG preview of the middle slice.")

    class Meta:
        model = CaseImage
        fields = [
            "id",
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
            "header_url",
            "data_url",
            "preview_url",
        ]

    def get_header_url(self, obj) -> str:
        return reverse("array-case-image", args=[obj.pk])

    def get_data_url(self, obj) -> str:
        return reverse("array-case-image-data", args=[obj.pk])

    def get_preview_url(self, obj) -> str:
        return reverse("case-image-png", args=[obj.case_id, obj.role, obj.index])


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
            "family",
            "scheduler",
            "status",
            "validation_error",
            "validated_at",
            "created_at",
        ]
        read_only_fields = fields


@extend_schema_field({"oneOf": [{"type": "array", "items": {"type": "integer", "minimum": 1}}, {"type": "string"}]})
class SpatialShapeField(serializers.Field):
    """A declared spatial shape as a JSON list ([128, 128]) or text ("128, 128") in JSON or multipart
    bodies; the same rule as the upload page (`forms.parse_spatial_shape`)."""

    def to_internal_value(self, data):
        try:
            return parse_spatial_shape(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value


@extend_schema_field({"type": "object", "additionalProperties": True, "nullable": True})
class SchedulerField(serializers.Field):
    """A noise predictor's declared scheduler as a JSON object, or its JSON text in a multipart body
    (`forms.parse_scheduler`, the upload page's rule); empty for a model that is not a noise predictor."""

    def to_internal_value(self, data):
        try:
            return parse_scheduler(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None

    def to_representation(self, value):
        return value


class ModelUploadSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    task = VisibleTaskField(slug_field="slug")
    file = serializers.FileField(help_text="TorchScript (.pt) or ONNX (.onnx). Pickles are refused.")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    in_channels = serializers.IntegerField(min_value=1, max_value=64, default=1)
    out_channels = serializers.IntegerField(min_value=1, max_value=64, default=1)
    spatial_shape = SpatialShapeField()
    normalisation = serializers.ChoiceField(choices=Normalisation.choices, default=Normalisation.NONE)
    stochastic = serializers.BooleanField(default=False)
    samples_per_case = serializers.IntegerField(min_value=1, max_value=64, default=1)
    family = serializers.ChoiceField(choices=ModelFamily.choices, default=ModelFamily.REGRESSION)
    scheduler = SchedulerField(
        required=False,
        allow_null=True,
        default=None,
        help_text='A diffusion noise predictor\'s scheduler, e.g. {"kind": "ddim", "num_train_timesteps": 1000, '
        '"schedule": "linear_beta", "beta_start": 0.0001, "beta_end": 0.02}; the artifact is then ε(x_t, t) on '
        "x_t and the condition concatenated along channels, and the platform samples.",
    )
    format = serializers.ChoiceField(choices=ModelFormat.choices, required=False, help_text="Detected from content.")


class RunSerializer(JobSerializer):
    task = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    model_name = serializers.CharField(source="model.name", read_only=True, default=None)

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
            *JOB_FIELDS,
            "device",
            "seed",
            "samples_per_case",
            "sampling_steps",
            "scheduler",
            "sweep",
            "problems",
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


@extend_schema_field(OpenApiTypes.INT)
class VisibleModelField(PrimaryKeyField):
    def get_queryset(self):
        return policy.visible(self.context["request"].user, GenerativeModel)


class RunCreateSerializer(serializers.Serializer):
    model = VisibleModelField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**63 - 1)
    sampling_steps = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    scheduler = serializers.ChoiceField(choices=SamplerKind.choices, required=False, allow_blank=True, default="")
    samples_per_case = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)


class SweepSerializer(serializers.Serializer):
    steps = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=32, default=[5, 10, 25, 50]
    )
    scheduler = serializers.ChoiceField(choices=SamplerKind.choices, default=SamplerKind.DDIM)
    samples_per_case = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**63 - 1)
    name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")


class SweepCancelSerializer(serializers.Serializer):
    sweep = serializers.CharField(max_length=100)


class SubmissionSerializer(serializers.Serializer):
    task = VisibleTaskField(slug_field="slug")
    name = serializers.CharField(max_length=200)
    file = serializers.FileField(help_text="A zip of outputs named by case id (<case_id>.nii.gz, .npy, .png, …).")


class CaseOutputSerializer(serializers.ModelSerializer):
    case_id = serializers.CharField(source="case.case_id", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = CaseOutput
        fields = ["id", "case", "case_id", "sample", "shape", "latency_ms", "nonfinite_count", "download"]

    def get_download(self, obj) -> str:
        return reverse("api-run-output-array", args=[obj.run_id, obj.pk])


class MembershipSerializer(serializers.ModelSerializer):
    task = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["id", "task", "username", "role", "status", "created_at", "decided_at"]
        read_only_fields = fields


class DecisionSerializer(serializers.Serializer):
    accept = serializers.BooleanField()


class HideSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)
