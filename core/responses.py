"""The one error-mapping layer: the platform's errors (and Django's 404/403) as HTTP answers.

`api_exception_handler` (DRF's EXCEPTION_HANDLER) and `json_errors` (for the plain Django JSON
views: array bytes, the reader's endpoints) give the same status codes and the same body:
{"detail": message}, plus "errors": [...] when there are several.
"""

import functools

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import render
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from .error_pages import page_message
from .errors import DomainError, NotAuthenticated, PermissionDenied


def error_response_data(exc):
    """(status, body, headers) for an exception this module maps, else None."""
    if isinstance(exc, DomainError):
        body = {"detail": exc.detail}
        if exc.errors:
            body["errors"] = exc.errors
        return exc.status_code, body, exc.headers
    if isinstance(exc, Http404):
        message = str(exc) if exc.args and "matches the given query" not in str(exc) else "Not found."
        return 404, {"detail": message}, {}
    if isinstance(exc, DjangoPermissionDenied):
        return 403, {"detail": str(exc) or PermissionDenied.default_detail}, {}
    return None


def api_exception_handler(exc, context):
    """DRF's handler with the platform's errors added; a body always carries a readable `detail`."""
    mapped = error_response_data(exc) if isinstance(exc, DomainError) else None
    if mapped is not None:
        status, body, headers = mapped
        return Response(body, status=status, headers=headers)
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "The request is not valid.", "errors": response.data}
    elif response is not None and isinstance(response.data, list):
        response.data = {"detail": "The request is not valid.", "errors": response.data}
    return response


def json_errors(view):
    """Plain Django JSON views: the mapped errors as JSON bodies with their status codes."""

    @functools.wraps(view)
    def wrapper(request, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except (DomainError, Http404, DjangoPermissionDenied) as exc:
            status, body, headers = error_response_data(exc)
            response = JsonResponse(body, status=status)
            for key, value in headers.items():
                response[key] = value
            return response

    return wrapper


class DomainErrorMiddleware:
    """A platform error that reaches no handler of its own becomes its status code with the message:
    JSON under /api/, else the site's error page (never a 500 for a request the client can fix)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        status, body, headers = error_response_data(exception)
        if request.path.startswith("/api/"):
            response = JsonResponse(body, status=status)
        elif isinstance(exception, NotAuthenticated):
            return redirect_to_login(request.get_full_path())
        else:
            message = page_message(status, exception.detail)
            response = render(request, "error.html", {"status": status, "message": message}, status=status)
        for key, value in headers.items():
            response[key] = value
        return response
