"""Reading a study: a reader's session (their seeded order), the current item, answers, drafts and the images
they may fetch.

A reader knows an item only by its assignment's token; whatever they may not reach is `NotReadable` (a bare
404). Answers are idempotent per key and stored exactly once (`submit`).
"""

import uuid
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from .. import answers as answer_rules
from .. import ordering
from ..errors import AnswerConflict, NotReadable, StudyError
from ..models import (
    Answer,
    Assignment,
    Design,
    ItemKind,
    ReaderSession,
    ReaderStudy,
    StudyImage,
    StudyStatus,
)

#: What showing an item needs: its image rows (their stored headers), in the same query.
ITEM_IMAGES = ("item__image", "item__image_b")
#: The longest idempotency key a client may send (the column's width).
MAX_KEY_LENGTH = 64


@transaction.atomic
def open_session(study: ReaderStudy, *, reader: AbstractBaseUser) -> ReaderSession:
    """The reader's session, created once with its seeded order (get or create; safe to call twice)."""
    session, created = ReaderSession.objects.get_or_create(study=study, reader=reader)
    if not created:
        return session
    items = list(study.items.values_list("pk", "kind", "repeat_of_id", "image_b_id"))
    base = [pk for pk, kind, _, _ in items if kind != ItemKind.REPEAT]
    repeats = {pk: original for pk, kind, original, _ in items if kind == ItemKind.REPEAT}
    order = ordering.reader_order(base, repeats, session.seed)
    two_images = {pk for pk, _, _, image_b in items if image_b}
    swaps = ordering.swaps(len(order), session.seed)
    Assignment.objects.bulk_create(
        Assignment(session=session, item_id=pk, position=p, swapped=swaps[p] and pk in two_images)
        for p, pk in enumerate(order)
    )
    session.total = len(order)
    session.save(update_fields=["total"])
    return session


def reader_session(study_uid: uuid.UUID | str, user: AbstractBaseUser) -> ReaderSession:
    """The user's session in a running study (opened now for a reader invited while it was closed), or
    NotReadable (not invited, draft or closed study)."""
    session = (
        ReaderSession.objects.select_related("study")
        .filter(study__uid=study_uid, reader=user, study__status=StudyStatus.RUNNING)
        .first()
    )
    if session is None:
        study = ReaderStudy.objects.filter(uid=study_uid, status=StudyStatus.RUNNING, readers=user).first()
        if study is None:
            raise NotReadable()
        session = open_session(study, reader=user)
        session.study = study
    return session


def _images_payload(assignment: Assignment) -> list[dict[str, Any]]:
    return [
        {"header_url": reverse("read-image", args=[assignment.token, slot]),
         "header": image_header(assignment.token, slot, image)}
        for slot, image in enumerate(assignment.images())
    ]  # fmt: skip


def item_payload(assignment: Assignment) -> dict[str, Any]:
    """What the browser learns of an item: its token, its images' viewer headers (the same the header
    endpoint serves, so the viewer needs no request for them) and the autosaved draft."""
    return {"token": assignment.token, "images": _images_payload(assignment), "draft": assignment.draft}


def next_payload(assignment: Assignment) -> dict[str, Any]:
    """The item after the current one, for the browser to prefetch its images while the reader reads:
    its token and image headers only (as blind as the current item's), no draft and no first-shown stamp."""
    return {"token": assignment.token, "images": _images_payload(assignment)}


def image_header(token: str, slot: int, image: StudyImage) -> dict[str, Any]:
    """The viewer header of a study image as the reader reaches it: stored at freeze time, plus its data URL."""
    return {**image.header, "data_url": reverse("read-image-data", args=[token, slot])}


def state(
    session: ReaderSession, assignment: Assignment | None = None, following: Assignment | None = None
) -> dict[str, Any]:
    """Progress, the current item (stamping when the server first showed it) and the next one (`next`,
    for prefetching: `next_payload`), read together in one query unless the caller has them."""
    data = {"total": session.total, "done": session.answered, "finished": session.is_finished, "item": None}
    if session.is_finished:
        return data
    if assignment is None:
        rows = Assignment.objects.select_related(*ITEM_IMAGES).filter(
            session=session, position__in=(session.answered, session.answered + 1)
        )
        for row in rows:
            if row.position == session.answered:
                assignment = row
            else:
                following = row
    if assignment is None:
        return data
    data["next"] = next_payload(following) if following is not None else None
    if assignment.shown_at is None:
        assignment.shown_at = timezone.now()
        Assignment.objects.filter(pk=assignment.pk, shown_at__isnull=True).update(shown_at=assignment.shown_at)
    data["item"] = item_payload(assignment)
    return data


def _current(session, token):
    """The session's current item if `token` is it; AnswerConflict if it was answered, else NotReadable."""
    assignment = Assignment.objects.select_related("item").filter(session=session, token=token).first()
    if assignment is None:
        raise NotReadable()  # not this reader's item
    if assignment.position < session.answered:
        raise AnswerConflict("This item has already been answered.")
    if assignment.position > session.answered:
        raise NotReadable()  # still ahead in their order
    return assignment


def _validate(study, assignment, value, partial):
    shape = assignment.item.image.header.get("shape") if study.design == Design.HALLUCINATION else None
    return answer_rules.validate(
        study.design,
        value,
        scales=study.scales,
        allow_no_preference=study.allow_no_preference,
        shape=shape,
        partial=partial,
        ratings=study.probe_mode,
    )


