"""Every background job's life, written once: register a kind, queue, claim, run, finish, reap.

A job kind is a concrete subclass of `core.models.Job` registered here with the function that
does its work (its *handler*) and the queue it runs on. One Celery task (`core.execute_job`,
see `core.tasks`) carries every kind's message as (kind label, pk) and calls `execute`, which

1. claims the job under a row lock (queued → running, attempt number + 1), taking over a job
   whose recorded worker process on this host is gone — counted as an attempt, so a job that
   kills its worker every time fails after `MEDGEN_JOB_MAX_ATTEMPTS`;
2. starts a heartbeat thread, so a long step (one slow batch, one training epoch) keeps the
   job alive for the reaper while the worker is;
3. calls `handler(job, context)`: the handler reports progress through the `JobContext`
   (which raises `Stopped` once a cancel or a newer attempt took the job away), and may
   finish the job itself (`context.finish`) to write its results in the same transaction;
4. finishes the job as succeeded when the handler returns, or failed with a message that
   says why when it raises; a transient database error requeues it instead.

`reap` (one beat task for every kind) requeues running jobs whose worker went silent or died,
fails those that used up their attempts, resends queued jobs whose message was lost, and
re-delivers `job_finished` for final jobs whose receivers did not all run. The shape is
grand-challenge's `ComponentJob` with its generic tasks, smaller.
"""

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta

from celery import current_app
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from .models import FINAL, JobStatus
from .signals import deliver_finished

log = logging.getLogger(__name__)

EXECUTE_TASK = "core.execute_job"


class Stopped(Exception):
    """The job was cancelled or handed to another attempt while this one worked."""


@dataclass(frozen=True)
class JobKind:
    """How a job model is run: its handler, its queue, which errors are the user's (shown as they are)."""

    model: type
    label: str
    handler: object  # handler(job, context) -> None
    queue: object  # a queue name, or queue(job) -> name
    what: str  # "run", "evaluation": used in messages
    expected_errors: tuple = ()

    def queue_for(self, job):
        return self.queue(job) if callable(self.queue) else self.queue


_kinds = {}


def label_of(model):
    return f"{model._meta.app_label}.{model._meta.model_name}"


def register(model, *, handler, queue, what=None, expected_errors=()):
    """Make `model` (a concrete `Job`) a job kind; apps call this from `AppConfig.ready`."""
    kind = JobKind(model, label_of(model), handler, queue, what or model.JOB_NAME.lower(), tuple(expected_errors))
    _kinds[kind.label] = kind
    return kind


def kind_of(model_or_label):
    label = model_or_label if isinstance(model_or_label, str) else label_of(model_or_label)
    try:
        return _kinds[label]
    except KeyError:
        raise LookupError(f"'{label}' is not a registered job kind; known: {', '.join(sorted(_kinds))}") from None


def kinds():
    return list(_kinds.values())


# --------------------------------------------------------------------------- workers


def worker_name():
    return f"{socket.gethostname()}:{os.getpid()}"


def worker_is_dead(name):
    """True only when `name` is a process on this host that no longer exists.

    A worker elsewhere cannot be checked from here and counts as alive; the heartbeat
    decides for it. (A recycled pid could make a dead worker look alive, never the reverse.)
    """
    host, _, pid = (name or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


# --------------------------------------------------------------------------- queueing


def dispatch(job):
    """Send the job's message now. A broker that cannot be reached is logged, not raised: the job
    stays queued and the reaper sends it again (`resend_lost`), so a request that created it
    still succeeds."""
    kind = kind_of(type(job))
    try:
        current_app.send_task(
            EXECUTE_TASK,
            args=[kind.label, job.pk],
            queue=kind.queue_for(job),
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.1, "interval_step": 0.2},
        )
    except Exception as exc:  # kombu raises OperationalError and friends
        log.warning("%s %s: could not reach the broker (%s); the reaper will send it", kind.what, job.pk, exc)
        return False
    return True


