"""Celery tasks of the `metrics` queue: thin wrappers over the services, safe to run twice."""

from celery import shared_task

from . import services


@shared_task(name="evaluation.tasks.evaluate_run")
def evaluate_run(evaluation_id):
    return services.execute_evaluation(evaluation_id)


@shared_task(name="evaluation.tasks.reap_stale_evaluations")
def reap_stale_evaluations():
    requeued, failed = services.reap_stale_evaluations()
    return {"requeued": requeued, "failed": failed}
