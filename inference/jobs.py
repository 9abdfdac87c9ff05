"""What every background job of the platform (runs, evaluations) shares: who owns it.

A job row records the worker ("host:pid") and an attempt number. The worker that claimed
attempt N may write results and move the state only while the row is still running under
attempt N; a cancel, a reaper that handed the job to attempt N + 1, or a second delivery
of the message all make it stop.
"""

import logging
import os
import socket
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)


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


def claim(model, pk, *, queued, running, accept=None):
    """queued → running under a row lock, with a new attempt number: (job, attempt), or (None, None).

    A job still marked running whose recorded worker process on this host is gone was
    redelivered after its pool process died (`reject_on_worker_lost`): it is taken over at
    once rather than after the reaper's heartbeat timeout. `accept(job)` can refuse a job
    this kind of task does not handle.
    """
    with transaction.atomic():
        job = model.objects.select_for_update().get(pk=pk)
        accepted = accept is None or accept(job)
        if accepted and job.status == running and worker_is_dead(job.worker):
            job.transition(queued, save=False)
            job.append_log(f"worker {job.worker} is gone; taking over", save=False)
        if not accepted or job.status != queued:
            log.info("%s %s is %s; nothing to do", model.__name__, pk, job.status)
            return None, None
        job.attempts += 1
        job.worker = worker_name()
        job.transition(running, save=False)
        job.append_log(f"attempt {job.attempts} on {job.worker}", save=False)
        job.save()
        return job, job.attempts


def failure_message(exc, what, expected=()):
    """The error a failed job shows. Call it inside the `except` block (unexpected errors are logged there)."""
    from celery.exceptions import SoftTimeLimitExceeded

    if isinstance(exc, SoftTimeLimitExceeded):
        return f"The {what} exceeded its time limit."
    if isinstance(exc, expected):
        return str(exc)
    log.exception("%s crashed", what)
    return f"{type(exc).__name__}: {exc}"


def still_ours(model, pk, attempt, running):
    """False once the job left `running` or was handed to a newer attempt."""
    row = model.objects.filter(pk=pk).values("status", "attempts").first()
    return bool(row) and row["status"] == running and row["attempts"] == attempt


def finish(model, pk, attempt, running, status, *, error="", **fields):
    """running → `status` (via the model's `transition`), only if this attempt still owns the job."""
    with transaction.atomic():
        job = model.objects.select_for_update().get(pk=pk)
        if job.status != running or job.attempts != attempt:
            return False
        for key, value in fields.items():
            setattr(job, key, value)
        job.transition(status, error=error)
    return True


def reap_stale(model, *, running, stale_seconds, max_attempts, requeue, fail):
    """Running jobs whose worker went silent (no heartbeat for `stale_seconds`) or whose process is gone.

    Each is locked and handed to `requeue(job)` with a log line, or to `fail(job, message)` once it
    has used `max_attempts`, so no job stays running forever. Returns (requeued ids, failed ids).
    """
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    requeued, failed = [], []
    for pk in model.objects.filter(status=running).values_list("pk", flat=True):
        with transaction.atomic():
            job = model.objects.select_for_update().get(pk=pk)
            silent = job.heartbeat_at is None or job.heartbeat_at < cutoff
            if job.status != running or not (silent or worker_is_dead(job.worker)):
                continue
            if silent:
                silence = int((timezone.now() - (job.heartbeat_at or job.created_at)).total_seconds())
                reason = f"the worker {job.worker} stopped reporting ({silence} s without a heartbeat)"
            else:
                reason = f"the worker process {job.worker} is gone"
            if job.attempts >= max_attempts:
                fail(job, f"{reason[0].upper()}{reason[1:]} and {job.attempts} attempt(s) were used.")
                failed.append(pk)
            else:
                job.append_log(f"{reason}; requeued", save=False)
                requeue(job)
                requeued.append(pk)
    return requeued, failed


def resend_lost(model, *, queued, cutoff, dispatch):
    """Send the job again for rows queued before `cutoff` and still unclaimed.

    Covers a message lost on the way (a broker restarted without persistence, a dispatch that
    failed after the commit); a second message for a job already taken is a no-op. Returns the ids.
    """
    lost = list(model.objects.filter(status=queued, queued_at__lt=cutoff).values_list("pk", flat=True))
    for pk in lost:
        model.objects.filter(pk=pk).update(queued_at=timezone.now())
        dispatch(pk)
    return lost


def reap(model, *, requeue, dispatch, stale_seconds=None, max_attempts=None):
    """The reaper for a job model with a `JobStateMachine` (its `STATUS` has RUNNING, QUEUED, FAILED):
    requeue or fail silent running jobs (`reap_stale`), then resend lost queued ones (`resend_lost`).
    Returns (requeued ids, failed ids)."""
    from django.conf import settings

    stale_seconds = settings.MEDGEN_RUN_STALE_SECONDS if stale_seconds is None else stale_seconds
    status = model.STATUS
    requeued, failed = reap_stale(
        model,
        running=status.RUNNING,
        stale_seconds=stale_seconds,
        max_attempts=settings.MEDGEN_RUN_MAX_ATTEMPTS if max_attempts is None else max_attempts,
        requeue=requeue,
        fail=lambda job, message: job.transition(status.FAILED, error=message),
    )
    resend_lost(
        model, queued=status.QUEUED, cutoff=timezone.now() - timedelta(seconds=stale_seconds), dispatch=dispatch
    )
    return requeued, failed
