"""The downstream tier's writes: declaring it per task, requesting (and cancelling) its training jobs.

A task whose cases carry label masks can declare a downstream evaluation (`declare_downstream`):
a seeded split of its labelled cases into train and test, a segmentation recipe
(`segmentation.SegmentationConfig`) and seeds. For every run that succeeds (and once for the real
images, the real→real reference) a job on the `inference` queue trains on the train cases and
scores on the real test cases (`training`); its results become the run's clinical-tier results
(`results`).
"""

import logging
from collections.abc import Sequence

from django.db import transaction

from core import jobs
from core.errors import Conflict, InvalidInput
from core.models import JobStatus
from inference.models import ImageRole, Run, Task

from .. import segmentation
from ..models import DownstreamJob, DownstreamSetup
from ..selectors import case_images
from .selectors import setup_of

log = logging.getLogger(__name__)


class DownstreamError(InvalidInput):
    """A downstream evaluation cannot be declared, requested or finished; the message says why."""


class DownstreamConflict(Conflict, DownstreamError):
    """The job's state does not allow the change (409)."""


def declare_downstream(
    task: Task,
    *,
    config: segmentation.SegmentationConfig = segmentation.DEFAULT_CONFIG,
    seeds: Sequence[int] = (0, 1, 2),
    test_fraction: float = 0.5,
    split_seed: int = 0,
    auto_run: bool = True,
    queue_existing: bool = True,
    user=None,
) -> DownstreamSetup:
    """Declare (or, while it has no results, re-declare) the task's downstream evaluation.

    Cases need a label and a reference image; the split puts only cases whose label has
    foreground into the test set (see `segmentation.split_cases`). With `queue_existing`, the
    real→real reference and every succeeded run of the task are queued.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise DownstreamError("Give at least one seed, each once.")
    case_ids, labelled, unusable = [], [], []
    for case in task.dataset.cases.order_by("case_id").prefetch_related("images"):
        labels = case_images(case, ImageRole.LABEL)
        if not labels or not case_images(case, ImageRole.REFERENCE):
            unusable.append(case.case_id)
            continue
        case_ids.append(case.case_id)
        labelled.append(bool((labels[0].intensity_max or 0) > 0.5))
    try:
        train, test = segmentation.split_cases(case_ids, labelled, test_fraction=test_fraction, seed=split_seed)
    except ValueError as exc:
        raise DownstreamError(f"Task '{task.slug}' cannot have a downstream evaluation: {exc}") from None
    fields = {
        "name": config.name,
        "config": config.as_dict(),
        "seeds": seeds,
        "split_seed": split_seed,
        "test_fraction": test_fraction,
        "train_case_ids": train,
        "test_case_ids": test,
        "unlabelled_case_ids": unusable,
        "auto_run": auto_run,
    }
    with transaction.atomic():
        setup = DownstreamSetup.objects.select_for_update().filter(task=task).first()
        if setup is not None and setup.is_frozen:
            changed = [key for key, value in fields.items() if key != "auto_run" and getattr(setup, key) != value]
            if changed:
                raise DownstreamError(
                    f"The downstream evaluation of '{task.slug}' has results; its split, configuration and seeds "
                    f"are frozen (asked to change: {', '.join(changed)})."
                )
            setup.auto_run = auto_run
            setup.save(update_fields=["auto_run"])
        elif setup is None:
            setup = DownstreamSetup.objects.create(task=task, **fields)
        else:
            for key, value in fields.items():
                setattr(setup, key, value)
            setup.save()
    if queue_existing:
        request_reference(task, user=user, quiet=True)
        for run in Run.objects.filter(task=task, status=JobStatus.SUCCEEDED).order_by("pk"):
            try:
                request_downstream(run, user=user)
            except DownstreamError as exc:
                log.info("run %s: downstream not queued: %s", run.pk, exc)
    return setup


def request_downstream(run: Run, *, user=None) -> DownstreamJob:
    """Queue (or re-queue) the downstream job of a succeeded run; the real→real reference too if it never ran."""
    setup = setup_of(run.task)
    if setup is None:
        raise DownstreamError(f"Task '{run.task.slug}' has no downstream evaluation.")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != JobStatus.SUCCEEDED:
            raise DownstreamError(f"Only a succeeded run can be used for training; this run is {run.status}.")
        job, _ = DownstreamJob.objects.select_for_update().get_or_create(setup=setup, run=run)
        _requeue(job, user)
    request_reference(run.task, user=user, quiet=True, only_if_new=True)
    return job


def request_reference(task: Task, *, user=None, quiet: bool = False, only_if_new: bool = False) -> DownstreamJob:
    """Queue the real→real reference job of the task (trained on the real reference images)."""
    setup = setup_of(task)
    if setup is None:
        raise DownstreamError(f"Task '{task.slug}' has no downstream evaluation.")
    with transaction.atomic():
        setup = DownstreamSetup.objects.select_for_update().get(pk=setup.pk)  # serialises concurrent get_or_create
        job, created = DownstreamJob.objects.select_for_update().get_or_create(setup=setup, run=None)
        if only_if_new and not created and job.status != JobStatus.PENDING:
            return job
        try:
            _requeue(job, user)
        except DownstreamError:
            if not quiet:
                raise
    return job


def _requeue(job: DownstreamJob, user) -> None:
    if job.is_active:
        raise DownstreamError(f"The downstream job is already {job.status}.")
    job.requested_by = user
    job.progress_done = 0
    job.append_log(f"requested by {user or 'the platform'}", save=False)
    jobs.queue(job)


def on_run_finished(sender, job_id, status, **kwargs):
    """`job_finished` receiver: a task that declared a downstream evaluation with auto_run trains once on each
    run that succeeds (and once on the real images); a repeated signal changes nothing."""
    if status != JobStatus.SUCCEEDED:
        return
    run = Run.objects.select_related("task").get(pk=job_id)
    if run.probe_of_id is not None:
        return
    setup = setup_of(run.task)
    if setup is None or not setup.auto_run:
        return
    with transaction.atomic():
        job, created = DownstreamJob.objects.select_for_update().get_or_create(setup=setup, run=run)
        if created or job.status == JobStatus.PENDING:
            _requeue(job, None)
    request_reference(run.task, quiet=True, only_if_new=True)


def cancel_downstream(job_id: int) -> DownstreamJob:
    """Cancel a queued or running downstream job; `DownstreamConflict` (409) once it is final."""
    with transaction.atomic():
        job = DownstreamJob.objects.select_for_update().get(pk=job_id)
        if job.is_final:
            raise DownstreamConflict(f"The downstream job has already {job.status}; there is nothing to cancel.")
        job.transition(JobStatus.CANCELLED, error="Cancelled by a user.")
    return job
