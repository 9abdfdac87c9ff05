"""Model families and diffusion sampling through the REST API: the upload's family and scheduler (validated
choices), `/api/models/?family=`, the sampling settings of each run in `/api/runs/`, and sweeps."""

import json

import pytest

from inference.models import GenerativeModel, Run
from tests.inference.test_sampling import Linear
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.jobs import validate

pytestmark = pytest.mark.django_db

SCHEDULER = {"kind": "ddim", "num_train_timesteps": 20, "clip_sample": False}


def upload(api, task, path, **fields):
    with open(path, "rb") as handle:
        data = {"name": fields.pop("name", "m"), "task": task.slug, "file": handle, "spatial_shape": "8, 8", **fields}
        return api.post("/api/models/", data, format="multipart")


def test_family_and_scheduler_are_uploaded_served_and_filtered(staff_api, api_client, tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    response = upload(
        staff_api,
        task,
        save_torchscript(Linear(), tmp_path / "eps.pt"),
        name="eps",
        family="diffusion",
        scheduler=json.dumps(SCHEDULER),
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["family"] == "diffusion"
    assert body["scheduler"] == {
        "kind": "ddim",
        "num_train_timesteps": 20,
        "schedule": "linear_beta",
        "beta_start": 0.0001,
        "beta_end": 0.02,
        "prediction_type": "epsilon",
        "clip_sample": False,
        "clip_min": -1.0,
        "clip_max": 1.0,
    }
    plain = upload(staff_api, task, save_torchscript(Scale(), tmp_path / "s.pt"), name="unet")
    assert plain.status_code == 201 and plain.json()["family"] == "regression" and plain.json()["scheduler"] is None
    gan = upload(staff_api, task, save_torchscript(Scale(3.0), tmp_path / "g.pt"), name="gan", family="gan")
    assert gan.json()["family"] == "gan"

    listed = api_client.get("/api/models/?family=diffusion").json()["results"]
    assert [m["name"] for m in listed] == ["eps"]
    assert sorted(m["name"] for m in api_client.get("/api/models/").json()["results"]) == ["eps", "gan", "unet"]
    refused = api_client.get("/api/models/?family=dragon")
    assert (
        refused.status_code == 400 and "'family' must be one of baseline, regression, gan" in refused.json()["detail"]
    )


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"family": "dragon"}, "family", '"dragon" is not a valid choice'),
        ({"family": "diffusion", "scheduler": "{not json"}, "scheduler", "Give the scheduler as JSON"),
        ({"family": "diffusion", "scheduler": json.dumps({"kind": "euler", "num_train_timesteps": 9})}, "scheduler",
         "not one of ddpm, ddim"),
    ],
)  # fmt: skip
def test_a_bad_family_or_scheduler_is_a_400_and_stores_nothing(staff_api, tmp_path, fields, field, message):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    response = upload(staff_api, task, save_torchscript(Linear(), tmp_path / "eps.pt"), **fields)
    assert response.status_code == 400
    assert message in " ".join(response.json()["errors"][field])
    assert not GenerativeModel.objects.exists()


def test_a_scheduler_on_a_model_of_another_family_is_a_400(staff_api, tmp_path):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    response = upload(staff_api, task, save_torchscript(Linear(), tmp_path / "eps.pt"), scheduler=json.dumps(SCHEDULER))
    assert response.status_code == 400 and "is of the diffusion family" in response.json()["detail"]
    assert not GenerativeModel.objects.exists()


def test_runs_serve_their_sampling_settings_and_a_sweep_is_idempotent(staff_api, tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    body = upload(
        staff_api,
        task,
        save_torchscript(Linear(), tmp_path / "eps.pt"),
        family="diffusion",
        scheduler=json.dumps(SCHEDULER),
    ).json()
    model = GenerativeModel.objects.get(pk=body["id"])
    validate(model)
    created = staff_api.post(
        "/api/runs/", {"model": model.pk, "sampling_steps": 10, "samples_per_case": 3, "seed": 5}, format="json"
    )
    assert created.status_code == 201, created.content
    run = created.json()
    assert (run["scheduler"], run["sampling_steps"], run["samples_per_case"], run["seed"], run["sweep"]) == (
        "ddim", 10, 3, 5, ""
    )  # fmt: skip
    bad = staff_api.post("/api/runs/", {"model": model.pk, "sampling_steps": 5, "scheduler": "ddpm"}, format="json")
    assert bad.status_code == 400 and "DDPM samples all 20 training steps" in bad.json()["detail"]

    url = f"/api/models/{model.pk}/sweep/"
    first = staff_api.post(url, {"steps": [2, 5, 10], "samples_per_case": 2, "seed": 1}, format="json")
    assert first.status_code == 200, first.content
    runs = first.json()
    assert [(r["sampling_steps"], r["samples_per_case"], r["status"]) for r in runs] == [
        (2, 2, "queued"), (5, 2, "queued"), (10, 2, "queued")
    ]  # fmt: skip
    again = staff_api.post(url, {"steps": [2, 5, 10], "samples_per_case": 2, "seed": 1}, format="json").json()
    assert [r["id"] for r in again] == [r["id"] for r in runs]
    assert Run.objects.filter(model=model).count() == 4
    listed = staff_api.get(f"/api/runs/?task={task.slug}").json()["results"]
    assert sorted(r["sampling_steps"] for r in listed if r["sweep"] == runs[0]["sweep"]) == [2, 5, 10]

    cancelled = staff_api.post(f"/api/models/{model.pk}/sweep/cancel/", {"sweep": runs[0]["sweep"]}, format="json")
    assert cancelled.status_code == 200 and sorted(r["status"] for r in cancelled.json()) == ["cancelled"] * 3
    unknown = staff_api.post(f"/api/models/{model.pk}/sweep/cancel/", {"sweep": "nope"}, format="json")
    assert unknown.status_code == 400 and "has no sweep 'nope'" in unknown.json()["detail"]


def test_the_upload_page_takes_a_family_and_refuses_a_bad_scheduler_with_its_message(staff_client, tmp_path):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    path = save_torchscript(Linear(), tmp_path / "eps.pt")

    def post(**fields):
        with open(path, "rb") as handle:
            data = {"name": "eps", "task": task.slug, "file": handle, "in_channels": 1, "out_channels": 1,
                    "spatial_shape": "8, 8", "normalisation": "none", "samples_per_case": 1, **fields}  # fmt: skip
            return staff_client.post("/models/new/", data)

    refused = post(family="diffusion", scheduler='{"kind": "ddim", "num_train_timesteps": 0}')
    assert refused.status_code == 400 and "num_train_timesteps is a whole number" in refused.content.decode()
    assert not GenerativeModel.objects.exists()
    assert post(family="diffusion", scheduler=json.dumps(SCHEDULER)).status_code == 302
    model = GenerativeModel.objects.get()
    assert model.family == "diffusion" and model.scheduler["kind"] == "ddim" and model.is_noise_predictor
    page = staff_client.get(model.get_absolute_url()).content.decode()
    assert 'data-family="diffusion">Diffusion model</dd>' in page
    assert "DDIM by default, 20 training steps, linear_beta" in page
