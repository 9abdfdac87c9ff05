"""The pages' wording and states that confused people: escaped help text, numbers with separators,
metadata as a table, invalid models out of the way, a queued run page that says "queued"."""

import re

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from core.models import JobStatus
from inference.models import GenerativeModel, ModelStatus, Run
from tests.support.factories import make_task

pytestmark = pytest.mark.django_db


def test_submission_help_text_shows_the_case_id_placeholder(staff_client):
    task = make_task(n_cases=1)
    response = staff_client.get(f"/tasks/{task.slug}/")
    assert response.status_code == 200
    html = response.content.decode()
    form = html[html.index('id="submission-form"') :]
    form = form[: form.index("</form>")]
    helptext = re.search(r'<span class="helptext"[^>]*>(.*?)</span>', form, re.S).group(1)
    # The placeholder is text on the page, not an unknown HTML tag the browser swallows.
    assert "&lt;case_id&gt;.nii.gz" in helptext
    assert "<case_id>" not in helptext


def test_parameter_counts_have_thousands_separators(staff_client, tmp_path):
    task = make_task(n_cases=1)
    model = GenerativeModel.objects.create(
        name="big", task=task, format="onnx", artifact="models/b.onnx", sha256="b" * 64, size_bytes=1,
        spatial_shape=[16, 16], status=ModelStatus.VALID, parameter_count=29481,
    )  # fmt: skip
    detail = staff_client.get(f"/models/{model.pk}/").content.decode()
    assert '<dd id="parameter-count">29,481</dd>' in detail
    for url in ("/models/", f"/tasks/{task.slug}/"):
        assert re.search(r'<td class="num">29,481</td>', staff_client.get(url).content.decode()), url


def test_case_metadata_is_a_table_not_a_python_dict(staff_client):
    task = make_task(n_cases=1)
    case = task.dataset.cases.get()
    case.metadata = {"age": 54, "sex": "F", "scanner": {"vendor": "Acme", "field_T": 3.0}, "contrast": True,
                     "labels": ["tumour", "oedema"], "note": None}  # fmt: skip
    case.save()
    html = staff_client.get(f"/cases/{case.pk}/").content.decode()
    table = re.search(r'<table class="grid narrow-table" id="case-metadata">(.*?)</table>', html, re.S).group(1)
    rows = re.findall(r'<tr><th scope="row">([^<]*)</th><td>([^<]*)</td></tr>', table)
    assert rows == [("age", "54"), ("contrast", "yes"), ("labels", "tumour, oedema"), ("note", "—"),
                    ("scanner.field_T", "3.0"), ("scanner.vendor", "Acme"), ("sex", "F")]  # fmt: skip
    assert "{&#x27;age&#x27;" not in html and "{'age'" not in html


@pytest.fixture
def invalid_model(staff_user):
    task = make_task(n_cases=1)
    model = GenerativeModel.objects.create(
        name="broken", task=task, format="torchscript", sha256="c" * 64, size_bytes=5, spatial_shape=[16, 16],
        status=ModelStatus.INVALID, validation_error="the output has 2 channels, 1 declared", created_by=staff_user,
    )  # fmt: skip
    model.artifact.save("x.pt", ContentFile(b"bytes"), save=True)
    Run.objects.create(task=task, model=model, status=JobStatus.FAILED, error="Model 'broken' failed validation")
    GenerativeModel.objects.create(
        name="good", task=task, format="onnx", artifact="models/g.onnx", sha256="d" * 64, size_bytes=1,
        spatial_shape=[16, 16], status=ModelStatus.VALID,
    )  # fmt: skip
    return model


def model_names(html):
    return re.findall(r'<td><a href="/models/\d+/">([^<]+)</a></td>', html)


def test_invalid_models_are_left_out_of_the_lists_until_asked_for(staff_client, invalid_model):
    listing = staff_client.get("/models/").content.decode()
    assert model_names(listing) == ["good"]
    assert "1 model that failed validation is not listed" in listing and 'href="?invalid=1"' in listing
    assert model_names(staff_client.get("/models/?invalid=1").content.decode()) == ["broken", "good"]
    task_page = staff_client.get(f"/tasks/{invalid_model.task.slug}/").content.decode()
    models_table = task_page[task_page.index("<h2>Models</h2>") :]
    assert model_names(models_table[: models_table.index("</table>")]) == ["good"]


def test_an_invalid_model_is_deleted_with_its_failed_runs_and_artifact(
    staff_client, invalid_model, django_capture_on_commit_callbacks
):
    artifact = invalid_model.artifact.name
    assert default_storage.exists(artifact)
    page = staff_client.get(f"/models/{invalid_model.pk}/").content.decode()
    assert 'id="delete-model"' in page
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client.post(f"/models/{invalid_model.pk}/delete/")
    assert response.status_code == 302 and response["Location"] == "/models/"
    assert not GenerativeModel.objects.filter(pk=invalid_model.pk).exists()
    assert not Run.objects.filter(model_id=invalid_model.pk).exists()
    assert not default_storage.exists(artifact)
    good = GenerativeModel.objects.get(name="good")
    assert 'id="delete-model"' not in staff_client.get(f"/models/{good.pk}/").content.decode()
    refused = staff_client.post(f"/models/{good.pk}/delete/")
    assert refused.status_code == 409 and GenerativeModel.objects.filter(pk=good.pk).exists()
    assert "only a model that failed validation is deleted" in refused.content.decode()
