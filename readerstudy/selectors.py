"""The reader studies' reads: what the study pages, the export and the analysis show.

Everything here is for editors except `reading_list` and `my_reading` (a user's own studies to read) and
`reader_accounts` (who may be invited); answers with their hidden truth (`answer_records`, `export_rows`)
never reach a reader.
"""

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import Count, QuerySet

from core import policy
from evaluation import formatting
from inference.models import GenerativeModel, Membership

from .models import Answer, ItemKind, ReaderSession, ReaderStudy, StudyStatus

#: The export's columns: one row per answer, with the item's hidden truth.
EXPORT_COLUMNS = [
    "reader",
    "position",
    "item",
    "item_kind",
    "repeat_of",
    "case",
    "source",
    "run",
    "run_name",
    "image",
    "source_b",
    "run_b",
    "run_b_name",
    "image_b",
    "swapped",
    "answer",
    "duration_ms",
    "answered_at",
    "expected",
]


def edited_studies(user: AbstractBaseUser) -> QuerySet:
    """The studies `user` edits (all of them for staff), with their tasks."""
    return policy.visible(user, ReaderStudy).select_related("task")


def reading_list(user: AbstractBaseUser) -> list[dict[str, Any]]:
    """The running studies `user` reads, by title: {"study", "session" (None until they open it)}."""
    sessions = {s.study_id: s for s in ReaderSession.objects.filter(reader=user, study__status=StudyStatus.RUNNING)}
    studies = ReaderStudy.objects.filter(readers=user, status=StudyStatus.RUNNING).order_by("title")
    return [{"study": study, "session": sessions.get(study.pk)} for study in studies]


def my_reading(user: AbstractBaseUser) -> list[dict[str, Any]]:
    """Every study `user` reads, running first, then not started, then closed, by title: {"study", "session"
    (None until they open it), "answered", "total" (None before the start), "finished", "can_read"}."""
    sessions = {s.study_id: s for s in ReaderSession.objects.filter(reader=user)}
    studies = ReaderStudy.objects.filter(readers=user).annotate(n_items=Count("items"))
    order = {StudyStatus.RUNNING: 0, StudyStatus.DRAFT: 1, StudyStatus.CLOSED: 2}
    rows = []
    for study in sorted(studies, key=lambda s: (order[s.status], s.title.lower(), s.pk)):
        session = sessions.get(study.pk)
        frozen = study.status != StudyStatus.DRAFT
        rows.append(
            {
                "study": study,
                "session": session,
                "answered": session.answered if session else 0,
                "total": (session.total if session else study.n_items) if frozen else None,
                "finished": bool(session and session.is_finished),
                "can_read": study.status == StudyStatus.RUNNING and not (session and session.is_finished),
            }
        )
    return rows


def has_reading(user: AbstractBaseUser) -> bool:
    """Whether `user` reads a study that is running or not started yet."""
    return ReaderStudy.objects.filter(readers=user).exclude(status=StudyStatus.CLOSED).exists()


def is_only_reader(user: AbstractBaseUser) -> bool:
    """Whether `user` takes part only as a reader: reads a study, and neither edits one, nor is staff,
    nor has a role in a task, nor has uploaded a model (the menu then leaves out what is not theirs)."""
    if not user.is_authenticated or user.is_staff or not ReaderStudy.objects.filter(readers=user).exists():
        return False
    if ReaderStudy.objects.filter(editors=user).exists() or ReaderStudy.objects.filter(created_by=user).exists():
        return False
    if Membership.objects.filter(user=user).exists():
        return False
    return not GenerativeModel.objects.filter(created_by=user).exists()


def study_invitations(study: ReaderStudy) -> QuerySet:
    """The study's invitation links, newest first, with who made and who used them (editors only)."""
    return study.invitations.select_related("created_by", "used_by").order_by("-created_at", "-pk")


