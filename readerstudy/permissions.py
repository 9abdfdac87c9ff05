"""Who may see and do what around reader studies, registered with `core.policy`.

Blinding is a restriction on the lower apps' scopes, by content: from the moment a user is named a
reader of a study until its results are published (draft, running, closed and reopened alike), they
see nothing of its task (leaderboard, runs, outputs, metrics), nor of the datasets its images come
from, nor any reference image or output anywhere (another task, dataset or run) whose pixels
hash to one of the study's sources, so no page, array endpoint or export can tell them which image
in the study is which. Logged out they are anonymous, so a study cannot start while anonymous users
could reach one of its sources (`exposed_sources`, checked by the build). Studies are visible to
their editors (their creator and the editors they name); creating one needs the "Can add reader
study" permission (on any task they can see), or organising a task (on the tasks they organise).
"""

from django.contrib.auth.models import AnonymousUser
from django.db.models import Q

from core import policy
from inference import permissions as inference_permissions
from inference.models import CaseImage, CaseOutput, Dataset, Task

from .models import ReaderStudy, StudyImage, StudyStatus


def blinding_studies(user):
    """The studies `user` reads whose results are not published: everything they show stays hidden."""
    return ReaderStudy.objects.filter(readers=user, published_at__isnull=True)


def blinded_tasks(user):
    """Tasks of the unpublished studies `user` reads (a subquery of task pks)."""
    return blinding_studies(user).values("task_id")


def blinded_hashes(user):
    """Content hashes of every source array the unpublished studies `user` reads show (a subquery)."""
    return StudyImage.objects.filter(study__in=blinding_studies(user)).exclude(source_sha256="").values("source_sha256")


def _hide_blinded_pixels(user, queryset):
    if not policy.is_authenticated(user):
        return queryset
    return queryset.exclude(content_sha256__in=blinded_hashes(user))


def exposed_sources(hashes):
    """What anonymous users could reach of these source hashes: [(label, name)] of the tasks or datasets
    that serve them (a study cannot start while any is reachable: its readers could fetch it logged out)."""
    anonymous = AnonymousUser()
    hashes = set(hashes)
    exposed = []
    images = policy.visible(anonymous, CaseImage).filter(content_sha256__in=hashes)
    for name in images.values_list("case__dataset__name", flat=True).distinct().order_by("case__dataset__name"):
        exposed.append(("dataset", name))
    outputs = policy.visible(anonymous, CaseOutput).filter(content_sha256__in=hashes)
    for name in outputs.values_list("run__task__name", flat=True).distinct().order_by("run__task__name"):
        exposed.append(("task", name))
    return exposed


def _hide_blinded_tasks(user, tasks):
    return tasks.exclude(pk__in=blinded_tasks(user)) if policy.is_authenticated(user) else tasks


def _hide_blinded_datasets(user, datasets):
    if not policy.is_authenticated(user):
        return datasets
    hidden = Task.objects.filter(pk__in=blinded_tasks(user))
    return (
        datasets.exclude(pk__in=hidden.values("dataset_id"))
        .exclude(pk__in=hidden.exclude(reference_dataset=None).values("reference_dataset_id"))
        .exclude(private_to__in=hidden)  # its probe sets
    )


def _edited(user):
    if not policy.is_authenticated(user):
        return ReaderStudy.objects.none()
    return ReaderStudy.objects.filter(Q(created_by=user) | Q(editors=user)).distinct()


def study_tasks(user):
    """The tasks `user` may create a study on: any they can see with the "Can add reader study" permission,
    else the tasks they organise (an organiser studies their own benchmark without the Django admin)."""
    tasks = policy.visible(user, Task)
    if not policy.is_authenticated(user):
        return tasks.none()
    if policy.is_staff(user) or user.has_perm("readerstudy.add_readerstudy"):
        return tasks
    return tasks.filter(pk__in=inference_permissions.organised_tasks(user))


def _can_create(user, obj=None):
    if not policy.is_authenticated(user):
        return False
    return user.has_perm("readerstudy.add_readerstudy") or inference_permissions.organised_tasks(user).exists()


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
    policy.register_restriction(CaseImage, _hide_blinded_pixels)
    policy.register_restriction(CaseOutput, _hide_blinded_pixels)
    policy.register_scope(ReaderStudy, _edited)
    policy.register_rule("readerstudy.create_study", _can_create)
    policy.register_rule("readerstudy.edit_study", _can_edit)
    policy.register_rule("readerstudy.read_analysis", _can_read_analysis)
    # Posting an answer or a draft: any logged-in user; the reading services decide whose session it is (404).
    policy.register_rule("readerstudy.read", policy.authenticated)
