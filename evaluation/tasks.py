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


@shared_task(name="evaluation.tasks.run_downstream")
def run_downstream(job_id):
    """The downstream-task tier's training job; routed to the `inference` queue (settings.CELERY_TASK_ROUTES)."""
    from . import downstream

    return downstream.execute_downstream(job_id)


@shared_task(name="evaluation.tasks.reap_stale_downstream")
def reap_stale_downstream():
    from . import downstream

    requeued, failed = downstream.reap_stale_downstream()
    return {"requeued": requeued, "failed": failed}
