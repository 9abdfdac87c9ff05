"""Fault injection with real worker processes: jobs heal, or fail with the reason, whatever breaks.

SIGKILL of the worker mid-run, mid-evaluation and mid-downstream; a pool process killed every time it
takes the job (the attempts limit holds); one step slower than the stale limit on a live worker (the
heartbeat thread keeps it); the broker stopped (a redis-server of the test's own) while runs are
created; the worker's database connections terminated mid-job.
"""

import dataclasses
import os
import signal
import socket
import subprocess
import time

import pytest
from django.db import connection

from core import jobs
from core.models import JobStatus
from evaluation import downstream, services
from evaluation.models import CaseResult, DownstreamJob, Evaluation, MetricResult
from inference.models import CaseOutput, GenerativeModel, ModelStatus, Run
from inference.services import artifacts, runs
from medgen_site.celery import app
from tests.support.evaluation import TINY, downstream_task, near_reference, succeeded_run
from tests.support.factories import Slow, make_task, save_torchscript
from tests.support.jobs import wait_for_job, wait_until
from tests.support.net import free_port

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def slow_run(tmp_path, n_cases=8, rounds=60):
    task = make_task(n_cases=n_cases)
    path = save_torchscript(Slow(rounds=rounds), tmp_path / "slow.pt")
    model = artifacts.register_model(path, name="slow", task=task, spatial_shape=[None, None])
    return runs.create_run(model)  # queued once the worker has validated the model


def pool_pid(job):
    return int(job.worker.rpartition(":")[2])


def test_a_run_whose_pool_process_dies_every_time_fails_after_its_attempts(worker_factory, tmp_path, settings):
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1, MEDGEN_JOB_MAX_ATTEMPTS=3)
    run = slow_run(tmp_path)
    killed = set()
    for attempt in (1, 2, 3):
        mine = Run.objects.filter(pk=run.pk, status=JobStatus.RUNNING, attempts=attempt)
        running = wait_until(mine.first, timeout=120)
        killed.add(running.worker)
        os.kill(pool_pid(running), signal.SIGKILL)  # the job takes its process down, as a crashing model would
    run = wait_for_job(Run, run.pk, timeout=120)
    assert run.status == JobStatus.FAILED and run.attempts == 3, run.log
    assert run.error.endswith("is gone and 3 attempt(s) were used.") and len(killed) == 3


def test_one_step_slower_than_the_stale_limit_is_not_reaped_on_a_live_worker(worker_factory, tmp_path):
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=8, MEDGEN_JOB_HEARTBEAT_SECONDS=1)
    run = slow_run(tmp_path, n_cases=8, rounds=8000)  # one batch of 8: one call of several seconds
    wait_until(lambda: Run.objects.filter(pk=run.pk, status=JobStatus.RUNNING).exists(), timeout=120)
    requeued = []
    while not Run.objects.get(pk=run.pk).is_final:
        requeued += jobs.reap(jobs.kind_of(Run), stale_seconds=3)[0]  # a silent job would be reaped at 3 s
        time.sleep(0.5)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.attempts == 1 and requeued == []
    assert run.started_at and (run.finished_at - run.started_at).total_seconds() > 3


def test_a_worker_killed_mid_evaluation_is_replaced_and_the_results_are_written_once(worker_factory):
    first = worker_factory(MEDGEN_EVALUATION_BATCH_SIZE=1, MEDGEN_FEATURE_EXTRACTORS="radiomics")
    task = downstream_task(n_cases=8)
    run = succeeded_run(task, near_reference)
    evaluation = services.request_evaluation(run)
    wait_until(lambda: Evaluation.objects.get(pk=evaluation.pk).progress_done >= 2)
    first.kill()
    assert jobs.reap(jobs.kind_of(Evaluation), stale_seconds=0) == ([evaluation.pk], [])
    worker_factory(MEDGEN_EVALUATION_BATCH_SIZE=1, MEDGEN_FEATURE_EXTRACTORS="radiomics")
    evaluation = wait_for_job(Evaluation, evaluation.pk, timeout=180)
    assert evaluation.status == JobStatus.SUCCEEDED and evaluation.attempts == 2, evaluation.error
    assert CaseResult.objects.filter(run=run).count() == 8
    keys = list(MetricResult.objects.filter(run=run).values_list("metric", "extractor"))
    assert len(keys) == len(set(keys)) and ("ssim", "") in keys


