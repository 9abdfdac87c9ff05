"""REST API of evaluations, nested under runs: read by whoever sees the run, re-run by staff."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound
from rest_framework.response import Response
from rest_framework.views import APIView

from inference import access
from inference.api_errors import BadRequest
from inference.permissions import user_is_staff

from . import services
from .models import CaseResult, Evaluation
from .serializers import CaseResultSerializer, EvaluationSerializer


def _visible_run(request, pk):
    run = access.visible_runs(request.user).filter(pk=pk).first()
    if run is None:
        raise NotFound("No such run.")
    return run


class RunEvaluationView(APIView):
    """GET the run's evaluation (status, progress, per-run results with CIs); POST (staff) to (re-)run it."""

    @extend_schema(responses=EvaluationSerializer)
    def get(self, request, pk):
        run = _visible_run(request, pk)
        evaluation = Evaluation.objects.filter(run=run).select_related("run").first()
        if evaluation is None:
            raise NotFound("This run has not been evaluated.")
        return Response(EvaluationSerializer(evaluation).data)

    @extend_schema(request=None, responses={202: EvaluationSerializer})
    def post(self, request, pk):
        if not user_is_staff(request.user):
            return Response({"detail": "Only staff can start an evaluation."}, status=status.HTTP_403_FORBIDDEN)
        run = _visible_run(request, pk)
        try:
            evaluation = services.request_evaluation(run, user=request.user)
        except services.EvaluationError as exc:
            raise BadRequest(str(exc)) from None
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_202_ACCEPTED)


class RunCaseResultsView(generics.ListAPIView):
    """Per-case pixel metrics of a run (mean over samples), with the reason for every case left out."""

    serializer_class = CaseResultSerializer

    def get_queryset(self):
        run = _visible_run(self.request, self.kwargs["pk"])
        return CaseResult.objects.filter(run=run).select_related("case").order_by("case__case_id")