def reader_accounts() -> QuerySet:
    """Accounts that may read a study: active, without staff rights (a reader must not see the truth)."""
    return get_user_model().objects.filter(is_active=True, is_staff=False, is_superuser=False).order_by("username")


def study_runs(study: ReaderStudy) -> QuerySet:
    return study.runs.select_related("model").order_by("pk")


def item_counts(study: ReaderStudy) -> dict[str, int]:
    """Items per kind ("regular", "repeat", "attention") and their "total"."""
    counts = {kind: 0 for kind in ItemKind.values}
    for kind in study.items.values_list("kind", flat=True):
        counts[kind] += 1
    counts["total"] = sum(counts.values())
    return counts


def progress(study: ReaderStudy) -> list[dict[str, Any]]:
    """Per reader: answered / total, median seconds per item, last activity, finished."""
    rows = []
    sessions = study.sessions.select_related("reader").order_by("reader__username")
    durations = {}
    for session_id, duration in Answer.objects.filter(session__study=study).values_list("session_id", "duration_ms"):
        if duration is not None:
            durations.setdefault(session_id, []).append(duration)
    for session in sessions:
        values = durations.get(session.pk, [])
        rows.append(
            {
                "reader": session.reader.username,
                "done": session.answered,
                "total": session.total,
                "percent": round(100 * session.answered / session.total) if session.total else 0,
                "median_seconds": float(np.median(values)) / 1000 if values else None,
                "last_activity_at": session.last_activity_at,
                "finished": session.is_finished,
            }
        )
    invited = set(study.readers.values_list("username", flat=True))
    started = {row["reader"] for row in rows}
    for username in sorted(invited - started):
        rows.append(
            {"reader": username, "done": 0, "total": None, "percent": 0, "median_seconds": None,
             "last_activity_at": None, "finished": False}
        )  # fmt: skip
    return rows


def answer_records(study: ReaderStudy) -> list[dict[str, Any]]:
    """Every answer with its item's hidden truth, one dict per answer, in a stable order (editors only)."""
    records = []
    answers = (
        Answer.objects.filter(session__study=study)
        .select_related(
            "session__reader",
            "assignment__item__image__run",
            "assignment__item__image__case",
            "assignment__item__image_b__run",
        )
        .order_by("session__reader__username", "assignment__position")
    )
    for answer in answers:
        assignment = answer.assignment
        item = assignment.item
        image, image_b = item.image, item.image_b
        records.append(
            {
                "reader": answer.session.reader.username,
                "position": assignment.position,
                "item": item.index,
                "item_kind": item.kind,
                "repeat_of": item.repeat_of.index if item.repeat_of_id else None,
                "case": image.case.case_id,
                "case_pk": image.case_id,
                "source": image.source,
                "run": image.run_id,
                "run_name": str(image.run) if image.run_id else "",
                "image": image.pk,
                "source_b": image_b.source if image_b else "",
                "run_b": image_b.run_id if image_b else None,
                "run_b_name": str(image_b.run) if image_b and image_b.run_id else "",
                "image_b": image_b.pk if image_b else None,
                "swapped": assignment.swapped,
                "answer": answer.value,
                "duration_ms": answer.duration_ms,
                "answered_at": answer.created_at,
                "expected": item.expected,
            }
        )
    return records


def export_rows(study: ReaderStudy) -> Iterator[list[Any]]:
    """The export as spreadsheet cells: the header (EXPORT_COLUMNS), then one row per answer (JSON for
    answers and expectations, ISO times, empty for none; cells a spreadsheet would run as formulas escaped)."""
    yield EXPORT_COLUMNS
    for record in answer_records(study):
        row = []
        for column in EXPORT_COLUMNS:
            value = record[column]
            if isinstance(value, dict | list):
                value = json.dumps(value, sort_keys=True)
            elif value is None:
                value = ""
            elif hasattr(value, "isoformat"):
                value = value.isoformat()
            row.append(formatting.spreadsheet_safe(value))
        yield row
