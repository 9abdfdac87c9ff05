"""The API's description of itself: an OpenAPI schema that validates and covers the plain endpoints
(arrays, the reader's, study analyses), Swagger UI and Redoc pages that load nothing from outside, the
API root linking them, and cases whose images carry the addresses of their arrays."""

import json
import re

import numpy as np
import pytest
import yaml
from django.contrib.staticfiles import finders
from django.core.management import call_command
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from inference.models import ImageRole
from inference.services import participation
from tests.support.api import token_client
from tests.support.factories import make_task

pytestmark = pytest.mark.django_db

PLAIN_PATHS = [
    "/api/arrays/case-images/{id}/",
    "/api/arrays/case-images/{id}/data/",
    "/api/arrays/outputs/{id}/",
    "/api/arrays/outputs/{id}/data/",
    "/api/arrays/outputs/{id}/difference/",
    "/api/arrays/outputs/{id}/difference/data/",
    "/api/arrays/case-results/{id}/uncertainty/",
    "/api/arrays/case-results/{id}/uncertainty/data/",
    "/api/read/{uid}/state/",
    "/api/read/{uid}/answers/",
    "/api/read/{uid}/draft/",
    "/api/read/items/{token}/images/{slot}/",
    "/api/read/items/{token}/images/{slot}/data/",
    "/api/studies/{id}/analysis/",
]


def test_the_schema_generates_without_warnings_and_covers_the_plain_endpoints(tmp_path):
    """`manage.py spectacular --validate --fail-on-warn`: every field typed (no "Defaulting to string"),
    every choice set named; the file it writes has the array, reader and study endpoints."""
    GENERATOR_STATS.reset()
    out = tmp_path / "schema.yml"
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(out))
    assert not GENERATOR_STATS._warn_cache and not GENERATOR_STATS._error_cache
    paths = yaml.safe_load(out.read_text())["paths"]
    assert [path for path in PLAIN_PATHS if path not in paths] == []


def test_the_schema_validates_without_errors_and_covers_the_plain_endpoints():
    GENERATOR_STATS.reset()
    schema = SchemaGenerator().get_schema(request=None, public=True)
    validate_schema(schema)  # raises on a schema that breaks the OpenAPI 3 JSON schema
    assert not GENERATOR_STATS._error_cache, GENERATOR_STATS._error_cache
    paths = schema["paths"]
    assert [path for path in PLAIN_PATHS if path not in paths] == []
    assert set(paths["/api/read/{uid}/answers/"]) == {"post"}
    assert set(paths["/api/arrays/case-images/{id}/data/"]) == {"get"}
    data = paths["/api/arrays/case-images/{id}/data/"]["get"]
    assert [p["name"] for p in data["parameters"] if p["in"] == "query"] == ["slice"]
    assert "application/octet-stream" in data["responses"]["200"]["content"]
    header = schema["components"]["schemas"]["ArrayHeader"]["properties"]
    assert {"shape", "spacing", "slices", "window", "presets", "data_url"} <= set(header)
    assert not any(path.startswith(("/api/docs", "/api/redoc", "/api/schema")) for path in paths)


def test_the_schema_is_served_as_json(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    assert "/api/read/{uid}/state/" in response.json()["paths"]


@pytest.mark.parametrize("url", ["/api/docs/", "/api/redoc/"])
def test_the_docs_pages_load_only_this_sites_files(client, url):
    response = client.get(url)
    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r"https?://", html) == [], "a docs page reaches outside the site"
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any(asset.endswith(".js") for asset in assets)
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), f"{asset} is not a static file of this site"
    assert "/api/schema/" in html
    if url == "/api/redoc/":  # its bundle's one outside request (Redocly's logo) is refused by the page's policy
        assert "img-src 'self' data:;" in response["Content-Security-Policy"]


def test_the_api_root_describes_the_api_and_links_the_schema_and_docs(client):
    response = client.get("/api/", HTTP_ACCEPT="application/json")
    links = response.json()
    assert links["schema"].endswith("/api/schema/")
    assert links["docs"].endswith("/api/docs/") and links["redoc"].endswith("/api/redoc/")
    assert links["cases"].endswith("/api/cases/")
    page = client.get("/api/", HTTP_ACCEPT="text/html").content.decode()
    assert "default basic root view" not in page
    assert "The MedGen Eval API" in page and "/api/docs/" in page


