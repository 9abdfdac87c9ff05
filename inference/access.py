"""What each user may see: staff see everything; everyone else sees the public tasks.

One place for it, used by both the API and the pages. A reader of a running blinded study
sees nothing of that study's task (leaderboard, runs, outputs, metrics) nor of the datasets
its real images come from, so no page can tell them which image in the study is which.
"""

from django.db.models import Q

from .models import Case, CaseOutput, Dataset, GenerativeModel, Run, Task
from .permissions import user_is_staff


def _blinded_tasks(user):
    """Tasks of the running studies `user` reads (a subquery of task pks), or None."""
    if not (user and user.is_authenticated):
        return None
    from readerstudy.services import running_studies_read_by  # readerstudy builds on inference

    return running_studies_read_by(user).values("task_id")


def visible_tasks(user):
    tasks = Task.objects.all()
    if user_is_staff(user):
        return tasks
    tasks = tasks.filter(is_public=True)
    blinded = _blinded_tasks(user)
    return tasks if blinded is None else tasks.exclude(pk__in=blinded)


def visible_datasets(user):
    datasets = Dataset.objects.all()
    if user_is_staff(user):
        return datasets
    datasets = datasets.filter(Q(is_public=True) | Q(tasks__is_public=True)).distinct()
    blinded = _blinded_tasks(user)
    if blinded is None:
        return datasets
    hidden = Task.objects.filter(pk__in=blinded)
    return datasets.exclude(pk__in=hidden.values("dataset_id")).exclude(
        pk__in=hidden.exclude(reference_dataset=None).values("reference_dataset_id")
    )


def visible_cases(user):
    return Case.objects.filter(dataset__in=visible_datasets(user))


def visible_models(user):
    return GenerativeModel.objects.filter(task__in=visible_tasks(user))


def visible_runs(user):
    return Run.objects.filter(task__in=visible_tasks(user))


def visible_outputs(user):
    return CaseOutput.objects.filter(run__in=visible_runs(user))
