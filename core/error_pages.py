"""The site's 400/403/404/500 answers (Django's `handler400` … `handler500`): a page in the site's layout
with a way back (the tasks; a reader's reading), or JSON under /api/. A 500 never shows a traceback
(DEBUG is off wherever these handlers run); if even the page fails to render, a plain one is sent."""

import logging

from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

from .errors import DomainError

log = logging.getLogger(__name__)

DEFAULT_MESSAGES = {
    400: "The request could not be understood.",
    403: "You do not have permission to see this page.",
    404: "There is no page here, or it is not visible to you.",
    500: "Something went wrong on our side; it has been logged. Try again, or go back.",
}

PLAIN_500 = (
    "<!doctype html><html lang=en><head><meta charset=utf-8><title>Server error · MedGen Eval</title></head>"
    '<body><h1>Something went wrong</h1><p>It has been logged. <a href="/">Back to the tasks</a></p></body></html>'
)


#: The errors' generic texts: a page says more than "Not found." under the heading "Not found".
GENERIC = {"Not found.", "You do not have permission to do this."}


def page_message(status, detail):
    """The message an error page shows for an error's `detail`."""
    return DEFAULT_MESSAGES.get(status, detail) if not detail or detail in GENERIC else detail


def _message(status, exception):
    """A message written for the user (a platform error's, or an Http404/PermissionDenied's own text);
    else the default. The resolver's 404 carries the URL patterns tried: never shown."""
    if isinstance(exception, DomainError):
        return page_message(status, exception.detail)
    text = exception.args[0] if exception is not None and exception.args else None
    if isinstance(text, str) and text and "matches the given query" not in text:
        return page_message(status, text)
    return DEFAULT_MESSAGES[status]


def error_page(request, status, exception=None):
    message = _message(status, exception) if status != 500 else DEFAULT_MESSAGES[500]
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(request, "error.html", {"status": status, "message": message}, status=status)


def bad_request(request, exception):
    return error_page(request, 400, exception)


def permission_denied(request, exception):
    return error_page(request, 403, exception)


def page_not_found(request, exception):
    return error_page(request, 404, exception)


def server_error(request):
    try:
        return error_page(request, 500)
    except Exception:  # the page itself failed (the database is down…): a page that needs nothing
        log.exception("the 500 page could not be rendered")
        return HttpResponse(PLAIN_500, status=500)
