"""What each user may see: staff see everything; everyone else sees the public tasks.

One place for it, used by both the API and the pages.
"""

from django.db.models import Q

from .models import Case, CaseOutput, Dataset, GenerativeModel, Run, Task
from .permissions import user_is_staff


def visible_tasks(user):
    tasks = Task.objects.all()
    return tasks if user_is_staff(user) else tasks.filter(is_public=True)


def visible_datasets(user):
    datasets = Dataset.objects.all()
    if user_is_staff(user):
        return datasets
    return datasets.filter(Q(is_public=True) | Q(tasks__is_public=True)).distinct()


def visible_cases(user):
    return Case.objects.filter(dataset__in=visible_datasets(user))


def visible_models(user):
    return GenerativeModel.objects.filter(task__in=visible_tasks(user))


def visible_runs(user):
    return Run.objects.filter(task__in=visible_tasks(user))


def visible_outputs(user):
    return CaseOutput.objects.filter(run__in=visible_runs(user))
