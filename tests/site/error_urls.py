"""The site's URLs plus two views that fail, for the error-page tests (ROOT_URLCONF in those tests only)."""

from django.core.exceptions import PermissionDenied
from django.urls import path

from medgen_site.urls import handler400, handler403, handler404, handler500, urlpatterns  # noqa: F401


def forbidden(request):
    raise PermissionDenied


def crash(request):
    raise RuntimeError("secret-internal-detail /srv/medgen/settings.py")


urlpatterns = [path("test-forbidden/", forbidden), path("test-crash/", crash), *urlpatterns]
