"""The job framework itself (core.jobs, core.models.Job): one state machine, claim and takeover,
heartbeat, finishing, transient errors, the reaper, lost messages and robust chaining."""

import time
from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from core import jobs
from core.models import IllegalTransition, JobStatus
from core.signals import deliver_finished, job_finished
from core.threads import threads_for
from evaluation.models import Evaluation
from inference.models import Run, RunKind
from tests.support.factories import make_task

pytestmark = pytest.mark.django_db


def queued_run(**fields):
    task = make_task(n_cases=1)
    return Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.QUEUED, **fields)


@pytest.fixture
def handler(monkeypatch):
    """Replace the run kind's handler for one test: `handler.set(fn)`."""

    class Swap:
        def set(self, fn):
            kind = jobs.kind_of(Run)
            monkeypatch.setitem(jobs._kinds, kind.label, jobs.JobKind(Run, kind.label, fn, "metrics", "run"))

    return Swap()


def test_a_final_job_is_queued_again_only_for_kinds_that_may_rerun():
    run = Run(status=JobStatus.FAILED)
    with pytest.raises(IllegalTransition):
        run.transition(JobStatus.QUEUED, save=False)
    evaluation = Evaluation(
        status=JobStatus.FAILED, error="boom", started_at=timezone.now(), finished_at=timezone.now()
    )
    evaluation.transition(JobStatus.QUEUED, save=False)
    assert evaluation.status == JobStatus.QUEUED and evaluation.queued_at
    assert (evaluation.error, evaluation.started_at, evaluation.finished_at) == ("", None, None)


def test_a_requeued_running_job_keeps_its_first_start():
    run = Run(status=JobStatus.QUEUED)
    run.transition(JobStatus.RUNNING, save=False)
    first = run.started_at
    run.transition(JobStatus.QUEUED, save=False)  # its worker was lost
    run.transition(JobStatus.RUNNING, save=False)
    assert run.started_at == first and run.finished_at is None


def test_taking_over_from_a_dead_worker_counts_an_attempt_and_fails_at_the_limit(settings):
    settings.MEDGEN_JOB_MAX_ATTEMPTS = 2
    run = queued_run()
    dead = f"{jobs.worker_name().rpartition(':')[0]}:999999999"
    Run.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, attempts=1, worker=dead)
    context = jobs.claim(jobs.kind_of(Run), run.pk)
    assert context is not None and context.attempt == 2
    assert "is gone; taking over" in Run.objects.get(pk=run.pk).log
    Run.objects.filter(pk=run.pk).update(worker=dead)  # the second worker died too
    assert jobs.claim(jobs.kind_of(Run), run.pk) is None
    failed = Run.objects.get(pk=run.pk)
    assert failed.status == JobStatus.FAILED
    assert failed.error == f"The worker process {dead} is gone and 2 attempt(s) were used."


def test_a_job_that_is_not_queued_is_skipped():
    run = queued_run()
    Run.objects.filter(pk=run.pk).update(status=JobStatus.CANCELLED)
    assert jobs.execute("inference.run", run.pk) == "skipped"
    assert jobs.execute("inference.run", 10**9) == "skipped"  # deleted since it was sent


def test_a_handler_that_returns_succeeds_and_one_that_raises_fails_with_the_reason(handler):
    handler.set(lambda run, context: context.progress(done=1, total=1, phase="done"))
    run = queued_run()
    assert jobs.execute("inference.run", run.pk) == "succeeded"
    run.refresh_from_db()
    assert (run.status, run.progress_done, run.phase, run.attempts) == (JobStatus.SUCCEEDED, 1, "done", 1)

    def broken(run, context):
        raise RuntimeError("no such thing")

    handler.set(broken)
    other = queued_run()
    assert jobs.execute("inference.run", other.pk) == "failed"
    other.refresh_from_db()
    assert other.status == JobStatus.FAILED and other.error == "RuntimeError: no such thing"


