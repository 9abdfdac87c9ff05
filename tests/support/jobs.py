"""Running and waiting for jobs in tests, through the same `core.jobs` a worker uses."""

import time

from core import jobs
from inference.models import GenerativeModel


def run_job(job):
    """Execute a queued job in this process, as a worker would: 'succeeded', 'failed', 'skipped', 'stopped'."""
    return jobs.execute(jobs.label_of(type(job)), job.pk)


def validate(model):
    """Run a model's validation job here; the model's status afterwards (valid or invalid)."""
    run_job(model.validation)
    return GenerativeModel.objects.get(pk=model.pk).status


def wait_for_job(model, pk, timeout=60.0):
    """The job once it is final (or when the time is up), waited for by polling the database."""
    return jobs.wait_for(model, [pk], timeout=timeout)[0]


def wait_until(predicate, timeout=90.0, poll=0.1, what="condition"):
    """`predicate()`'s first true value, polled every `poll` s; an AssertionError after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(poll)
    raise AssertionError(f"{what} not reached in {timeout} s")
