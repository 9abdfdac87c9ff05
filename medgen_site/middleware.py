"""Refuse request bodies over the upload limit before Django reads them."""

from django.conf import settings
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
