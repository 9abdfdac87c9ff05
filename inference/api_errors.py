"""API errors always carry a human-readable `detail`."""

from rest_framework.exceptions import APIException
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": "The request is not valid.", "errors": response.data}
    return response


class BadRequest(APIException):
    """400 with the service's message as `detail` (a plain string, not a list)."""

    status_code = 400
    default_detail = "The request is not valid."
