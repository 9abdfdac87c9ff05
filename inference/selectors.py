"""Reads of the inference pages, each in a fixed number of queries whatever the number of rows."""

import json
from datetime import timedelta

from django.db.models import Count, OuterRef, Prefetch, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import policy
from core.models import JobStatus

from .models import Case, CaseImage, GenerativeModel, MemberStatus, ModelStatus, Run, Task
from .permissions import organised_tasks


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


def organised_task_list(user):
    """The tasks `user` organises (staff: every task), by name, for the organisers' page."""
    tasks = Task.objects.all() if policy.is_staff(user) else Task.objects.filter(pk__in=organised_tasks(user))
    return tasks.order_by("name")


def task_page(user, slug):
    """(task, its models but the invalid ones, the runs the user may see, its case count) if the user
    may see the task."""
    task = policy.get_visible(user, Task, slug=slug)
    runs = policy.visible(user, Run).filter(task=task).select_related("model")
    return task, task.models.exclude(status=ModelStatus.INVALID), runs, task.dataset.cases.count()


def listed_models(user, *, show_invalid=False):
    """(the models `user` may see, how many invalid ones are left out): invalid models are listed only
    when asked for (they cannot be run; their pages keep the reason and a way to delete them)."""
    models = policy.visible(user, GenerativeModel).select_related("task")
    invalid = models.filter(status=ModelStatus.INVALID)
    if show_invalid:
        return models, 0
    return models.exclude(status=ModelStatus.INVALID), invalid.count()


def metadata_rows(metadata, prefix=""):
    """A case's metadata (JSON) as (key, text) rows for a table: nested objects as dotted keys, lists of
    plain values joined by commas, anything else as compact JSON; keys in alphabetical order (the
    database keeps no order of its own)."""
    rows = []
    for key, value in sorted((metadata or {}).items()):
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            rows.extend(metadata_rows(value, prefix=f"{name}."))
        elif isinstance(value, list) and all(isinstance(v, str | int | float | bool) or v is None for v in value):
            rows.append((name, ", ".join("—" if v is None else str(v) for v in value)))
        elif isinstance(value, str | int | float | bool):
            rows.append((name, ("yes" if value else "no") if isinstance(value, bool) else str(value)))
        elif value is None:
            rows.append((name, "—"))
        else:
            rows.append((name, json.dumps(value, ensure_ascii=False)))
    return rows


def participation(user, task, *, now=None):
    """The user's standing in `task` for its page: membership, whether they may join or submit, the open
    phase with what they have used of its limits, and (organisers) the participants waiting for a decision."""
    now = now or timezone.now()
    membership = task.memberships.filter(user=user).first() if policy.is_authenticated(user) else None
    phase = next((p for p in task.phases.order_by("-starts_at") if p.is_open(now)), None)
    used = None
    if phase is not None and membership is not None:
        counted = counted_runs(task, user, phase)
        window = now - timedelta(hours=phase.period_hours)
        used = {"total": counted.count(), "period": counted.filter(created_at__gt=window).count()}
    organiser = policy.can(user, "inference.manage_members", task)
    pending = task.memberships.filter(status=MemberStatus.PENDING).select_related("user") if organiser else []
    return {
        "membership": membership,
        "can_join": policy.is_authenticated(user) and membership is None and not policy.is_staff(user),
        "can_submit": policy.can(user, "inference.submit", task) if policy.is_authenticated(user) else False,
        "phase": phase,
        "phases": list(task.phases.all()),
        "used": used,
        "organiser": organiser,
        "pending": list(pending),
        "members": task.memberships.filter(status=MemberStatus.ACCEPTED).count(),
    }


#: Runs that count against a participant's limits: a submission that failed validation (or a run that
#: failed or was cancelled) does not use up a submission.
NOT_COUNTED = (JobStatus.FAILED, JobStatus.CANCELLED)


def counted_runs(task, user, phase):
    """The user's runs in `phase` that count against its limits."""
    return Run.objects.filter(task=task, requested_by=user, task_phase=phase).exclude(status__in=NOT_COUNTED)


def my_runs(user):
    """The user's own runs and submissions, newest first, with their task and phase."""
    return Run.objects.filter(requested_by=user).select_related("task", "model", "task_phase").order_by("-created_at")


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


def visible_images(user):
    """The case images the user may see (a hidden test set's references and labels left out), in order."""
    return policy.visible(user, CaseImage).order_by("role", "index")


def cases_with_images(user, cases):
    """`cases` with `images` prefetched as the user may see them (one query for all)."""
    return cases.prefetch_related(Prefetch("images", queryset=visible_images(user)))


def case_image(user, case, role, index=0):
    """The case's image of `role` (and `index`) if the user may see it, else None."""
    return visible_images(user).filter(case=case, role=role, index=index).first()
