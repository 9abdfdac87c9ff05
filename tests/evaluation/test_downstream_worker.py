"""Downstream jobs through a real Celery worker process (PostgreSQL + Redis under `make test`)."""

import time

import numpy as np
import pytest
from rest_framework.authtoken.models import Token

from core import jobs as core_jobs
from core.models import JobStatus
from evaluation import downstream, segmentation
from evaluation.models import DownstreamJob, MetricResult
from medgen_site.celery import app
from tests.evaluation.test_downstream import TINY, near_reference, phantom_task, succeeded_run

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def wait_until(predicate, timeout=90, poll=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError("condition not reached in time")


def test_the_downstream_job_is_routed_to_the_inference_queue(monkeypatch):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args, queue, **options: sent.append((name, args, queue)))
    assert core_jobs.dispatch(DownstreamJob(pk=7))
    assert sent == [("core.execute_job", ["evaluation.downstreamjob", 7], "inference")]
    assert app.amqp.router.route({}, "core.reap_jobs")["queue"].name == "metrics"


def test_run_and_reference_train_through_the_worker_and_fill_the_clinical_tier(celery_worker):
    task = phantom_task(n_cases=6)
    run = succeeded_run(task, near_reference)
    downstream.declare_downstream(task, config=TINY, seeds=(0, 1))  # queues the reference and the run
    jobs = list(DownstreamJob.objects.filter(setup__task=task))
    assert len(jobs) == 2 and {job.run_id for job in jobs} == {None, run.pk}
    finished = core_jobs.wait_for(DownstreamJob, [job.pk for job in jobs], timeout=120)
    log = celery_worker.read_log()
    for job in finished:
        assert job.status == JobStatus.SUCCEEDED, job.error + log[-3000:]
        assert job.attempts == 1 and job.device == "cpu" and job.curves
    assert set(MetricResult.objects.filter(run=run, tier="clinical").values_list("metric", flat=True)) == {
        "downstream_dice",
        "downstream_hd95",
        "utility_ratio",
    }
    assert downstream.task_reference(task)["dice"] is not None


def test_a_running_job_is_cancelled_over_the_api_and_the_worker_stops(celery_worker, api_client, staff_user):
    task = phantom_task(n_cases=6)
    run = succeeded_run(task, near_reference)
    long = segmentation.SegmentationConfig(name="long", channels=(4, 8), epochs=2000, crop=32)
    downstream.declare_downstream(task, config=long, seeds=(0,), queue_existing=False)
    token = Token.objects.create(user=staff_user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert api_client.post(f"/api/runs/{run.pk}/downstream/").status_code == 202
    job = DownstreamJob.objects.get(run=run)
    downstream.cancel_downstream(DownstreamJob.objects.get(run=None).pk)  # the reference came along; not needed here
    wait_until(lambda: DownstreamJob.objects.get(pk=job.pk).epoch >= 2)
    live = api_client.get(f"/api/runs/{run.pk}/downstream/").json()
    assert live["status"] == "running" and live["epoch"] >= 2 and np.isfinite(live["loss"])
    assert "epoch" in live["phase"]
    response = api_client.post(f"/api/runs/{run.pk}/downstream/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    wait_until(lambda: "succeeded: 'stopped'" in celery_worker.read_log() or "'stopped'" in celery_worker.read_log())
    stopped = DownstreamJob.objects.get(pk=job.pk)
    assert stopped.status == JobStatus.CANCELLED and stopped.epoch < long.epochs
    assert not MetricResult.objects.filter(run=run).exists()
