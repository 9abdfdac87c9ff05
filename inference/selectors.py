"""Reads of the inference pages, each in a fixed number of queries whatever the number of rows."""

from django.db.models import Count, OuterRef, Subquery
from django.db.models.functions import Coalesce

from core import policy
from core.models import JobStatus

from .models import Case, GenerativeModel, Run, Task


def _count(queryset, field):
    """A correlated COUNT subquery: counts of several relations without multiplying joined rows."""
    counted = queryset.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted), 0)


def task_rows(user):
    """The tasks the user may see, with their case, model, run and succeeded-run counts (one query)."""
    return (
        policy.visible(user, Task)
        .select_related("dataset")
        .annotate(
            case_count=_count(Case.objects.all(), "dataset__tasks"),
            model_count=_count(GenerativeModel.objects.all(), "task"),
            run_count=_count(Run.objects.all(), "task"),
            succeeded_count=_count(Run.objects.filter(status=JobStatus.SUCCEEDED), "task"),
        )
    )


def task_page(user, slug):
    """(task, its models, its runs, its case count) if the user may see the task."""
    task = policy.get_visible(user, Task, slug=slug)
    return task, task.models.all(), task.runs.select_related("model"), task.dataset.cases.count()


def runs_with_output(user, case):
    """Runs the user may see that have an output for `case`, newest first."""
    return (
        policy.visible(user, Run)
        .filter(task__dataset=case.dataset, outputs__case=case)
        .select_related("model")
        .distinct()
        .order_by("-created_at")
    )


def succeeded_runs(user, *, task=None):
    runs = policy.visible(user, Run).filter(status=JobStatus.SUCCEEDED)
    return runs.filter(task=task) if task is not None else runs
