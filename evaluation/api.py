"""REST API of evaluations, nested under runs: read by whoever sees the run, re-run by staff."""

import csv
import io

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, serializers, status
from rest_framework.renderers import BaseRenderer, BrowsableAPIRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from core import policy
from core.errors import InvalidInput, NotFound
from inference.models import Run, Task

from . import downstream, formatting, leaderboard, services
from .models import CaseResult, Evaluation
from .probes import selectors as probe_selectors
from .serializers import (
    CaseResultSerializer,
    EvaluationSerializer,
    downstream_job_payload,
    downstream_setup_payload,
)


def _visible_run(request, pk):
    return policy.get_visible(request.user, Run, "No such run.", pk=pk)


class RunEvaluationView(APIView):
    """GET the run's evaluation (status, progress, per-run results with CIs); POST (staff) to (re-)run it."""

    policy_actions = {"POST": "evaluation.request_evaluation"}
    policy_messages = {"evaluation.request_evaluation": "Only staff can start an evaluation."}

    @extend_schema(responses=EvaluationSerializer)
    def get(self, request, pk):
        run = _visible_run(request, pk)
        evaluation = Evaluation.objects.filter(run=run).select_related("run").first()
        if evaluation is None:
            raise NotFound("This run has not been evaluated.")
        return Response(EvaluationSerializer(evaluation).data)

    @extend_schema(request=None, responses={202: EvaluationSerializer})
    def post(self, request, pk):
        evaluation = services.request_evaluation(_visible_run(request, pk), user=request.user)
        return Response(EvaluationSerializer(evaluation).data, status=status.HTTP_202_ACCEPTED)


class RunCaseResultsView(generics.ListAPIView):
    """Per-case pixel metrics of a run (mean over samples), with the reason for every case left out."""

    serializer_class = CaseResultSerializer

    def get_queryset(self):
        run = _visible_run(self.request, self.kwargs["pk"])
        return CaseResult.objects.filter(run=run).select_related("case").order_by("case__case_id")


class CSVRenderer(BaseRenderer):
    """`?format=csv`: the view hands over a list of rows (the first one the header)."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if isinstance(data, dict):  # an error: {"detail": ...}
            writer.writerow(["detail"])
            writer.writerow([data.get("detail", "")])
        else:
            writer.writerows([formatting.spreadsheet_safe(cell) for cell in row] for row in data)
        return buffer.getvalue().encode("utf-8")


def _visible_task(request, slug):
    return policy.get_visible(request.user, Task, "No such task.", slug=slug)


def _attachment(response, request, name):
    if request.accepted_renderer.format == "csv":
        response["Content-Disposition"] = f'attachment; filename="{name}.csv"'
    return response


class TaskLeaderboardView(APIView):
    """The task's leaderboard: runs ranked, every metric with its CI, the paired test against the leader,
    rank stability under bootstrap of cases. `?ranking=primary|mean_rank&metrics=psnr,frd:radiomics`;
    `?format=csv` for a flat table; `?compare=A,B` for two runs compared with the same paired test."""

    renderer_classes = [JSONRenderer, CSVRenderer, BrowsableAPIRenderer]
    pagination_class = None

    @extend_schema(
        parameters=[
            OpenApiParameter("ranking", str, enum=list(leaderboard.RANKING_METHODS)),
            OpenApiParameter("metrics", str, description="Comma-separated column keys for the mean rank."),
            OpenApiParameter(
                "compare",
                str,
                description="Two run ids of the board, `A,B`: A − B on each per-case metric with the board's paired "
                "test (Wilcoxon p, Holm over the metrics, bootstrap CI of the mean difference) instead of the board.",
            ),
        ],
        responses={200: dict},
    )
    def get(self, request, slug):
        task = _visible_task(request, slug)
        method, chosen = leaderboard.requested_ranking(request.query_params, task)
        if method is None:
            known = ", ".join(leaderboard.RANKING_METHODS)
            raise InvalidInput(f"Unknown ranking '{request.query_params.get('ranking')}'. Choose one of: {known}.")
        pair = leaderboard.requested_pair(request.query_params)
        board = leaderboard.build(
            task, method=method, chosen=chosen, private=policy.can(request.user, "inference.manage_task", task)
        )
        if pair is not None:
            comparison = leaderboard.compare_runs(task, board, *pair)
            if request.accepted_renderer.format == "csv":
                return _attachment(Response(leaderboard.comparison_csv_rows(comparison)), request, f"{task.slug}-pair")
            return Response({"task": task.slug, "comparison": comparison})
        renderer = request.accepted_renderer

        def data():
            return list(leaderboard.csv_rows(board)) if renderer.format == "csv" else leaderboard.as_dict(board, task)

        if renderer.format in ("csv", "json"):
            # The board is immutable once built: render it once, then serve the bytes.
            if renderer.format not in board.rendered:
                board.rendered[renderer.format] = renderer.render(data(), renderer.media_type)
            response = HttpResponse(board.rendered[renderer.format], content_type=renderer.media_type)
            return _attachment(response, request, f"{task.slug}-leaderboard")
        return Response(data())


class TaskCaseResultsView(APIView):
    """Every per-case result of the task's succeeded runs (`?format=csv` for a flat table)."""

    renderer_classes = [JSONRenderer, CSVRenderer, BrowsableAPIRenderer]
    pagination_class = None

    @extend_schema(responses={200: dict})
    def get(self, request, slug):
        task = _visible_task(request, slug)
        metrics, rows = leaderboard.case_rows(task, policy.visible(request.user, Run))
        if request.accepted_renderer.format == "csv":
            fixed = ["run_id", "run", "model", "case_id", "status", "problem", "samples"]
            table = [fixed + metrics + ["uncertainty_mean", "uncertainty_p95"]]
            for row in rows:
                table.append(
                    [row[key] for key in fixed]
                    + [row["values"].get(key, "") if row["values"].get(key) is not None else "" for key in metrics]
                    + [_blank(row["uncertainty_mean"]), _blank(row["uncertainty_p95"])]
                )
            return _attachment(Response(table), request, f"{task.slug}-case-results")
        return Response({"task": task.slug, "metrics": metrics, "results": rows})


