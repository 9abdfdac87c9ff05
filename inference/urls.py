from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from . import api, import_views, views
from .viewer import array_routes

router = DefaultRouter()
router.APIRootView = api.ApiRootView
router.register("tasks", api.TaskViewSet, basename="api-task")
router.register("datasets", api.DatasetViewSet, basename="api-dataset")
router.register("cases", api.CaseViewSet, basename="api-case")
router.register("models", api.GenerativeModelViewSet, basename="api-model")
router.register("runs", api.RunViewSet, basename="api-run")
router.register("submissions", api.SubmissionViewSet, basename="api-submission")

urlpatterns = [
    path("", views.home, name="home"),
    path("tasks/<slug:slug>/", views.task_detail, name="task-detail"),
    path("tasks/<slug:slug>/submit/", views.task_submit, name="task-submit"),
    path("tasks/<slug:slug>/join/", views.task_join, name="task-join"),
    path("tasks/<slug:slug>/members/<int:member_id>/", views.member_decide, name="task-member-decide"),
    path("submissions/mine/", views.my_submissions, name="my-submissions"),
    path("runs/<int:pk>/visibility/", views.run_hide, name="run-hide"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset-detail"),
    path("datasets/import/", import_views.dataset_import, name="dataset-import"),
    path("datasets/imports/<uuid:uid>/", import_views.dataset_import_detail, name="dataset-import-detail"),
    path("datasets/imports/<uuid:uid>/status/", import_views.dataset_import_status, name="dataset-import-status"),
    path("cases/<int:pk>/", views.case_detail, name="case-detail"),
    path("cases/<int:pk>/<str:role>/<int:index>.png", views.case_image_png, name="case-image-png"),
    path("models/", views.model_list, name="model-list"),
    path("models/new/", views.model_upload, name="model-upload"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("models/<int:pk>/run/", views.model_start_run, name="model-start-run"),
    path("models/<int:pk>/delete/", views.model_delete, name="model-delete"),
    path("runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("runs/<int:pk>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:pk>/outputs/<int:output_pk>.png", views.output_png, name="output-png"),
    # The image viewer (inference/viewer.py): array header + raw float32 endpoints (the compare page is
    # the evaluation's: it shows the case's metrics).
    *array_routes("api/arrays/case-images/<int:pk>/", "case-image"),
    *array_routes("api/arrays/outputs/<int:pk>/", "output"),
    *array_routes("api/arrays/outputs/<int:pk>/difference/", "difference"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # The schema browsable offline: Swagger UI and Redoc from drf-spectacular-sidecar's static files.
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", api.ApiRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("api/", include(router.urls)),
]
