"""Celery tasks: thin wrappers over the services, each safe to run twice.

`acks_late` and `reject_on_worker_lost` come from the settings: a message is acknowledged
only after its task returns, so a killed worker's job is delivered again; the services'
state checks turn a second delivery into a no-op.
"""

from celery import shared_task

from .services import artifacts, runs, submissions


@shared_task(name="inference.tasks.validate_model")
def validate_model(model_id):
    return artifacts.validate_model(model_id)


@shared_task(name="inference.tasks.run_inference")
def run_inference(run_id):
    return runs.execute_run(run_id)


@shared_task(name="inference.tasks.validate_submission")
def validate_submission(run_id):
    return submissions.validate_submission(run_id)


@shared_task(name="inference.tasks.reap_stale_runs")
def reap_stale_runs():
    requeued, failed = runs.reap_stale_runs()
    return {"requeued": requeued, "failed": failed}
