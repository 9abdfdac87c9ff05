"""Requests an audit found answered with a 500: each is now a 4xx with a message, and nothing changes."""

import json

import pytest

from core.models import JobStatus
from inference.models import Run, RunKind, Task
from tests.support.factories import Scale, make_task, save_torchscript

pytestmark = pytest.mark.django_db


def deep_json(depth):
    return "[" * depth + "]" * depth


def test_a_dataset_filter_that_is_not_an_id_is_a_400(api_client):
    response = api_client.get("/api/cases/?dataset=abc")
    assert response.status_code == 400 and "'dataset' must be a dataset id" in response.json()["detail"]
    assert api_client.get(f"/api/cases/?dataset={2**70}").status_code == 400


def test_run_creation_refuses_huge_seeds_and_deep_json(staff_api):
    task = make_task(n_cases=1)
    response = staff_api.post("/api/runs/", {"model": 1, "seed": 2**63}, format="json")
    assert response.status_code == 400 and "seed" in response.json()["errors"]
    response = staff_api.post("/api/runs/", deep_json(100_000), content_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]
    response = staff_api.post("/api/runs/", {"model": 2**70}, format="json")
    assert response.status_code == 400 and "model" in response.json()["errors"]
    assert not Run.objects.filter(task=task).exists()


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        (deep_json(100_000), "Give sizes like"),
        ("[true, 128]", "positive whole number"),
        ("[100000, 128]", "between 1 and 4096"),
        ("[128]", "Give 2 (H, W) or 3 (D, H, W) sizes"),
    ],
)
def test_a_declared_shape_that_is_not_a_shape_is_a_400(staff_api, tmp_path, shape, message):
    task = make_task(n_cases=1)
    path = save_torchscript(Scale(), tmp_path / "s.pt")
    with open(path, "rb") as handle:
        data = {"name": "m", "task": task.slug, "file": handle, "spatial_shape": shape}
        response = staff_api.post("/api/models/", data, format="multipart")
    assert response.status_code == 400
    assert message in " ".join(response.json()["errors"]["spatial_shape"])


def test_deleting_a_task_with_runs_is_a_409_and_keeps_it(staff_api):
    task = make_task(n_cases=1)
    Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED)
    response = staff_api.delete(f"/api/tasks/{task.slug}/")
    assert response.status_code == 409 and "has models or runs" in response.json()["detail"]
    assert Task.objects.filter(pk=task.pk).exists()


@pytest.mark.parametrize("metrics", [None, True, "psnr", [1, 2]])
def test_task_metrics_must_be_a_list_of_names(staff_api, api_client, metrics):
    task = make_task(n_cases=1, metrics=["psnr"])
    response = staff_api.patch(
        f"/api/tasks/{task.slug}/", json.dumps({"metrics": metrics}), content_type="application/json"
    )
    assert response.status_code == 400 and "metrics" in response.json()["errors"]
    task.refresh_from_db()
    assert task.metrics == ["psnr"]
    api_client.credentials()
    assert api_client.get(f"/api/tasks/{task.slug}/leaderboard/").status_code == 200


def test_a_reference_dataset_id_beyond_the_database_range_is_a_400(staff_api):
    task = make_task(n_cases=1)
    response = staff_api.patch(f"/api/tasks/{task.slug}/", {"reference_dataset": 2**70}, format="json")
    assert response.status_code == 400 and "reference_dataset" in response.json()["errors"]


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"metrics": ["lpips_typo"]}, "metrics", "Unknown metric(s) lpips_typo. Known: psnr"),
        ({"primary_metric": "SSIM"}, "primary_metric", "Unknown metric 'SSIM'"),
        ({"metrics": ["psnr"], "primary_metric": "ssim"}, "primary_metric", "'ssim' is not among the task's metrics"),
    ],
)
def test_task_metric_names_come_from_the_catalogue(staff_api, change, field, message):
    task = make_task(n_cases=1, metrics=["psnr", "ssim"], primary_metric="psnr")
    response = staff_api.patch(f"/api/tasks/{task.slug}/", change, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()["errors"][field])
    task.refresh_from_db()
    assert (task.metrics, task.primary_metric) == (["psnr", "ssim"], "psnr")
