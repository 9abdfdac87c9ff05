"""Reads of the downstream tier: a task's setup and real→real reference, a run's job, the run page's
downstream block and where the training curves are shown."""

from django.urls import reverse

from core.models import JobStatus

from ..metrics import catalog
from ..models import DownstreamJob, DownstreamSetup


def setup_of(task):
    return DownstreamSetup.objects.filter(task=task).first()


def job_of(run):
    """The run's downstream job under its task's current setup, or None."""
    return DownstreamJob.objects.filter(run=run, setup__task_id=run.task_id).select_related("setup").first()


def reference_job(setup):
    return DownstreamJob.objects.filter(setup=setup, run__isnull=True).first()


def curves_url(run):
    """The run's training-curves page (plotly), or, for None, nothing."""
    return reverse("run-downstream-curves", args=[run.pk]) if run is not None else None


def reference_curves_url(task):
    return reverse("task-downstream-curves", args=[task.slug])


def task_reference(task):
    """The task's real→real reference, or None when the task has no downstream evaluation.

    {"status", "config", "seeds", "n_test_cases", "dice", "dice_ci" (lo, hi), "hd95", "hd95_ci",
    "error", "curves_url"}; the numbers are None until the reference job has succeeded.
    """
    setup = setup_of(task)
    if setup is None:
        return None
    job = reference_job(setup)
    summary = (job.results.get("summary") or {}) if job and job.status == JobStatus.SUCCEEDED else {}
    dice, hd95 = summary.get("dice") or {}, summary.get("hd95") or {}
    return {
        "status": job.status if job else JobStatus.PENDING.value,
        "config": setup.name,
        "seeds": list(setup.seeds),
        "n_test_cases": len(setup.test_case_ids),
        "dice": dice.get("value"),
        "dice_ci": tuple(dice["ci"]) if dice else None,
        "hd95": hd95.get("value"),
        "hd95_ci": tuple(hd95["ci"]) if hd95 else None,
        "error": job.error if job else "",
        "curves_url": reference_curves_url(task),
    }


def run_downstream_panel(run):
    """The run page's downstream block (None when the task declared no downstream evaluation)."""
    setup = setup_of(run.task)
    if setup is None:
        return None
    job = job_of(run)
    results = {r.metric: r for r in run.metric_results.all() if r.tier == catalog.CLINICAL}
    return {
        "run": run,
        "setup": setup,
        "job": job,
        "rows": [(catalog.get(key), results.get(key)) for key in catalog.CLINICAL_METRICS],
        "reference": task_reference(run.task),
        "curves_url": curves_url(run) if job else None,
    }
