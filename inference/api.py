"""REST API: tasks, datasets, cases, models, runs, submissions.

Reads are whatever `core.policy` lets the user see; every write names its action in
`policy_actions`, answered by the rules in `inference/permissions.py` (organisers manage their
tasks, participants join and submit, staff everything). Services raise the platform's errors, which
`core.responses` turns into 4xx answers with a `detail`.
"""

from django.db.models import Count, ProtectedError
from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from drf_spectacular.views import SpectacularRedocView
from rest_framework import mixins, routers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.reverse import reverse

from core import policy
from core.errors import Conflict, InvalidInput, NotFound
from core.parsers import SafeJSONParser
from core.serializers import MAX_PK, job_progress

from . import selectors
from .models import (
    VALIDATED,
    Case,
    CaseOutput,
    Dataset,
    GenerativeModel,
    MemberRole,
    ModelFamily,
    ModelValidation,
    Run,
    Task,
)
from .serializers import (
    CaseOutputSerializer,
    CaseSerializer,
    DatasetSerializer,
    DatasetUploadSerializer,
    DecisionSerializer,
    GenerativeModelSerializer,
    HideSerializer,
    MembershipSerializer,
    ModelUploadSerializer,
    RunCreateSerializer,
    RunDetailSerializer,
    RunSerializer,
    SubmissionSerializer,
    SweepCancelSerializer,
    SweepSerializer,
    TaskSerializer,
)
from .services import participation
from .services.artifacts import register_upload
from .services.datasets import import_dataset
from .services.inputs import inputs_archive
from .services.runs import cancel_run, create_run
from .services.sweeps import cancel_sweep, start_sweep


class ApiRootView(routers.APIRootView):
    """The MedGen Eval API: benchmark tasks, datasets and cases, generative models, runs and submissions,
    evaluations and leaderboards, the viewer's image arrays, and reader studies.

    Authenticate with `Authorization: Token …` (from `POST /api/auth/token/`) or a session login. Every
    operation is described in the OpenAPI schema (`schema`), browsable in Swagger UI (`docs`) and Redoc
    (`redoc`), all served by this site.
    """

    def get(self, request, *args, **kwargs):
        links = {
            "schema": reverse("api-schema", request=request),
            "docs": reverse("api-docs", request=request),
            "redoc": reverse("api-redoc", request=request),
        }
        return Response({**links, **super().get(request, *args, **kwargs).data})


class ApiRedocView(SpectacularRedocView):
    """Redoc from drf-spectacular-sidecar's bundle. The bundle always draws Redocly's logo from cdn.redoc.ly:
    this page's own Content-Security-Policy (`/api/` has none from the site's) keeps every request on this
    site, and the logo, refused, is left out (Redoc hides it when it fails to load)."""

    template_name = "api/redoc.html"
    schema = None  # not an operation of the API
    POLICY = (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'self'"
    )

    def get(self, request, *args, **kwargs):
        response = super().get(request, *args, **kwargs)
        response["Content-Security-Policy"] = self.POLICY
        return response


