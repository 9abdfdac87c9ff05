"""Admin actions call the same services as the API and the pages."""

import pytest

from core.models import JobStatus
from inference.models import GenerativeModel, Run
from inference.services import artifacts
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.jobs import validate

pytestmark = pytest.mark.django_db


def test_admin_starts_runs_and_cancels_them(admin_client, tmp_path):
    task = make_task(n_cases=2)
    model = artifacts.register_model(
        save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16]
    )
    validate(model)
    changelist = "/admin/inference/generativemodel/"
    response = admin_client.post(changelist, {"action": "start_runs", "_selected_action": [model.pk]}, follow=True)
    assert response.status_code == 200 and b"is queued" in response.content
    run = Run.objects.get(model=model)
    assert run.status == JobStatus.QUEUED

    response = admin_client.post(
        "/admin/inference/run/", {"action": "cancel_runs", "_selected_action": [run.pk]}, follow=True
    )
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and b"cancelled" in response.content


def test_admin_cannot_start_a_run_of_an_invalid_model(admin_client, tmp_path):
    from tests.support.factories import WrongShape

    task = make_task(n_cases=1)
    model = artifacts.register_model(
        save_torchscript(WrongShape(), tmp_path / "w.pt"), name="w", task=task, spatial_shape=[16, 16]
    )
    validate(model)
    assert GenerativeModel.objects.get(pk=model.pk).status == "invalid"
    response = admin_client.post(
        "/admin/inference/generativemodel/", {"action": "start_runs", "_selected_action": [model.pk]}, follow=True
    )
    assert b"failed validation" in response.content and not Run.objects.exists()


def test_the_admin_task_form_refuses_metrics_outside_the_catalogue(admin_client):
    from inference.models import Task
    from tests.support.factories import make_task

    task = make_task(n_cases=1, metrics=["psnr"], primary_metric="psnr")
    form = {
        "slug": task.slug, "name": task.name, "kind": task.kind, "dataset": task.dataset_id,
        "metrics": '["vgg_loss"]', "primary_metric": "SSIM", "ranking": "primary", "description": "",
    }  # fmt: skip
    page = admin_client.post(f"/admin/inference/task/{task.pk}/change/", form).content.decode()
    assert "Unknown metric(s) vgg_loss" in page and "Unknown metric &#x27;SSIM&#x27;" in page
    task = Task.objects.get(pk=task.pk)
    assert (task.metrics, task.primary_metric) == (["psnr"], "psnr")