def _replay(session, token, key):
    """The state again if `key` already answered `token`; AnswerConflict if it answered another item; else None."""
    prior = Answer.objects.filter(session=session, idempotency_key=key).select_related("assignment").first()
    if prior is None:
        return None
    if prior.assignment.token != token:
        raise AnswerConflict("This idempotency key was used for another item: send a new key per answer.")
    return state(session)


def submit(session: ReaderSession, *, token: str, value: Any, key: str) -> dict[str, Any]:
    """Store the answer to the current item and return the new state (with the next item).

    Safe to repeat: the same idempotency key returns the state again without a second answer
    (also when two copies race: the session's row lock and the unique constraints pick one).
    Another answer to an answered item is an AnswerConflict, and so is a key reused for another item.

    The common path is five queries: lock the session row (only it: `of=("self",)`, else
    PostgreSQL also locks the joined study row and every reader's submit queues on it), read
    the answered item and the next one together, insert the answer, update the session, stamp
    the next item's first showing.
    """
    return _submit(ReaderSession.objects.filter(pk=session.pk), token, value, key)


def submit_as(
    study_uid: uuid.UUID | str, *, reader: AbstractBaseUser, token: str, value: Any, key: str
) -> dict[str, Any]:
    """`submit` to `reader`'s session in the running study `study_uid`: what the answer endpoint calls.

    One query finds and locks the session (rather than `reader_session`, then the lock); a reader
    invited before their session existed gets it opened first, as `reader_session` does.
    """
    sessions = ReaderSession.objects.filter(study__uid=study_uid, reader=reader, study__status=StudyStatus.RUNNING)
    return _submit(sessions, token, value, key, open_missing=lambda: reader_session(study_uid, reader))


def _submit(sessions: QuerySet, token, value, key, open_missing=None):
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_LENGTH:
        raise answer_rules.InvalidAnswer(f"Send an idempotency key of 1 to {MAX_KEY_LENGTH} characters.")
    session = None
    try:
        with transaction.atomic():
            locked = sessions.select_for_update(of=("self",)).select_related("study").order_by("pk")
            session = locked.first()
            if session is None and open_missing is not None:
                locked = ReaderSession.objects.filter(pk=open_missing().pk).select_for_update(of=("self",))
                session = locked.select_related("study").first()
            if session is None:
                raise NotReadable()
            if session.study.status != StudyStatus.RUNNING:
                raise StudyError("The study is not running.")
            rows = Assignment.objects.select_related(*ITEM_IMAGES).filter(
                Q(token=token) | Q(position__in=(session.answered + 1, session.answered + 2)), session=session
            )
            assignment = following = after = None
            for row in rows:
                if row.token == token:
                    assignment = row
                if row.position == session.answered + 1:
                    following = row
                if row.position == session.answered + 2:
                    after = row
            if assignment is None or assignment.position != session.answered:
                replayed = _replay(session, token, key)  # a retry of an answer already stored
                if replayed is not None:
                    return replayed
                _current(session, token)  # raises the right error (answered before, or not theirs)
            cleaned = _validate(session.study, assignment, value, partial=False)
            now = timezone.now()
            shown = assignment.shown_at or now
            Answer.objects.create(
                assignment=assignment,
                session=session,
                value=cleaned,
                idempotency_key=key,
                duration_ms=max(0, round((now - shown).total_seconds() * 1000)),
            )
            session.answered += 1
            session.last_activity_at = now
            fields = ["answered", "last_activity_at"]
            if session.answered >= session.total:
                session.finished_at = now
                fields.append("finished_at")
            session.save(update_fields=fields)
            return state(session, following, after)
    except IntegrityError:
        # The key was stored already: by a concurrent copy of this request, or for another item.
        if session is None:
            raise
        session.refresh_from_db()
        replayed = _replay(session, token, key)
        if replayed is not None:
            return replayed
        raise AnswerConflict("This item has already been answered.") from None


def save_draft(session: ReaderSession, *, token: str, value: Any) -> None:
    """Autosave an incomplete answer to the current item (it comes back with the item after a reload)."""
    assignment = _current(session, token)
    cleaned = _validate(session.study, assignment, value, partial=True)
    Assignment.objects.filter(pk=assignment.pk).update(draft=cleaned)
    ReaderSession.objects.filter(pk=session.pk).update(last_activity_at=timezone.now())


def reader_image(user: AbstractBaseUser, token: str, slot: int) -> StudyImage:
    """The StudyImage at `slot` (left 0, right 1) of the user's item `token`, if they may see it now.

    A reader reaches an item's images from when it is next (for the workspace to prefetch them while
    the current one is read) until the study closes; never another reader's items, nor items further
    ahead in their order. Answering stays limited to the current item (`_current`).
    """
    assignment = (
        Assignment.objects.select_related("item__image", "item__image_b", "session")
        .filter(
            token=token,
            session__reader=user,
            session__study__status=StudyStatus.RUNNING,
        )
        .first()
    )
    if assignment is None or assignment.position > assignment.session.answered + 1:
        raise NotReadable()
    images = assignment.images()
    if not 0 <= slot < len(images):
        raise NotReadable()
    return images[slot]
