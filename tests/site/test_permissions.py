"""Anonymous users and readers can read public tasks but cannot upload or start anything."""

import pickle

import pytest

from inference.models import Dataset, GenerativeModel, ModelStatus, Run
from inference.services import artifacts
from inference.services.runs import create_run
from tests.support.api import assert_refused, token_client
from tests.support.factories import Scale, make_task, save_onnx_scale, save_torchscript
from tests.support.jobs import validate

pytestmark = pytest.mark.django_db


@pytest.fixture
def task():
    return make_task(n_cases=2)


@pytest.fixture
def valid_model(task, tmp_path):
    model = artifacts.register_model(
        save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16]
    )
    validate(model)
    return GenerativeModel.objects.get(pk=model.pk)


def model_form(task, path):
    return {"name": "m", "task": task.slug, "file": open(path, "rb"), "spatial_shape": "[16, 16]"}


@pytest.mark.parametrize("who", ["anonymous", "reader"])
def test_non_staff_cannot_upload_a_model_through_the_api(who, api_client, reader_user, task, tmp_path):
    if who == "reader":
        token_client(api_client, reader_user)
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    assert_refused(api_client.post("/api/models/", model_form(task, path), format="multipart"), who)
    assert not GenerativeModel.objects.exists()


@pytest.mark.parametrize("who", ["anonymous", "reader"])
def test_non_staff_cannot_start_or_cancel_runs_through_the_api(who, api_client, reader_user, valid_model):
    if who == "reader":
        token_client(api_client, reader_user)
    assert_refused(api_client.post("/api/runs/", {"model": valid_model.pk}, format="json"), who)
    assert not Run.objects.exists()
    run = create_run(valid_model)
    assert_refused(api_client.post(f"/api/runs/{run.pk}/cancel/"), who)
    run.refresh_from_db()
    assert run.status == "queued"


@pytest.mark.parametrize("who", ["anonymous", "reader"])
def test_non_staff_cannot_upload_datasets_or_submissions(who, api_client, reader_user, task, tmp_path):
    if who == "reader":
        token_client(api_client, reader_user)
    archive = tmp_path / "x.zip"
    archive.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    with open(archive, "rb") as handle:
        assert_refused(api_client.post("/api/datasets/", {"name": "d", "file": handle}), who)
    with open(archive, "rb") as handle:
        data = {"task": task.slug, "name": "s", "file": handle}
        assert_refused(api_client.post("/api/submissions/", data), who)
    assert list(Dataset.objects.all()) == [task.dataset] and not Run.objects.exists()


def test_non_staff_pages_do_not_offer_or_accept_uploads_and_runs(client, reader_user, valid_model, tmp_path):
    client.force_login(reader_user)
    page = client.get(f"/models/{valid_model.pk}/")
    assert page.status_code == 200 and b"Start a run" not in page.content
    assert client.post(f"/models/{valid_model.pk}/run/").status_code == 403  # logged in, not allowed
    assert not Run.objects.exists()
    path = save_torchscript(Scale(3.0), tmp_path / "other.pt")
    with open(path, "rb") as handle:
        response = client.post("/models/new/", {"name": "x", "task": valid_model.task.slug, "file": handle})
    assert response.status_code == 403
    assert GenerativeModel.objects.count() == 1


def test_anonymous_reads_public_runs_but_not_private_ones(api_client, valid_model, tmp_path):
    public_run = create_run(valid_model)
    private_task = make_task(n_cases=1, is_public=False)
    hidden = artifacts.register_model(
        save_onnx_scale(tmp_path / "h.onnx"),
        name="hidden",
        task=private_task,
        spatial_shape=[16, 16],
    )
    validate(hidden)
    private_run = create_run(GenerativeModel.objects.get(pk=hidden.pk))

    listing = api_client.get("/api/runs/").json()
    ids = {row["id"] for row in listing["results"]}
    assert public_run.pk in ids and private_run.pk not in ids
    assert {row["status"] for row in listing["results"]} == {"queued"}
    assert api_client.get(f"/api/runs/{private_run.pk}/").status_code == 404
    assert api_client.get(f"/runs/{private_run.pk}/").status_code == 404
    assert api_client.get(f"/tasks/{private_task.slug}/").status_code == 404
    page = api_client.get(f"/runs/{public_run.pk}/")
    assert page.status_code == 200 and page.context["run"] == public_run
    assert valid_model.name in page.content.decode() and private_task.name not in page.content.decode()


def test_staff_uploads_a_model_and_starts_a_run_from_the_pages(staff_client, task, tmp_path):
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    with open(path, "rb") as handle:
        response = staff_client.post(
            "/models/new/",
            {
                "name": "page-model",
                "task": task.slug,
                "file": handle,
                "in_channels": 1,
                "out_channels": 1,
                "spatial_shape": "16, 16",
                "normalisation": "none",
                "samples_per_case": 1,
            },
        )
    model = GenerativeModel.objects.get(name="page-model")
    assert response.status_code == 302 and response.url == f"/models/{model.pk}/"
    validate(model)
    response = staff_client.post(f"/models/{model.pk}/run/")
    run = Run.objects.get(model=model)
    assert response.url == f"/runs/{run.pk}/"
    assert run.status == "queued"
    page = staff_client.get(f"/runs/{run.pk}/")
    assert page.status_code == 200 and page.context["run"] == run and "page-model" in page.content.decode()


def test_pickle_upload_is_refused_with_a_message(staff_client, api_client, staff_user, task, tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    token_client(api_client, staff_user)
    response = api_client.post("/api/models/", model_form(task, path), format="multipart")
    assert response.status_code == 400
    assert "pickle" in response.json()["detail"]
    form = {"name": "p", "task": task.slug, "in_channels": 1, "out_channels": 1, "spatial_shape": "16,16",
            "normalisation": "none", "samples_per_case": 1}  # fmt: skip
    with open(path, "rb") as handle:
        page = staff_client.post("/models/new/", {**form, "file": handle})
    assert page.status_code == 400 and b"pickle" in page.content
    assert not GenerativeModel.objects.exists()


def test_duplicate_artifact_is_refused(api_client, staff_user, task, tmp_path):
    token_client(api_client, staff_user)
    path = save_onnx_scale(tmp_path / "scale.onnx")
    first = api_client.post("/api/models/", model_form(task, path), format="multipart")
    assert first.status_code == 201 and first.json()["format"] == "onnx"
    second = api_client.post("/api/models/", model_form(task, path), format="multipart")
    assert second.status_code == 400 and "already registered" in second.json()["detail"]
    assert GenerativeModel.objects.count() == 1


def test_onnx_model_is_accepted_and_validated(task, tmp_path):
    model = artifacts.register_model(
        save_onnx_scale(tmp_path / "scale.onnx"), name="onnx", task=task, spatial_shape=[16, 16]
    )
    assert validate(model) == ModelStatus.VALID
    model.refresh_from_db()
    assert model.parameter_count == 1 and model.format == "onnx"


def test_upload_over_the_limit_gets_413(api_client, staff_user, task, settings):
    settings.MEDGEN_MAX_UPLOAD_BYTES = 1000
    token_client(api_client, staff_user)
    response = api_client.post(
        "/api/models/", {"name": "big", "task": task.slug, "file": ("x" * 5000).encode()}, format="multipart"
    )
    assert response.status_code == 413 and "limit" in response.json()["detail"]


def test_openapi_schema_is_served(api_client):
    response = api_client.get("/api/schema/")
    assert response.status_code == 200 and b"/api/runs/" in response.content
