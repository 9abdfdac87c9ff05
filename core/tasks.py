"""The platform's only job tasks: one executes any kind of job, one reaps them all.

`acks_late` and `reject_on_worker_lost` come from the settings: a message is acknowledged
only after the task returns, so a killed worker's job is delivered again, and the claim in
`core.jobs` turns a second delivery into a no-op (or a counted takeover).
"""

from celery import shared_task

from . import jobs


@shared_task(name=jobs.EXECUTE_TASK)
def execute_job(label, pk):
    return jobs.execute(label, pk)


@shared_task(name="core.reap_jobs")
def reap_jobs():
    return jobs.reap_all()