def _blank(value):
    return "" if value is None else value


# --------------------------------------------------------------- downstream-task tier (clinical)


class RunDownstreamView(APIView):
    """GET the run's downstream job (status; progress: seed, epoch, loss; results with CIs; the real→real
    reference); POST (staff) to (re-)start it on a succeeded run of a task that declared one."""

    policy_actions = {"POST": "evaluation.request_downstream"}
    policy_messages = {"evaluation.request_downstream": "Only staff can start a downstream job."}

    @extend_schema(responses={200: dict})
    def get(self, request, pk):
        job = downstream.job_of(_visible_run(request, pk))
        if job is None:
            raise NotFound("This run has no downstream job.")
        return Response(downstream_job_payload(job))

    @extend_schema(request=None, responses={202: dict})
    def post(self, request, pk):
        job = downstream.request_downstream(_visible_run(request, pk), user=request.user)
        return Response(downstream_job_payload(job), status=status.HTTP_202_ACCEPTED)


class RunDownstreamCancelView(APIView):
    """POST (staff): cancel the run's queued or running downstream job (409 if it is already final)."""

    policy_actions = {"POST": "evaluation.cancel_downstream"}
    policy_messages = {"evaluation.cancel_downstream": "Only staff can cancel a downstream job."}

    @extend_schema(request=None, responses={200: dict})
    def post(self, request, pk):
        job = downstream.job_of(_visible_run(request, pk))
        if job is None:
            raise NotFound("This run has no downstream job.")
        return Response(downstream_job_payload(downstream.cancel_downstream(job.pk)))


class TaskDownstreamView(APIView):
    """GET the task's downstream evaluation: configuration, seeds, the frozen split, the real→real reference."""

    @extend_schema(responses={200: dict})
    def get(self, request, slug):
        task = policy.visible(request.user, Task).filter(slug=slug).first()
        setup = downstream.setup_of(task) if task else None
        if setup is None:
            raise NotFound("This task has no downstream evaluation.")
        return Response(downstream_setup_payload(setup))


class IntervalSerializer(serializers.Serializer):
    estimate = serializers.FloatField(allow_null=True, help_text="The rate (0–1).")
    low = serializers.FloatField(allow_null=True, help_text="Percentile bootstrap 95 % CI over probe cases.")
    high = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(help_text="Probe cases the rate is over.")


class ProbeScoreSerializer(serializers.Serializer):
    run = serializers.IntegerField(help_text="The main run (on the leaderboard).")
    probe_run = serializers.IntegerField(help_text="Its latest scored probe run.")
    probe_set = serializers.IntegerField()
    samples_per_case = serializers.IntegerField()
    hallucination_index = IntervalSerializer(
        allow_null=True, help_text="Rate of invented structures per absent-truth probe case (lower is better)."
    )
    invented = serializers.DictField(child=IntervalSerializer(), help_text="Probe kind → invented rate.")
    omitted = serializers.DictField(child=IntervalSerializer(), help_text="Inserted probe kind → omission rate.")
    counts = serializers.DictField(child=serializers.IntegerField(), help_text="Outcome → samples scored so.")
    probe_cases = serializers.IntegerField()
    sd_auc = serializers.FloatField(
        allow_null=True, help_text="Stochastic runs: the SD map's AUC for hallucinated pixels (null otherwise)."
    )
    page = serializers.CharField(help_text="The task's probe analysis page.")


def _interval(ci):
    return None if not ci else {key: ci.get(key) for key in ("estimate", "low", "high", "n")}


class TaskProbeScoresView(APIView):
    """GET the hallucination index (and rates per probe kind) of each run on the task's leaderboard that has a
    scored probe run: whoever sees the leaderboard sees these numbers."""

    @extend_schema(responses=ProbeScoreSerializer(many=True))
    def get(self, request, slug):
        task = _visible_task(request, slug)
        page = probe_selectors.page_url(task)
        rows = []
        for run, score in probe_selectors.board_scores(task, request.user):
            index = score.index or {}
            rows.append(
                {
                    "run": run.pk,
                    "probe_run": score.run_id,
                    "probe_set": score.probe_set_id,
                    "samples_per_case": score.run.samples_per_case,
                    "hallucination_index": _interval(index.get("index")),
                    "invented": {k: _interval(v) for k, v in index.get("invented", {}).items()},
                    "omitted": {k: _interval(v) for k, v in index.get("omitted", {}).items()},
                    "counts": index.get("counts", {}),
                    "probe_cases": index.get("probe_cases") or 0,
                    "sd_auc": (score.uncertainty or {}).get("sd_auc"),
                    "page": page,
                }
            )
        return Response(ProbeScoreSerializer(rows, many=True).data)
