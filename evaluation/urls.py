from django.urls import path

from . import api, views

urlpatterns = [
    path("runs/<int:pk>/evaluate/", views.run_evaluate, name="run-evaluate"),
    path(
        "runs/<int:pk>/case-results/<int:result_pk>/uncertainty.png",
        views.uncertainty_png,
        name="case-result-uncertainty-png",
    ),
    path("api/runs/<int:pk>/evaluation/", api.RunEvaluationView.as_view(), name="api-run-evaluation"),
    path("api/runs/<int:pk>/case-results/", api.RunCaseResultsView.as_view(), name="api-run-case-results"),
]
