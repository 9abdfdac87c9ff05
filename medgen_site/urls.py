from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("core.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("readerstudy.urls")),
    path("", include("evaluation.urls")),
    path("", include("inference.urls")),
]
