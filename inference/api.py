"""REST API: tasks, datasets, cases, models, runs, submissions.

Reads are whatever `core.policy` lets the user see; every write names its action in
`policy_actions` (staff-only for now). Services raise the platform's errors, which
`core.responses` turns into 4xx answers with a `detail`.
"""

from django.db.models import Count, ProtectedError
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response

from core import policy
from core.errors import Conflict, InvalidInput, NotFound
from core.parsers import SafeJSONParser
from core.serializers import MAX_PK

from .models import Case, Dataset, GenerativeModel, Run, Task
from .serializers import (
    CaseOutputSerializer,
    CaseSerializer,
    DatasetSerializer,
    DatasetUploadSerializer,
    GenerativeModelSerializer,
    ModelUploadSerializer,
    RunCreateSerializer,
    RunDetailSerializer,
    RunSerializer,
    SubmissionSerializer,
    TaskSerializer,
)
from .services.artifacts import register_upload
from .services.datasets import import_dataset
from .services.runs import cancel_run, create_run
from .services.submissions import create_submission


class TaskViewSet(viewsets.ModelViewSet):
    serializer_class = TaskSerializer
    lookup_field = "slug"
    policy_actions = {name: "inference.manage_task" for name in ("create", "update", "partial_update", "destroy")}

    def get_queryset(self):
        return policy.visible(self.request.user, Task)

    def perform_destroy(self, task):
        try:
            task.delete()
        except ProtectedError:
            raise Conflict(
                f"Task '{task.slug}' has models or runs; it cannot be deleted while they exist (they are kept "
                "as the record of what was evaluated)."
            ) from None


def _id_param(request, name):
    """An integer query parameter, or None; anything else is a 400 that names it."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    if not value.isdigit() or int(value) > MAX_PK:
        raise InvalidInput(f"'{name}' must be a dataset id (a positive whole number), got {value!r}.")
    return int(value)


class DatasetViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [MultiPartParser, FormParser]
    policy_actions = {"create": "inference.import_dataset"}

    def get_queryset(self):
        return policy.visible(self.request.user, Dataset).annotate(case_count=Count("cases", distinct=True))

    def get_serializer_class(self):
        return DatasetUploadSerializer if self.action == "create" else DatasetSerializer

    @extend_schema(request=DatasetUploadSerializer, responses={201: DatasetSerializer})
    def create(self, request, *args, **kwargs):
        form = DatasetUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        dataset = import_dataset(
            data["name"],
            data["file"],
            description=data["description"],
            source_label=data["file"].name,
            is_public=data["is_public"],
            user=request.user,
        )
        dataset.case_count = dataset.cases.count()
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CaseSerializer

    def get_queryset(self):
        cases = policy.visible(self.request.user, Case).prefetch_related("images")
        if (dataset := _id_param(self.request, "dataset")) is not None:
            cases = cases.filter(dataset_id=dataset)
        return cases


class GenerativeModelViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [MultiPartParser, FormParser]
    policy_actions = {"create": "inference.upload_model"}

    def get_queryset(self):
        models = policy.visible(self.request.user, GenerativeModel).select_related("task")
        if task := self.request.query_params.get("task"):
            models = models.filter(task__slug=task)
        return models

    def get_serializer_class(self):
        return ModelUploadSerializer if self.action == "create" else GenerativeModelSerializer

    @extend_schema(request=ModelUploadSerializer, responses={201: GenerativeModelSerializer})
    def create(self, request, *args, **kwargs):
        form = ModelUploadSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        model = register_upload(form.validated_data, user=request.user)
        return Response(GenerativeModelSerializer(model).data, status=status.HTTP_201_CREATED)


class RunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]
    policy_actions = {"create": "inference.start_run", "cancel": "inference.cancel_run"}

    def get_queryset(self):
        runs = policy.visible(self.request.user, Run).select_related("task", "model")
        params = self.request.query_params
        if task := params.get("task"):
            runs = runs.filter(task__slug=task)
        if run_status := params.get("status"):
            runs = runs.filter(status=run_status)
        return runs

    def get_serializer_class(self):
        if self.action == "create":
            return RunCreateSerializer
        return RunDetailSerializer if self.action == "retrieve" else RunSerializer

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        form = RunCreateSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        run = create_run(data["model"], user=request.user, name=data["name"], seed=data["seed"])
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(RunSerializer(cancel_run(self.get_object().pk)).data)

    @extend_schema(responses={200: CaseOutputSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def outputs(self, request, pk=None):
        run = self.get_object()
        outputs = run.outputs.select_related("case").order_by("case__case_id", "sample")
        page = self.paginate_queryset(outputs)
        serializer = CaseOutputSerializer(page if page is not None else outputs, many=True)
        return self.get_paginated_response(serializer.data) if page is not None else Response(serializer.data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path=r"outputs/(?P<output_id>\d+)/array", url_name="output-array")
    def output_array(self, request, pk=None, output_id=None):
        output = self.get_object().outputs.select_related("case").filter(pk=output_id).first()
        if output is None:
            raise NotFound("No such output in this run.")
        filename = f"{output.case.case_id}_sample{output.sample}.npy"
        return FileResponse(output.array.open("rb"), as_attachment=True, filename=filename)


class SubmissionViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Upload precomputed outputs; they become a run once validated."""

    parser_classes = [MultiPartParser, FormParser]
    serializer_class = SubmissionSerializer
    policy_actions = {"create": "inference.submit"}

    def get_queryset(self):
        return policy.visible(self.request.user, Run)

    @extend_schema(request=SubmissionSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        form = SubmissionSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        data = form.validated_data
        run = create_submission(
            data["task"], data["file"], name=data["name"], user=request.user, original_name=data["file"].name
        )
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)
