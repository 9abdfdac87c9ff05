"""A study's life around its build: create and edit the draft, invite readers, close and reopen."""

from collections.abc import Iterable

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import transaction

from core.models import IllegalTransition
from inference.models import Run

from ..errors import StudyError
from ..models import ReaderStudy, StudyStatus
from .eligibility import check_readers
from .reading import open_session

FROZEN = "The study has started: its settings and items are frozen."


@transaction.atomic
def create_study(
    study: ReaderStudy,
    *,
    created_by: AbstractBaseUser,
    runs: Iterable[Run],
    readers: Iterable[AbstractBaseUser] = (),
    editors: Iterable[AbstractBaseUser] = (),
) -> ReaderStudy:
    """Store a new draft: `study` unsaved, with its settings as the study form cleaned them."""
    study.status = StudyStatus.DRAFT
    study.created_by = created_by
    study.save()
    _set_members(study, runs=runs, readers=readers, editors=editors)
    return study


@transaction.atomic
def update_draft(
    study: ReaderStudy,
    *,
    runs: Iterable[Run],
    readers: Iterable[AbstractBaseUser] = (),
    editors: Iterable[AbstractBaseUser] = (),
) -> ReaderStudy:
    """Save a draft's edited settings (`study` as the study form changed it), never its status.

    StudyError once the study has started: the row is locked and re-read first, since another editor may
    be starting it right now (a save of the copy read before would undo the start).
    """
    draft = ReaderStudy.objects.select_for_update().filter(pk=study.pk, status=StudyStatus.DRAFT)
    if not draft.values_list("pk", flat=True):  # evaluating it takes the lock
        raise StudyError(FROZEN)
    many = {field.name for field in ReaderStudy._meta.many_to_many}
    study.save(update_fields=[name for name in ReaderStudy.SETTINGS if name not in many])
    _set_members(study, runs=runs, readers=readers, editors=editors)
    return study


def _set_members(study, *, runs, readers, editors):
    study.runs.set(runs)
    study.readers.set(readers)
    study.editors.set(editors)


def invite(study: ReaderStudy, *, readers: Iterable[AbstractBaseUser]) -> None:
    """Invite readers: accounts without staff rights. Running studies open their sessions at once."""
    readers = list(readers)
    check_readers(study, readers)
    with transaction.atomic():
        study.readers.add(*readers)
        if study.status == StudyStatus.RUNNING:
            for user in readers:
                open_session(study, reader=user)


@transaction.atomic
def close(study: ReaderStudy) -> ReaderStudy:
    """Running → closed: readers can no longer answer (nor fetch the study's images)."""
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    _transition(study, StudyStatus.CLOSED, "Only a running study can be closed.")
    return study


@transaction.atomic
def reopen(study: ReaderStudy) -> ReaderStudy:
    """Closed → running: readers go on where they stopped. Refused once results have been published: from
    then on its readers could see its sources, so answers given after would not be blind."""
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if study.sources_released_at is not None:
        raise StudyError(
            "Its results were published, which showed its readers the images' sources; a reopened study would "
            "not be blind. Start a new study instead."
        )
    _transition(study, StudyStatus.RUNNING, "Only a closed study can be reopened.")
    return study


def _transition(study, status, refusal):
    try:
        study.transition(status)
    except IllegalTransition:
        raise StudyError(f"{refusal} This one is {study.get_status_display().lower()}.") from None
