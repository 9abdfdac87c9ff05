"""Who may see and do what around reader studies, registered with `core.policy`.

Blinding is a restriction on the lower apps' scopes: a reader of a running study sees nothing of
its task (leaderboard, runs, outputs, metrics) nor of the datasets its images come from, so no
page can tell them which image in the study is which. Studies are visible to their editors (their
creator and the editors they name); creating one needs the "Can add reader study" permission.
"""

from django.db.models import Q

from core import policy
from inference.models import Dataset, Task

from .models import ReaderStudy, StudyStatus


def blinded_tasks(user):
    """Tasks of the running studies `user` reads (a subquery of task pks)."""
    return ReaderStudy.objects.filter(status=StudyStatus.RUNNING, readers=user).values("task_id")


def _hide_blinded_tasks(user, tasks):
    return tasks.exclude(pk__in=blinded_tasks(user)) if policy.is_authenticated(user) else tasks


def _hide_blinded_datasets(user, datasets):
    if not policy.is_authenticated(user):
        return datasets
    hidden = Task.objects.filter(pk__in=blinded_tasks(user))
    return datasets.exclude(pk__in=hidden.values("dataset_id")).exclude(
        pk__in=hidden.exclude(reference_dataset=None).values("reference_dataset_id")
    )


def _edited(user):
    if not policy.is_authenticated(user):
        return ReaderStudy.objects.none()
    return ReaderStudy.objects.filter(Q(created_by=user) | Q(editors=user)).distinct()


def _can_create(user, obj=None):
    return policy.is_authenticated(user) and user.has_perm("readerstudy.add_readerstudy")


def _can_edit(user, study):
    return study is not None and study.is_editor(user)


def _can_read_analysis(user, study):
    """Editors always; once published, whoever can see the task, except its own readers while it runs
    (they see no results until they have finished reading)."""
    if study.is_editor(user):
        return True
    if study.published_at is None or not policy.visible(user, Task).filter(pk=study.task_id).exists():
        return False
    reading = study.status == StudyStatus.RUNNING and policy.is_authenticated(user)
    return not (reading and study.readers.filter(pk=user.pk).exists())


def register():
    policy.register_restriction(Task, _hide_blinded_tasks)
    policy.register_restriction(Dataset, _hide_blinded_datasets)
    policy.register_scope(ReaderStudy, _edited)
    policy.register_rule("readerstudy.create_study", _can_create)
    policy.register_rule("readerstudy.edit_study", _can_edit)
    policy.register_rule("readerstudy.read_analysis", _can_read_analysis)