def test_progress_stops_an_attempt_whose_job_was_cancelled(handler):
    seen = []

    def cancelled_midway(run, context):
        context.progress(done=1)
        Run.objects.get(pk=run.pk).transition(JobStatus.CANCELLED, error="Cancelled by a user.")
        seen.append("cancelled")
        context.progress(done=2)
        seen.append("kept going")

    handler.set(cancelled_midway)
    run = queued_run()
    assert jobs.execute("inference.run", run.pk) == "stopped"
    assert seen == ["cancelled"]
    run.refresh_from_db()
    assert run.status == JobStatus.CANCELLED and run.progress_done == 1


def test_a_transient_database_error_requeues_the_job_instead_of_failing_it(handler, monkeypatch):
    def drops_the_connection(run, context):
        raise OperationalError("server closed the connection unexpectedly")

    handler.set(drops_the_connection)
    sent = []
    monkeypatch.setattr(jobs, "dispatch", lambda job: sent.append(job.pk))
    run = queued_run()
    assert jobs.execute("inference.run", run.pk) == "requeued"
    run.refresh_from_db()
    assert run.status == JobStatus.QUEUED and run.error == "" and "transient database error" in run.log


def test_an_unreachable_broker_leaves_the_job_queued_for_the_reaper(monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("[Errno 111] Connection refused")

    monkeypatch.setattr(jobs.current_app, "send_task", refuse)
    run = queued_run()
    assert jobs.dispatch(run) is False
    assert "could not reach the broker" in caplog.text
    Run.objects.filter(pk=run.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    sent = []
    monkeypatch.setattr(jobs, "dispatch", lambda job: sent.append(job.pk))
    jobs.reap(jobs.kind_of(Run), stale_seconds=60)
    assert sent == [run.pk]


def test_a_failed_receiver_does_not_stop_the_others_and_is_called_again_by_the_reaper():
    calls = []

    def flaky(sender, job_id, status, **kwargs):
        calls.append("flaky")
        if calls.count("flaky") == 1:
            raise RuntimeError("the next job could not be queued")

    def steady(sender, job_id, status, **kwargs):
        calls.append("steady")

    job_finished.connect(flaky, sender=Run, dispatch_uid="test-flaky")
    job_finished.connect(steady, sender=Run, dispatch_uid="test-steady")
    try:
        run = queued_run(finished_at=timezone.now() - timedelta(hours=1))
        Run.objects.filter(pk=run.pk).update(status=JobStatus.SUCCEEDED)
        assert deliver_finished(Run, run.pk, JobStatus.SUCCEEDED) is False
        assert calls.count("steady") == 1 and Run.objects.get(pk=run.pk).chained_at is None
        jobs.reap(jobs.kind_of(Run), stale_seconds=60, rechain_seconds=60)
        assert calls.count("flaky") == 2 and Run.objects.get(pk=run.pk).chained_at is not None
        jobs.reap(jobs.kind_of(Run), stale_seconds=60, rechain_seconds=60)
        assert calls.count("flaky") == 2  # delivered once all receivers ran
    finally:
        job_finished.disconnect(dispatch_uid="test-flaky", sender=Run)
        job_finished.disconnect(dispatch_uid="test-steady", sender=Run)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_beats_while_one_long_step_runs(handler, settings):
    settings.MEDGEN_JOB_HEARTBEAT_SECONDS = 0.2
    beats = []

    def one_long_step(run, context):
        started = Run.objects.get(pk=run.pk).heartbeat_at
        time.sleep(1.0)  # no progress call in between: only the thread can beat
        beats.append(Run.objects.get(pk=run.pk).heartbeat_at > started)

    handler.set(one_long_step)
    run = queued_run()
    assert jobs.execute("inference.run", run.pk) == "succeeded"
    assert beats == [True]


def test_threads_per_worker_process_are_cores_divided_by_concurrency_unless_set():
    assert threads_for(1, cores=2) == 2
    assert threads_for(2, cores=2) == 1
    assert threads_for(4, cores=2) == 1
    assert threads_for(1, cores=16, configured=3) == 3