def queue(job):
    """pending / final (re-run) / lost running → queued, and send the message once the transaction commits."""
    job.transition(JobStatus.QUEUED)
    transaction.on_commit(lambda: dispatch(job))


# --------------------------------------------------------------------------- running


def _max_attempts(override=None):
    return settings.MEDGEN_JOB_MAX_ATTEMPTS if override is None else override


def _attempts_used(reason, attempts):
    return f"{reason[0].upper()}{reason[1:]} and {attempts} attempt(s) were used."


def claim(kind, pk):
    """queued → running under a row lock with a new attempt number; a `JobContext`, or None if not ours."""
    with transaction.atomic():
        job = kind.model.objects.select_for_update().filter(pk=pk).first()
        if job is None:
            log.info("%s %s no longer exists; nothing to do", kind.what, pk)
            return None
        if job.status == JobStatus.RUNNING and worker_is_dead(job.worker):
            # Redelivered after its worker process died (`reject_on_worker_lost`): take it over now
            # rather than after the reaper's timeout, but count the death as an attempt.
            reason = f"the worker process {job.worker} is gone"
            if job.attempts >= _max_attempts():
                job.transition(JobStatus.FAILED, error=_attempts_used(reason, job.attempts))
                return None
            job.transition(JobStatus.QUEUED, save=False)
            job.append_log(f"{reason}; taking over", save=False)
        if job.status != JobStatus.QUEUED:
            log.info("%s %s is %s; nothing to do", kind.what, pk, job.status)
            return None
        job.attempts += 1
        job.worker = worker_name()
        job.transition(JobStatus.RUNNING, save=False)
        job.append_log(f"attempt {job.attempts} on {job.worker}", save=False)
        job.save()
    return JobContext(kind, job, job.attempts)


class JobContext:
    """What a handler gets besides its job: progress and heartbeat, ownership, log, finishing.

    Every write is conditional on this attempt still owning the job (running under attempt N),
    so a cancelled or superseded attempt can never overwrite the job or its successor's state.
    """

    def __init__(self, kind, job, attempt):
        self.kind = kind
        self.job = job
        self.pk = job.pk
        self.attempt = attempt
        self.outcome = None  # the final status once `finish` moved the job, or "stopped"
        self.lost = threading.Event()  # set by the heartbeat when the job was taken away

    @property
    def model(self):
        return self.kind.model

    def _mine(self):
        return self.model.objects.filter(pk=self.pk, status=JobStatus.RUNNING, attempts=self.attempt)

    def still_ours(self):
        return not self.lost.is_set() and self._mine().exists()

    def check(self):
        """Raise `Stopped` unless this attempt still owns the job."""
        if not self.still_ours():
            raise Stopped

    def progress(self, *, done=None, total=None, phase=None, **fields):
        """Heartbeat plus progress fields (and any of the job's own fields); `Stopped` if no longer ours."""
        if self.lost.is_set():
            raise Stopped
        values = {"heartbeat_at": timezone.now(), **fields}
        if done is not None:
            values["progress_done"] = done
        if total is not None:
            values["progress_total"] = total
        if phase is not None:
            values["phase"] = phase
        if not self._mine().update(**values):
            raise Stopped

    def log(self, message):
        with transaction.atomic():
            job = self._mine().select_for_update().first()
            if job is None:
                raise Stopped
            job.append_log(message)

    def finish(self, status, *, error="", lock_first=None, guard=None, effects=None, **fields):
        """running → `status`, only if this attempt still owns the job. Returns True if it moved.

        In one transaction: `lock_first()` (rows to lock before the job's, so concurrent finishers
        take turns), then the job's lock and ownership check, `guard(job)` (a non-empty message
        fails the job with it instead), the fields and the transition, then `effects(job)`
        (results to write with it).
        """
        with transaction.atomic():
            if lock_first is not None:
                lock_first()
            job = self.model.objects.select_for_update().get(pk=self.pk)
            if job.status != JobStatus.RUNNING or job.attempts != self.attempt:
                self.outcome = "stopped"
                return False
            problem = guard(job) if guard is not None else ""
            if problem:
                status, error, fields, effects = JobStatus.FAILED, problem, {}, None
            for key, value in fields.items():
                setattr(job, key, value)
            job.transition(status, error=error)
            if effects is not None:
                effects(job)
        self.job = job
        self.outcome = str(JobStatus(status))
        return not problem

    def fail(self, error, **fields):
        return self.finish(JobStatus.FAILED, error=error, **fields)


