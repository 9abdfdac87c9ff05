"""A schema-driven fuzz test: schemathesis generates requests for every operation of /api/schema/ and
the API must never answer 5xx (bad input is a 4xx with a message). Bounded: a few examples per
operation, as anonymous and as staff, on a small task with a valid model and a run."""

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error

from core.models import JobStatus
from inference.models import Run, RunKind
from tests.support.factories import make_task

EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def api_schema(db):
    # Requests go straight to the WSGI app: keep Django from closing the test's database connection at
    # the end of each request (its test client does the same).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture
def identities(db, django_user_model):
    """Request headers of each identity the fuzzer speaks as: anonymous and staff (every write path)."""
    task = make_task(n_cases=2, slug="fuzz")
    Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED, name="fuzz run")
    staff = django_user_model.objects.create_user("fuzz-staff", password="fuzz-pass-123", is_staff=True)
    return {"anonymous": {}, "staff": {"Authorization": f"Token {Token.objects.create(user=staff).key}"}}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(case, identities):
    for headers in identities.values():
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error])
