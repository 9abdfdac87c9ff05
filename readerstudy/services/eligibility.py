"""Who may read a study: nobody who has seen, or could see, which of its images is which.

A reader is refused, with the reason, when they have staff rights or edit the study (they see its
design and analysis), organise its task (they see its hidden test set), own one of its runs (they see
their outputs), or read another study showing one of the same source arrays (an image met twice, in
two studies, can be matched across them; `StudyImage.source_sha256` says which arrays a study shows,
so the overlap is known once both are built).
"""

from collections.abc import Iterable

from django.contrib.auth.base_user import AbstractBaseUser

from inference.permissions import is_organiser

from ..errors import StudyError
from ..models import ReaderStudy, StudyImage


def refusals(study: ReaderStudy, user: AbstractBaseUser) -> list[str]:
    """Why `user` may not read `study` (empty: they may)."""
    if user.is_staff or user.is_superuser:
        return ["has staff rights (staff see every image's source)"]
    if study.is_editor(user):
        return ["edits the study"]
    reasons = []
    if is_organiser(user, study.task):
        reasons.append(f"organises the task '{study.task}' and sees its hidden test set")
    owned = study.runs.filter(requested_by=user)
    if owned.exists():
        reasons.append(f"owns the run(s) {', '.join(map(str, owned))}")
    hashes = StudyImage.objects.filter(study=study).exclude(source_sha256="").values("source_sha256")
    twins = (
        ReaderStudy.objects.filter(readers=user, images__source_sha256__in=hashes)
        .exclude(pk=study.pk)
        .distinct()
        .order_by("pk")
    )
    for other in twins:
        shared = StudyImage.objects.filter(study=other, source_sha256__in=hashes).values("source_sha256").distinct()
        reasons.append(f"reads the study '{other}', which shows {shared.count()} of the same source image(s)")
    return reasons


def check_readers(study: ReaderStudy, readers: Iterable[AbstractBaseUser]) -> None:
    """Raise StudyError naming every reader who may not read `study`, and why."""
    refused = [f"{user.username} {'; '.join(reasons)}" for user in readers if (reasons := refusals(study, user))]
    if refused:
        raise StudyError(f"These accounts cannot read this study: {'. '.join(refused)}.")
