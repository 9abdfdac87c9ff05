"""Plain endpoints (array bytes, the reader's JSON, study analyses) served through DRF.

They were Django function views, so the OpenAPI schema (drf-spectacular only walks DRF views) left
them out and API tokens did not reach them. `endpoint(...)` makes one a DRF view with the API's
authentication (token or session), its permission class (`core.policy.PolicyPermission`: reads open,
an unsafe method needs the action it names) and the schema it is given, while the view keeps
answering what it answered before: it still builds its own Django response (JSON, bytes, 204), which
DRF passes on as it is, and the errors it maps itself (`core.responses.json_errors`) keep their bodies.
"""

import functools

from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import SAFE_METHODS


class OwnContentType(BaseContentNegotiation):
    """These endpoints choose their content type themselves (JSON or float32 bytes): any Accept header and
    any `?format=` are accepted instead of DRF answering 406 or 404 for them."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def endpoint(methods, *, policy_actions=None, **schema):
    """Decorator: `view(request, **kwargs)` as a DRF view answering `methods`, documented by
    `extend_schema(**schema)`; `policy_actions` as on any API view ({"POST": "<app>.<verb>"})."""

    def decorate(view):
        drf_view = api_view(methods)(view)
        drf_view.cls.content_negotiation_class = OwnContentType
        drf_view.cls.policy_actions = dict(policy_actions or {})

        @functools.wraps(drf_view)  # keeps `cls`, `initkwargs` and `csrf_exempt` for DRF and the schema
        def with_body(request, *args, **kwargs):
            # DRF's CSRF check (SessionAuthentication) reads request.POST through its parsers, which consumes
            # the stream; the view reads `request.body` itself. Reading it first caches it for both.
            if request.method not in SAFE_METHODS:
                request.body  # noqa: B018
            return drf_view(request, *args, **kwargs)

        return extend_schema(**schema)(with_body)

    return decorate
