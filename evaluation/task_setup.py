"""Saving a task from the organisers' page: the task's settings (checked by `Task.clean`, as everywhere),
its organiser when a non-staff organiser created it, and its downstream evaluation (`downstream.declare_downstream`),
all in one transaction, so a downstream evaluation that cannot be declared leaves the task as it was."""

from django.db import transaction

from core import policy
from inference.models import Task
from inference.services import participation

from .downstream import services as downstream_services


def save_task(task: Task, *, downstream: dict | None, user) -> Task:
    """Save `task` (already validated by its form) and declare `downstream` ({config, seeds, test_fraction})
    when given. Raises `downstream_services.DownstreamError` (nothing saved) when the task cannot have it."""
    creating = task.pk is None
    with transaction.atomic():
        task.save()
        if creating and not policy.is_staff(user):
            participation.add_organiser(task, user=user, by=user)
        if downstream is not None:
            downstream_services.declare_downstream(task, user=user, **downstream)
    return task
