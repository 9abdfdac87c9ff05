"""REST API: tasks, datasets, cases, models, runs, submissions.

Reads are open for public (demo) tasks; every write is staff-only (see permissions).
"""

from django.db.models import Count
from django.http import FileResponse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from . import access
from .api_errors import BadRequest
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
from .services.artifacts import ModelUploadError, register_upload
from .services.datasets import DatasetImportError, import_dataset
from .services.runs import RunError, cancel_run, create_run
from .services.submissions import create_submission


class TaskViewSet(viewsets.ModelViewSet):
    serializer_class = TaskSerializer
    lookup_field = "slug"

    def get_queryset(self):
        return access.visible_tasks(self.request.user)


class DatasetViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        return access.visible_datasets(self.request.user).annotate(case_count=Count("cases", distinct=True))

    def get_serializer_class(self):
        return DatasetUploadSerializer if self.action == "create" else DatasetSerializer

    @extend_schema(request=DatasetUploadSerializer, responses={201: DatasetSerializer})
    def create(self, request, *args, **kwargs):
        form = DatasetUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            dataset = import_dataset(
                data["name"],
                data["file"],
                description=data["description"],
                source_label=data["file"].name,
                is_public=data["is_public"],
                user=request.user,
            )
        except DatasetImportError as exc:
            errors = [str(e) for e in getattr(exc, "errors", [])] or [str(exc)]
            return Response(
                {"detail": "The dataset was not imported; nothing was stored.", "errors": errors},
                status=status.HTTP_400_BAD_REQUEST,
            )
        dataset.case_count = dataset.cases.count()
        return Response(DatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class CaseViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = CaseSerializer

    def get_queryset(self):
        cases = access.visible_cases(self.request.user).prefetch_related("images")
        if dataset := self.request.query_params.get("dataset"):
            cases = cases.filter(dataset_id=dataset)
        return cases


class GenerativeModelViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self):
        models = access.visible_models(self.request.user).select_related("task")
        if task := self.request.query_params.get("task"):
            models = models.filter(task__slug=task)
        return models

    def get_serializer_class(self):
        return ModelUploadSerializer if self.action == "create" else GenerativeModelSerializer

    @extend_schema(request=ModelUploadSerializer, responses={201: GenerativeModelSerializer})
    def create(self, request, *args, **kwargs):
        form = ModelUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            model = register_upload(data, user=request.user)
        except ModelUploadError as exc:
            raise BadRequest(str(exc)) from None
        return Response(GenerativeModelSerializer(model).data, status=status.HTTP_201_CREATED)


class RunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [JSONParser, MultiPartParser, FormParser]

    def get_queryset(self):
        runs = access.visible_runs(self.request.user).select_related("task", "model")
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
        form = RunCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            run = create_run(data["model"], user=request.user, name=data["name"], seed=data["seed"])
        except RunError as exc:
            raise BadRequest(str(exc)) from None
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        run = self.get_object()
        try:
            run = cancel_run(run.pk)
        except RunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        return Response(RunSerializer(run).data)

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
        run = self.get_object()
        output = run.outputs.select_related("case").filter(pk=output_id).first()
        if output is None:
            return Response({"detail": "No such output in this run."}, status=status.HTTP_404_NOT_FOUND)
        filename = f"{output.case.case_id}_sample{output.sample}.npy"
        return FileResponse(output.array.open("rb"), as_attachment=True, filename=filename)


class SubmissionViewSet(mixins.CreateModelMixin, viewsets.GenericViewSet):
    """Upload precomputed outputs; they become a run once validated."""

    parser_classes = [MultiPartParser, FormParser]
    serializer_class = SubmissionSerializer

    def get_queryset(self):
        return access.visible_runs(self.request.user)

    @extend_schema(request=SubmissionSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        form = SubmissionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        try:
            run = create_submission(
                data["task"], data["file"], name=data["name"], user=request.user, original_name=data["file"].name
            )
        except RunError as exc:
            raise BadRequest(str(exc)) from None
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)