def test_a_worker_killed_mid_training_is_replaced_and_the_job_finishes(worker_factory):
    first = worker_factory()
    task = downstream_task(n_cases=6)
    run = succeeded_run(task, near_reference)
    long_recipe = dataclasses.replace(TINY, name="tiny-long", epochs=40)
    downstream.declare_downstream(task, config=long_recipe, seeds=(0,), queue_existing=False)
    job = downstream.request_downstream(run)
    wait_until(lambda: DownstreamJob.objects.get(pk=job.pk).epoch >= 2, timeout=120)
    first.kill()
    assert job.pk in jobs.reap(jobs.kind_of(DownstreamJob), stale_seconds=0)[0]
    worker_factory()
    job = wait_for_job(DownstreamJob, job.pk, timeout=240)
    assert job.status == JobStatus.SUCCEEDED and job.attempts == 2, job.error
    assert MetricResult.objects.filter(run=run, metric="downstream_dice").count() == 1


class RedisServer:
    """A redis-server of the test's own, on its own port, that the test stops and starts."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path
        self.process = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                   "no", "--dir", str(self.dir)]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(lambda: self._answers(), timeout=10)

    def _answers(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


def use_broker(url):
    """Point this process's Celery app at `url`: new connections (and producers) from now on."""
    app.conf.broker_url = app.conf.broker_write_url = url
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def own_broker(tmp_path):
    server = RedisServer(tmp_path)
    server.start()
    previous = app.conf.broker_url
    use_broker(server.url)  # this process dispatches to the test's broker too
    yield server
    server.stop()
    use_broker(previous)


def test_runs_created_while_the_broker_is_down_are_accepted_and_run_once_it_is_back(
    worker_factory, own_broker, staff_api, tmp_path
):
    worker_factory(CELERY_BROKER_URL=own_broker.url)
    task = make_task(n_cases=2)
    model = artifacts.register_model(
        save_torchscript(Slow(rounds=2), tmp_path / "m.pt"), name="m", task=task, spatial_shape=[None, None]
    )
    wait_until(lambda: GenerativeModel.objects.get(pk=model.pk).status == ModelStatus.VALID, timeout=120)
    own_broker.stop()
    started = time.monotonic()
    response = staff_api.post("/api/runs/", {"model": model.pk}, format="json")
    assert response.status_code == 201, response.content
    assert time.monotonic() - started < 10
    run = Run.objects.get(pk=response.json()["id"])
    assert run.status == JobStatus.QUEUED
    own_broker.start()
    jobs.reap(jobs.kind_of(Run), stale_seconds=0)  # what the beat's reaper does every minute: resend
    run = wait_for_job(Run, run.pk, timeout=120)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert CaseOutput.objects.filter(run=run).count() == 2
    assert Run.objects.filter(task=task).count() == 1


def test_terminated_database_connections_mid_run_are_survived(worker_factory, tmp_path):
    if connection.vendor != "postgresql":
        pytest.skip("pg_terminate_backend is PostgreSQL's")
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    run = slow_run(tmp_path, n_cases=8)
    wait_until(lambda: Run.objects.get(pk=run.pk).progress_done >= 2, timeout=120)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        assert cursor.fetchone()[0] >= 1
    run = wait_for_job(Run, run.pk, timeout=180)
    assert run.status == JobStatus.SUCCEEDED, run.log
    assert CaseOutput.objects.filter(run=run).count() == 8
