"""Downstream jobs through a real Celery worker process (PostgreSQL + Redis under `make test`)."""

import re

import numpy as np
import pytest

from core import jobs as core_jobs
from core.models import JobStatus
from evaluation import downstream, segmentation
from evaluation.models import DownstreamJob, MetricResult
from medgen_site.celery import app
from tests.support.evaluation import TINY, downstream_task, near_reference, succeeded_run
from tests.support.jobs import wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_downstream_job_is_routed_to_the_inference_queue(monkeypatch):
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args, queue, **options: sent.append((name, args, queue)))
    assert core_jobs.dispatch(DownstreamJob(pk=7))
    assert sent == [("core.execute_job", ["evaluation.downstreamjob", 7], "inference")]
    assert app.amqp.router.route({}, "core.reap_jobs")["queue"].name == "metrics"


def test_run_and_reference_train_through_the_worker_and_fill_the_clinical_tier(celery_worker):
    task = downstream_task(n_cases=6)
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


def test_a_running_job_is_cancelled_over_the_api_and_the_worker_stops(celery_worker, staff_api):
    task = downstream_task(n_cases=6)
    run = succeeded_run(task, near_reference)
    long = segmentation.SegmentationConfig(name="long", channels=(4, 8), epochs=2000, crop=32)
    downstream.declare_downstream(task, config=long, seeds=(0,), queue_existing=False)
    assert staff_api.post(f"/api/runs/{run.pk}/downstream/").status_code == 202
    job = DownstreamJob.objects.get(run=run)
    downstream.cancel_downstream(DownstreamJob.objects.get(run=None).pk)  # the reference came along; not needed here
    wait_until(lambda: DownstreamJob.objects.get(pk=job.pk).epoch >= 2)
    live = staff_api.get(f"/api/runs/{run.pk}/downstream/").json()
    assert live["status"] == "running" and live["epoch"] >= 2 and np.isfinite(live["loss"])
    assert "epoch" in live["phase"]
    response = staff_api.post(f"/api/runs/{run.pk}/downstream/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    # The worker's pool process returned from the job as stopped (Celery logs the task's return value).
    wait_until(
        lambda: re.search(r"core\.execute_job\[[0-9a-f-]+\] succeeded in [0-9.]+s: 'stopped'", celery_worker.read_log())
    )
    stopped = DownstreamJob.objects.get(pk=job.pk)
    assert stopped.status == JobStatus.CANCELLED and stopped.epoch < long.epochs
    assert not MetricResult.objects.filter(run=run).exists()