class _Heartbeat(threading.Thread):
    """Stamps the job's heartbeat every `interval` seconds while the handler works, on its own
    database connection; stops (and flags the context) once the job is no longer this attempt's."""

    def __init__(self, context, interval):
        super().__init__(name=f"heartbeat-{context.kind.label}-{context.pk}", daemon=True)
        self.context = context
        self.interval = interval
        self.done = threading.Event()

    def run(self):
        try:
            while not self.done.wait(self.interval):
                try:
                    if not self.context._mine().update(heartbeat_at=timezone.now()):
                        self.context.lost.set()
                        return
                except DatabaseError as exc:  # a passing outage: the next beat tries again
                    log.warning("heartbeat of %s %s failed: %s", self.context.kind.what, self.context.pk, exc)
                    connection.close()
        finally:
            connection.close()

    def stop(self):
        self.done.set()
        self.join(timeout=self.interval + 5)


def heartbeat_interval():
    return settings.MEDGEN_JOB_HEARTBEAT_SECONDS


def _start_heartbeat(context):
    # Inside an outer transaction (a test's) the thread's own connection could wait forever on
    # rows that transaction holds; a worker never runs a job inside one.
    if connection.in_atomic_block:
        return None
    beat = _Heartbeat(context, heartbeat_interval())
    beat.start()
    return beat


TRANSIENT_DB_ERRORS = (OperationalError, InterfaceError)


def failure_message(exc, kind):
    """The error a failed job shows. Call it inside the `except` block (unexpected errors are logged there)."""
    if isinstance(exc, SoftTimeLimitExceeded):
        return f"The {kind.what} ran past its time limit of {settings.CELERY_TASK_SOFT_TIME_LIMIT} s."
    if isinstance(exc, kind.expected_errors):
        return str(exc)
    log.exception("%s crashed", kind.what)
    return f"{type(exc).__name__}: {exc}"


def execute(label, pk):
    """The generic task's body: claim, run the kind's handler, finish. Safe to run twice."""
    kind = kind_of(label)
    context = claim(kind, pk)
    if context is None:
        return "skipped"
    beat = _start_heartbeat(context)
    try:
        kind.handler(context.job, context)
    except Stopped:
        return context.outcome or "stopped"
    except TRANSIENT_DB_ERRORS as exc:
        return _retry_after_transient_error(context, exc)
    except Exception as exc:
        context.fail(failure_message(exc, kind))
        return context.outcome
    finally:
        if beat is not None:
            beat.stop()
    if context.outcome is None:
        context.finish(JobStatus.SUCCEEDED)
    return context.outcome


def _retry_after_transient_error(context, exc):
    """A dropped or refused database connection is not the job's fault: requeue it (the next claim
    counts an attempt, so a database that stays away still ends in a failure)."""
    log.warning("%s %s: transient database error, requeued: %s", context.kind.what, context.pk, exc)
    _reconnect()
    for delay in (0.5, 2, 5):
        try:
            with transaction.atomic():
                job = context._mine().select_for_update().first()
                if job is None:
                    return "stopped"
                if job.attempts >= _max_attempts():
                    job.transition(JobStatus.FAILED, error=f"The database connection failed: {exc}".strip())
                    return "failed"
                job.append_log(f"transient database error ({type(exc).__name__}: {exc}); requeued", save=False)
                queue(job)
            return "requeued"
        except TRANSIENT_DB_ERRORS:
            _reconnect()
            time.sleep(delay)
    return "stopped"  # the reaper finds it running and silent


