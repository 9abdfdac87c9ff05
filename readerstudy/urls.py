from django.urls import path

from . import views

urlpatterns = [
    path("studies/", views.study_list, name="study-list"),
    path("studies/new/", views.study_create, name="study-create"),
    path("studies/<int:pk>/", views.study_detail, name="study-detail"),
    path("studies/<int:pk>/edit/", views.study_edit, name="study-edit"),
    path("studies/<int:pk>/analysis/", views.study_analysis, name="study-analysis"),
    path("studies/<int:pk>/answers.csv", views.study_export, name="study-export"),
    path("studies/<int:pk>/invitations/", views.invitation_create, name="study-invitation-create"),
    path(
        "studies/<int:pk>/invitations/<int:invitation_pk>/revoke/",
        views.invitation_revoke,
        name="study-invitation-revoke",
    ),
    path("studies/<int:pk>/<slug:action>/", views.study_action, name="study-action"),
    path("tasks/<slug:slug>/probes/", views.task_probes, name="task-probes"),
    path("api/studies/<int:pk>/analysis/", views.study_analysis_json, name="api-study-analysis"),
    # The reader's side: their studies, joining by a link, the study by its uuid, items and images by tokens.
    path("reading/", views.my_reading, name="my-reading"),
    path("reading/landing/", views.reading_landing, name="reading-landing"),
    path("invite/<str:token>/", views.invitation, name="study-invitation"),
    path("read/<uuid:uid>/", views.workspace, name="read-workspace"),
    path("api/read/<uuid:uid>/state/", views.read_state, name="read-state"),
    path("api/read/<uuid:uid>/answers/", views.read_answer, name="read-answer"),
    path("api/read/<uuid:uid>/draft/", views.read_draft, name="read-draft"),
    path("api/read/items/<str:token>/images/<int:slot>/", views.read_image, name="read-image"),
    path("api/read/items/<str:token>/images/<int:slot>/data/", views.read_image_data, name="read-image-data"),
]
