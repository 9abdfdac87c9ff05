"""Request middleware: refuse bodies over the upload limit before Django reads them; report
server time and SQL queries in a `Server-Timing` header (what the benchmarks read)."""

import time

from django.conf import settings
from django.db import connection
from django.http import HttpResponse, JsonResponse


class UploadLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        limit = settings.MEDGEN_MAX_UPLOAD_BYTES
        if length > limit:
            message = f"The upload is {length} bytes; the limit is {limit} bytes (MEDGEN_MAX_UPLOAD_BYTES)."
            if request.path.startswith("/api/"):
                return JsonResponse({"detail": message}, status=413)
            return HttpResponse(message, status=413, content_type="text/plain")
        return self.get_response(request)


class ServerTimingMiddleware:
    """`Server-Timing: app;dur=12.3, db;dur=1.2;desc="5 queries"` on responses to staff (to everyone with
    MEDGEN_SERVER_TIMING=all, as the load benchmarks set).

    Browsers show it in their developer tools; `bench/` reads it to report server time apart
    from the client's, and the query count to show it does not grow with the data.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        queries = []

        def count(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                queries.append(time.perf_counter() - started)

        started = time.perf_counter()
        with connection.execute_wrapper(count):
            response = self.get_response(request)
        total = (time.perf_counter() - started) * 1000
        user = getattr(request, "user", None)
        if settings.MEDGEN_SERVER_TIMING != "all" and not (user is not None and user.is_staff):
            return response  # query counts and times are for the operators, not for everyone
        response["Server-Timing"] = (
            f'app;dur={total:.2f}, db;dur={sum(queries) * 1000:.2f};desc="{len(queries)} queries"'
        )
        return response