def _reconnect():
    """Drop a broken connection so the next query opens a new one (never inside a transaction: a test's)."""
    if not connection.in_atomic_block:
        connection.close()


# --------------------------------------------------------------------------- reaping


def reap(kind, *, stale_seconds=None, max_attempts=None, rechain_seconds=None):
    """One pass of the reaper over one kind: (requeued ids, failed ids).

    Running jobs with no heartbeat for `stale_seconds` (or whose worker on this host is gone) are
    requeued, or failed once they used `MEDGEN_JOB_MAX_ATTEMPTS`; queued jobs older than that are
    sent again (a message lost on the way); final jobs whose `job_finished` receivers did not all
    run get the signal again.
    """
    stale_seconds = settings.MEDGEN_JOB_STALE_SECONDS if stale_seconds is None else stale_seconds
    attempts_limit = _max_attempts(max_attempts)
    rechain_seconds = settings.MEDGEN_JOB_RECHAIN_SECONDS if rechain_seconds is None else rechain_seconds
    now = timezone.now()
    cutoff = now - timedelta(seconds=stale_seconds)
    requeued, failed = [], []
    for pk in kind.model.objects.filter(status=JobStatus.RUNNING).values_list("pk", flat=True):
        with transaction.atomic():
            job = kind.model.objects.select_for_update().get(pk=pk)
            silent = job.heartbeat_at is None or job.heartbeat_at < cutoff
            if job.status != JobStatus.RUNNING or not (silent or worker_is_dead(job.worker)):
                continue
            if silent:
                silence = int((now - (job.heartbeat_at or job.created_at)).total_seconds())
                reason = f"the worker {job.worker} stopped reporting ({silence} s without a heartbeat)"
            else:
                reason = f"the worker process {job.worker} is gone"
            if job.attempts >= attempts_limit:
                job.transition(JobStatus.FAILED, error=_attempts_used(reason, job.attempts))
                failed.append(pk)
            else:
                job.append_log(f"{reason}; requeued", save=False)
                queue(job)
                requeued.append(pk)
    resend_lost(kind, cutoff=cutoff)
    rechain(kind, cutoff=now - timedelta(seconds=rechain_seconds))
    return requeued, failed


def resend_lost(kind, *, cutoff):
    """Send the message again for jobs queued before `cutoff` and still unclaimed; returns their ids.

    Covers a message lost on the way (a broker restarted without persistence, or down when the job
    was queued); a second message for a job already taken is a no-op."""
    lost = list(kind.model.objects.filter(status=JobStatus.QUEUED, queued_at__lt=cutoff))
    for job in lost:
        kind.model.objects.filter(pk=job.pk).update(queued_at=timezone.now())
        dispatch(job)
    return [job.pk for job in lost]


def rechain(kind, *, cutoff):
    """Deliver `job_finished` again for final jobs, finished before `cutoff`, whose receivers did not all run."""
    pending = kind.model.objects.filter(status__in=FINAL, chained_at__isnull=True, finished_at__lt=cutoff)
    delivered = []
    for pk, status in pending.values_list("pk", "status"):
        if deliver_finished(kind.model, pk, status):
            delivered.append(pk)
    return delivered


def reap_all(**options):
    """The reaper over every registered kind: {label: {"requeued": [...], "failed": [...]}}."""
    report = {}
    for kind in kinds():
        requeued, failed = reap(kind, **options)
        report[kind.label] = {"requeued": requeued, "failed": failed}
    return report


def wait_for(model, pks, *, timeout=60.0, poll=0.2):
    """Poll until every job in `pks` is final or the time is up (the demo command and tests); the jobs."""
    pks = list(pks)
    deadline = time.monotonic() + timeout
    while True:
        jobs = list(model.objects.filter(pk__in=pks))
        if (len(jobs) == len(pks) and all(job.is_final for job in jobs)) or time.monotonic() > deadline:
            return jobs
        time.sleep(poll)
