"""What every background job of the platform (runs, evaluations) shares: who owns it.

A job row records the worker ("host:pid") and an attempt number. The worker that claimed
attempt N may write results and move the state only while the row is still running under
attempt N; a cancel, a reaper that handed the job to attempt N + 1, or a second delivery
of the message all make it stop.
"""

import os
import socket

from django.db import transaction


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
