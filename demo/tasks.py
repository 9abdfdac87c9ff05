"""Celery tasks of the demo (the `metrics` queue)."""

from celery import shared_task

from . import probe_demo, study

#: The demo study waits for the translation runs and their evaluations: retry every 10 s for up to an hour.
DEMO_RETRY_SECONDS = 10
DEMO_MAX_RETRIES = 360


@shared_task(bind=True, name="demo.tasks.seed_demo_study", max_retries=DEMO_MAX_RETRIES)
def seed_demo_study(self, items_per_model=5):
    """Safe to run twice: a second run finds the study and does nothing."""
    try:
        seeded = study.seed_study(items_per_model=items_per_model)
    except study.NotReady as exc:
        raise self.retry(countdown=DEMO_RETRY_SECONDS, exc=exc) from None
    return seeded.pk if seeded else None


@shared_task(bind=True, name="demo.tasks.seed_demo_probes", max_retries=DEMO_MAX_RETRIES)
def seed_demo_probes(self):
    """The demo's probe set and probe runs (`probe_demo.seed_probes`); safe to run twice."""
    try:
        return probe_demo.seed_probes()
    except probe_demo.NotReady as exc:
        raise self.retry(countdown=DEMO_RETRY_SECONDS, exc=exc) from None