class TaskViewSet(viewsets.ModelViewSet):
    serializer_class = TaskSerializer
    lookup_field = "slug"
    policy_actions = {
        "create": "inference.create_task",
        **{name: "inference.manage_task" for name in ("update", "partial_update", "destroy")},
        "join": "inference.join",
        "inputs": "inference.download_inputs",
        "members": "inference.manage_members",
        "decide_member": "inference.manage_members",
    }

    def get_queryset(self):
        return policy.visible(self.request.user, Task)

    def perform_create(self, serializer):
        """A task created by an organiser of another task (not staff) has them as its organiser."""
        task = serializer.save()
        if not policy.is_staff(self.request.user):
            participation.add_organiser(task, user=self.request.user)

    @extend_schema(request=None, responses={201: MembershipSerializer, 200: MembershipSerializer})
    @action(detail=True, methods=["post"])
    def join(self, request, slug=None):
        """Take part: accepted at once, or pending until an organiser approves (the task's join policy).
        201 when this request made the membership; 200 with the same membership when asked again."""
        task = self.get_object()
        existed = task.memberships.filter(user=request.user).exists()
        membership = participation.join_task(task, user=request.user)
        code = status.HTTP_200_OK if existed else status.HTTP_201_CREATED
        return Response(MembershipSerializer(membership).data, status=code)

    @extend_schema(responses={(200, "application/zip"): bytes})
    @action(detail=True, methods=["get"])
    def inputs(self, request, slug=None):
        """The test inputs as a zip of `<case_id>.npy` files (the inputs' channels in order), the names a
        submission of outputs uses."""
        task = self.get_object()
        archive = inputs_archive(task)
        return FileResponse(archive, as_attachment=True, filename=f"{task.slug}-inputs.zip")

    @extend_schema(responses={200: MembershipSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def members(self, request, slug=None):
        """Organisers: the task's organisers and participants, with their status."""
        task = self.get_object()
        memberships = task.memberships.select_related("user").order_by("role", "user__username")
        return Response(MembershipSerializer(memberships, many=True).data)

    @extend_schema(request=DecisionSerializer, responses={200: MembershipSerializer})
    @action(detail=True, methods=["post"], url_path=r"members/(?P<member_id>\d+)/decide", url_name="decide-member")
    def decide_member(self, request, slug=None, member_id=None):
        """Organisers: {"accept": true|false} for a participant."""
        task = self.get_object()
        form = DecisionSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        membership = task.memberships.filter(pk=member_id, role=MemberRole.PARTICIPANT).first()
        if membership is None:
            raise NotFound("No such participant of this task.")
        membership = participation.decide_membership(membership, accept=form.validated_data["accept"], by=request.user)
        return Response(MembershipSerializer(membership).data)

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
        datasets = policy.visible(self.request.user, Dataset).select_related("private_to")
        return datasets.annotate(case_count=Count("cases", distinct=True))

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
        cases = selectors.cases_with_images(self.request.user, policy.visible(self.request.user, Case))
        if (dataset := _id_param(self.request, "dataset")) is not None:
            cases = cases.filter(dataset_id=dataset)
        return cases


class GenerativeModelViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]
    policy_actions = {
        "create": "inference.upload_model",
        "sweep": "inference.start_run",
        "cancel_sweep": "inference.start_run",
    }

    def get_queryset(self):
        models = policy.visible(self.request.user, GenerativeModel).select_related("task")
        if task := self.request.query_params.get("task"):
            models = models.filter(task__slug=task)
        if family := self.request.query_params.get("family"):
            if family not in ModelFamily.values:
                raise InvalidInput(f"'family' must be one of {', '.join(ModelFamily.values)}, got {family!r}.")
            models = models.filter(family=family)
        return models

    def get_serializer_class(self):
        if self.action == "sweep":
            return SweepSerializer
        if self.action == "cancel_sweep":
            return SweepCancelSerializer
        return ModelUploadSerializer if self.action == "create" else GenerativeModelSerializer

    @extend_schema(request=SweepSerializer, responses={200: RunSerializer(many=True)})
    @action(detail=True, methods=["post"])
    def sweep(self, request, pk=None):
        """A diffusion noise predictor's sampling sweep: one run per number of steps (e.g. [5, 10, 25, 50]),
        all with the same scheduler, samples per case and seed. The same sweep asked again starts nothing
        new (a setting whose run failed or was cancelled gets a new run); the runs, in the order of `steps`."""
        model = self.get_object()
        form = SweepSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        runs = start_sweep(model, user=request.user, **form.validated_data)
        return Response(RunSerializer(runs, many=True).data)

    @extend_schema(request=SweepCancelSerializer, responses={200: RunSerializer(many=True)})
    @action(detail=True, methods=["post"], url_path="sweep/cancel", url_name="sweep-cancel")
    def cancel_sweep(self, request, pk=None):
        """Cancel the sweep's runs that have not finished ({"sweep": its name}); the runs cancelled."""
        model = self.get_object()
        form = SweepCancelSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(RunSerializer(cancel_sweep(model, form.validated_data["sweep"]), many=True).data)

    @extend_schema(request=ModelUploadSerializer, responses={201: GenerativeModelSerializer})
    def create(self, request, *args, **kwargs):
        form = ModelUploadSerializer(data=request.data, context={"request": request})
        form.is_valid(raise_exception=True)
        policy.require(request.user, "inference.upload_model", form.validated_data["task"])
        model = register_upload(form.validated_data, user=request.user)
        return Response(GenerativeModelSerializer(model).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    @action(detail=True, methods=["get"])
    def validation(self, request, pk=None):
        """The model's validation job (status, phase, error, times) with `model_status`; `is_final` is
        true once the validation has decided the model's status (valid or invalid): the model page
        polls this and shows the outcome then."""
        model = self.get_object()
        job = ModelValidation.objects.filter(model=model).first()
        body = job_progress(job) if job is not None else {"status": model.status, "error": ""}
        body["model_status"] = model.status
        body["is_final"] = model.status in VALIDATED
        body["error"] = model.validation_error or body["error"]
        return Response(body)


class RunViewSet(mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    parser_classes = [SafeJSONParser, MultiPartParser, FormParser]
    policy_actions = {
        "create": "inference.start_run",
        "cancel": "inference.cancel_run",
        "hide": "inference.moderate_run",
        "unhide": "inference.moderate_run",
    }

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
        policy.require(request.user, "inference.start_run", data["model"])
        run = create_run(
            data["model"],
            user=request.user,
            name=data["name"],
            seed=data["seed"],
            sampling_steps=data["sampling_steps"],
            scheduler=data["scheduler"],
            samples_per_case=data["samples_per_case"],
        )
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return Response(RunSerializer(cancel_run(self.get_object().pk)).data)

    @extend_schema(request=HideSerializer, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def hide(self, request, pk=None):
        """Organisers: take the run off the leaderboard with a reason (it is kept)."""
        run = self.get_object()
        form = HideSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        return Response(
            RunSerializer(participation.hide_run(run, reason=form.validated_data["reason"], by=request.user)).data
        )

    @extend_schema(request=None, responses={200: RunSerializer})
    @action(detail=True, methods=["post"])
    def unhide(self, request, pk=None):
        return Response(RunSerializer(participation.unhide_run(self.get_object(), by=request.user)).data)

    @extend_schema(responses={200: CaseOutputSerializer(many=True)})
    @action(detail=True, methods=["get"])
    def outputs(self, request, pk=None):
        run = self.get_object()
        outputs = policy.visible(request.user, CaseOutput).filter(run=run).select_related("case")
        outputs = outputs.order_by("case__case_id", "sample")
        page = self.paginate_queryset(outputs)
        serializer = CaseOutputSerializer(page if page is not None else outputs, many=True)
        return self.get_paginated_response(serializer.data) if page is not None else Response(serializer.data)

    @extend_schema(responses={(200, "application/octet-stream"): bytes})
    @action(detail=True, methods=["get"], url_path=r"outputs/(?P<output_id>\d+)/array", url_name="output-array")
    def output_array(self, request, pk=None, output_id=None):
        run = self.get_object()
        output = policy.visible(request.user, CaseOutput).filter(run=run, pk=output_id).select_related("case").first()
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
        policy.require(request.user, "inference.submit", data["task"])
        run = participation.submit(
            data["task"], data["file"], name=data["name"], user=request.user, original_name=data["file"].name
        )
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)