def _images_by_role(case):
    return {image["role"]: image for image in case["images"]}


def test_case_images_carry_their_ids_and_array_urls_the_viewer_uses(api_client, staff_user, client):
    task = make_task(n_cases=1, shape=(1, 4, 6))
    case = task.dataset.cases.get()
    api = token_client(api_client, staff_user)
    listed = api.get(f"/api/cases/?dataset={task.dataset_id}").json()["results"][0]
    images = _images_by_role(listed)
    assert set(images) == {"input", "reference"}
    for role, image in images.items():
        stored = case.images.get(role=role)
        assert image["id"] == stored.pk
        assert image["header_url"] == f"/api/arrays/case-images/{stored.pk}/"
        assert image["data_url"] == f"/api/arrays/case-images/{stored.pk}/data/"
        assert image["preview_url"] == f"/cases/{case.pk}/{role}/0.png"
    # the case page's viewer reads the same addresses
    client.force_login(staff_user)
    page = client.get(f"/cases/{case.pk}/").content.decode()
    assert sorted(re.findall(r'data-header-url="([^"]+)"', page)) == sorted(i["header_url"] for i in images.values())
    # the addresses answer an API token: the header, then the bytes of the stored array
    reference = case.images.get(role=ImageRole.REFERENCE)
    header = api.get(images["reference"]["header_url"]).json()
    assert header["shape"] == [4, 6] and header["data_url"] == images["reference"]["data_url"]
    data = api.get(header["data_url"], {"slice": 0})
    assert data.status_code == 200 and data["Content-Type"] == "application/octet-stream"
    values = np.frombuffer(data.content, dtype="<f4").reshape(4, 6)
    np.testing.assert_array_equal(values, reference.load()[0])
    assert api.get(images["input"]["preview_url"])["Content-Type"] == "image/png"


def test_a_hidden_reference_gets_no_id_and_no_url_for_a_participant(api_client, django_user_model, staff_user):
    task = make_task(n_cases=2, hidden_references=True)
    participant = django_user_model.objects.create_user("participant")
    participation.join_task(task, user=participant)
    reference = task.dataset.cases.order_by("case_id").first().images.get(role=ImageRole.REFERENCE)
    as_participant = token_client(api_client, participant)
    cases = as_participant.get(f"/api/cases/?dataset={task.dataset_id}").json()["results"]
    assert len(cases) == 2
    for case in cases:
        assert [image["role"] for image in case["images"]] == ["input"]
        assert all(image["header_url"].startswith("/api/arrays/case-images/") for image in case["images"])
    text = str(cases)
    assert f"/api/arrays/case-images/{reference.pk}/" not in text and f"'id': {reference.pk}," not in text
    # and the address, guessed, is a 404 for them
    assert as_participant.get(f"/api/arrays/case-images/{reference.pk}/").status_code == 404
    # an organiser of the task (here staff) gets it
    api_client.credentials()
    staff_cases = token_client(api_client, staff_user).get(f"/api/cases/?dataset={task.dataset_id}").json()["results"]
    assert all({image["role"] for image in case["images"]} == {"input", "reference"} for case in staff_cases)


def test_the_readers_posts_keep_working_with_csrf_checks_on(django_user_model):
    """The reader's endpoints are DRF views now: DRF's CSRF check reads the request's form data before the view
    reads its JSON body; with the checks on (as in a browser) the answer is stored, and without the token refused."""
    from django.test import Client

    from readerstudy.models import Answer
    from tests.support.study_data import make_reader, make_study, make_study_task

    task, runs = make_study_task(n_cases=4, shape=(1, 16, 16), n_runs=1)
    reader = make_reader("csrf-reader")
    study = make_study(task, runs, readers=[reader], items_per_model=2)
    client = Client(enforce_csrf_checks=True)
    client.force_login(reader)
    state = client.get(f"/api/read/{study.uid}/state/").json()
    body = json.dumps({"item": state["item"]["token"], "answer": {"call": "real", "confidence": 3}, "key": "k-1"})
    url = f"/api/read/{study.uid}/answers/"
    refused = client.post(url, body, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["detail"]
    client.get(f"/read/{study.uid}/")  # the workspace page sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    answered = client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert answered.status_code == 200, answered.content
    assert answered.json()["done"] == 1
    assert Answer.objects.filter(session__reader=reader, idempotency_key="k-1").count() == 1
