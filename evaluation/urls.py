from django.urls import path

from inference.viewer import array_routes

from . import api, probe_viewer, task_views, viewer, views

urlpatterns = [
    # The viewer of a run's case (evaluation/viewer.py) and its SD-map array endpoints.
    path("runs/<int:run_pk>/cases/<int:case_pk>/", viewer.run_case, name="run-case"),
    path("cases/<int:case_pk>/compare/", viewer.case_compare, name="case-compare"),
    *array_routes("api/arrays/case-results/<int:pk>/uncertainty/", "uncertainty"),
    # The probe viewer (evaluation/probe_viewer.py): a probe run's case with its truth region, and its arrays.
    path("runs/<int:run_pk>/probes/<int:case_pk>/", probe_viewer.probe_case, name="probe-case"),
    *array_routes("api/arrays/probe-cases/<int:pk>/truth/", "probe-truth"),
    *array_routes("api/arrays/outputs/<int:pk>/samples-sd/", "samples-sd"),
    # The organisers' task pages (evaluation/task_views.py): the form knows the metric catalogue.
    path("tasks/new/", task_views.task_create, name="task-create"),
    path("tasks/<slug:slug>/settings/", task_views.task_edit, name="task-edit"),
    path("tasks/<slug:slug>/leaderboard/", views.task_leaderboard, name="task-leaderboard"),
    path("api/tasks/<slug:slug>/leaderboard/", api.TaskLeaderboardView.as_view(), name="api-task-leaderboard"),
    path("api/tasks/<slug:slug>/case-results/", api.TaskCaseResultsView.as_view(), name="api-task-case-results"),
    path("runs/<int:pk>/evaluate/", views.run_evaluate, name="run-evaluate"),
    path(
        "runs/<int:pk>/case-results/<int:result_pk>/uncertainty.png",
        views.uncertainty_png,
        name="case-result-uncertainty-png",
    ),
    path("api/runs/<int:pk>/evaluation/", api.RunEvaluationView.as_view(), name="api-run-evaluation"),
    path("api/runs/<int:pk>/case-results/", api.RunCaseResultsView.as_view(), name="api-run-case-results"),
    # Downstream-task tier (clinical): train on synthetic, test on real.
    path("runs/<int:pk>/downstream/", views.run_downstream_start, name="run-downstream"),
    path("runs/<int:pk>/downstream/cancel/", views.run_downstream_cancel, name="run-downstream-cancel"),
    path("runs/<int:pk>/downstream/curves/", views.run_downstream_curves, name="run-downstream-curves"),
    path("tasks/<slug:slug>/downstream/curves/", views.task_downstream_curves, name="task-downstream-curves"),
    path("api/runs/<int:pk>/downstream/", api.RunDownstreamView.as_view(), name="api-run-downstream"),
    path(
        "api/runs/<int:pk>/downstream/cancel/", api.RunDownstreamCancelView.as_view(), name="api-run-downstream-cancel"
    ),
    path("api/tasks/<slug:slug>/downstream/", api.TaskDownstreamView.as_view(), name="api-task-downstream"),
    path("api/tasks/<slug:slug>/probe-scores/", api.TaskProbeScoresView.as_view(), name="api-task-probe-scores"),
]
