"""Reader-study operations: freeze a study's items, open readers' sessions, take answers, publish.

Views and tasks call these; the pure parts (blinding, order, answer rules, statistics) live in
plain modules beside this one.
"""

import numpy as np
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from core.models import JobStatus
from inference import arrays
from inference.models import Case, CaseOutput, ImageRole
from inference.storage import array_bytes

from . import answers as answer_rules
from . import blinding, ordering
from .models import (
    Answer,
    Assignment,
    Design,
    ImageSource,
    ItemKind,
    ReaderSession,
    ReaderStudy,
    RealPool,
    StudyImage,
    StudyItem,
    StudyStatus,
)


class StudyError(ValueError):
    """An operation the study's state or settings do not allow; the message says why."""


class NotFound(LookupError):
    pass


class Conflict(ValueError):
    """An answer to an item that already has one (under another idempotency key)."""


# --- Building (freeze) ------------------------------------------------------------------


def check_ready(study):
    """Raise StudyError unless a draft study's settings can be frozen."""
    runs = list(study.runs.all())
    if not runs:
        raise StudyError("Pick at least one run.")
    if study.design == Design.PAIRWISE and len(runs) < 2:
        raise StudyError("A pairwise study needs at least two runs.")
    wrong = [run for run in runs if run.task_id != study.task_id or run.status != JobStatus.SUCCEEDED]
    if wrong:
        raise StudyError(f"Only succeeded runs of the study's task can be read: {', '.join(map(str, wrong))}.")
    try:
        study.full_clean()
    except ValidationError as exc:
        raise StudyError("; ".join(exc.messages)) from None


class _Builder:
    """Loads, blinds and stores the study's images; one instance per freeze."""

    def __init__(self, study):
        self.study = study
        self.rng = np.random.default_rng(study.seed)
        self.dither = np.random.default_rng([study.seed, 3])
        self.log = []
        # One display spacing for every image: a spacing only some real images have would give them away.
        self.spacing = None

    def blind(self, canonical):
        return blinding.blind(canonical, self.dither)

    def store(self, blinded, case, source, run=None):
        header = arrays.header(blinded, self.spacing)
        image = StudyImage(study=self.study, source=source, run=run, case=case, header=header)
        image.array.save("image.npy", ContentFile(array_bytes(blinded)), save=False)
        image.save()
        return image


def _usable_cases(study, builder, runs, count):
    """Pick `count` cases (seeded) where every run has a showable output of the reference's shape.

    Returns [(case, reference image, {run pk: blinded output})]."""
    cases = list(Case.objects.filter(dataset=study.task.dataset, images__role=ImageRole.REFERENCE).order_by("pk"))
    order = builder.rng.permutation(len(cases))
    outputs = {(o.run_id, o.case_id): o for o in CaseOutput.objects.filter(run__in=runs, sample=0, case__in=cases)}
    chosen, skipped = [], []
    for index in order:
        if len(chosen) == count:
            break
        case = cases[index]
        reference = case.image(ImageRole.REFERENCE)
        blinded = {}
        for run in runs:
            output = outputs.get((run.pk, case.pk))
            if output is None:
                skipped.append(f"{case.case_id}: no output from {run}")
                break
            if list(output.shape[1:]) != list(reference.shape[1:]):
                skipped.append(f"{case.case_id}: {run}'s output has another shape than the reference")
                break
            try:
                blinded[run.pk] = builder.blind(output.load())
            except (blinding.NotShowable, ValueError) as exc:
                skipped.append(f"{case.case_id}: {run}'s output is not showable ({exc})")
                break
        else:
            chosen.append((case, reference, blinded))
    if len(chosen) < count:
        raise StudyError(
            f"Only {len(chosen)} case(s) have a showable output from every run; {count} are needed "
            f"({study.items_per_model} per run" + ("" if count == study.items_per_model else ", each run its own")
            + "). " + "; ".join(skipped[:5])
        )  # fmt: skip
    builder.log.append(f"Cases: {', '.join(c.case_id for c, _, _ in chosen)} (seed {study.seed}).")
    if skipped:
        builder.log.append(f"Left out: {'; '.join(skipped)}.")
    return chosen


def _real_candidates(study, shown_cases, prefer_other):
    """Reference images for the real pool, in a seeded order (cases already shown last or first)."""
    if study.real_pool == RealPool.REFERENCE:
        if study.task.reference_dataset_id is None:
            raise StudyError("The task has no reference dataset; pick its test dataset's references instead.")
        dataset = study.task.reference_dataset
    else:
        dataset = study.task.dataset
    cases = list(Case.objects.filter(dataset=dataset, images__role=ImageRole.REFERENCE).order_by("pk"))
    shown = {case.pk for case in shown_cases}
    other = [case for case in cases if case.pk not in shown]
    same = [case for case in cases if case.pk in shown]
    rng = np.random.default_rng([study.seed, 2])
    other = [other[i] for i in rng.permutation(len(other))]
    same = [same[i] for i in rng.permutation(len(same))]
    return other + same if prefer_other else same + other


def _showable_references(study, builder, shown_cases, prefer_other, shapes):
    """(case, blinded reference) from the real pool, lazily: only references of the outputs' size."""
    for case in _real_candidates(study, shown_cases, prefer_other):
        reference = case.image(ImageRole.REFERENCE)
        if tuple(reference.shape[1:]) not in shapes:
            continue  # another size would tell a real image from a synthetic one
        try:
            yield case, builder.blind(reference.load())
        except blinding.NotShowable:
            continue


def _real_images(study, builder, count, shown_cases, prefer_other, shapes):
    images = []
    for case, blinded in _showable_references(study, builder, shown_cases, prefer_other, shapes):
        if len(images) == count:
            break
        images.append(builder.store(blinded, case, ImageSource.REAL))
    if len(images) < count:
        builder.log.append(f"Real pool: {len(images)} showable image(s) of the outputs' size, {count} asked for.")
    return images


def freeze(study):
    """Draft → running: build the blinded images and the item list, open sessions for invited readers.

    Everything happens in one transaction: a failure leaves the draft as it was (the
    stored image files of a failed build are removed).
    """
    try:
        with transaction.atomic():
            study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
            if study.status != StudyStatus.DRAFT:
                raise StudyError("The study has already started: its items are frozen.")
            check_ready(study)
            editing = [user.username for user in study.readers.all() if study.is_editor(user)]
            if editing:
                raise StudyError(f"Editors of the study cannot read it: {', '.join(editing)}.")
            builder = _Builder(study)
            _build_items(study, builder)
            study.build_log = "\n".join(builder.log)
            study.transition(StudyStatus.RUNNING)
            for reader in study.readers.all():
                open_session(study, reader)
    except Exception:
        _remove_orphan_files(study)
        raise
    return study


def _remove_orphan_files(study):
    """Delete image files of this study that no row refers to (after a rolled-back build)."""
    folder = f"readerstudies/{study.uid}"
    try:
        _dirs, files = default_storage.listdir(folder)
    except (FileNotFoundError, NotImplementedError, OSError):
        return
    kept = set(StudyImage.objects.filter(study=study).values_list("array", flat=True))
    for name in files:
        path = f"{folder}/{name}"
        if path not in kept:
            default_storage.delete(path)


def _build_items(study, builder):
    runs = list(study.runs.order_by("pk"))
    n = study.items_per_model
    # A Turing test shows each run cases of its own unless the editor asks for paired cases: a reader who
    # met the same anatomy once per run would know that all but (at most) one of them are synthetic.
    own_cases = study.design == Design.TURING and not study.paired_cases and len(runs) > 1
    chosen = _usable_cases(study, builder, runs, n * len(runs) if own_cases else n)
    builder.spacing = chosen[0][1].spacing
    shapes = {tuple(reference.shape[1:]) for _, reference, _ in chosen}
    per_run = {run.pk: [] for run in runs}
    for position, (case, _reference, blinded) in enumerate(chosen):
        for index, run in enumerate(runs):
            if not own_cases or position // n == index:
                per_run[run.pk].append(builder.store(blinded[run.pk], case, ImageSource.SYNTHETIC, run))
    items = []  # (image, image_b, kind, expected)
    if study.design == Design.PAIRWISE:
        for position in range(n):
            for i, run_a in enumerate(runs):
                for run_b in runs[i + 1 :]:
                    items.append((per_run[run_a.pk][position], per_run[run_b.pk][position], ItemKind.REGULAR, {}))
    else:
        for run in runs:
            items += [(image, None, ItemKind.REGULAR, {}) for image in per_run[run.pk]]
        if study.design == Design.TURING:
            n_real, prefer_other = round(study.real_ratio * len(items)), True
        else:  # a control group of real images, preferably of the same cases
            n_real, prefer_other = round(study.real_ratio * n), False
        shown = [case for case, _, _ in chosen]
        reals = _real_images(study, builder, n_real, shown, prefer_other, shapes) if n_real else []
        items += [(image, None, ItemKind.REGULAR, {}) for image in reals]
        builder.log.append(f"{len(items) - len(reals)} synthetic and {len(reals)} real image(s).")
    items += _attention_items(study, builder, chosen, shapes)
    created = []
    for index, (image, image_b, kind, expected) in enumerate(items):
        created.append(StudyItem(study=study, index=index, kind=kind, image=image, image_b=image_b, expected=expected))
    StudyItem.objects.bulk_create(created)
    regular = [item for item in created if item.kind == ItemKind.REGULAR]
    picks = builder.rng.choice(len(regular), size=min(study.repeated_items, len(regular)), replace=False)
    repeats = [
        StudyItem(
            study=study,
            index=len(created) + n,
            kind=ItemKind.REPEAT,
            image=regular[i].image,
            image_b=regular[i].image_b,
            repeat_of=regular[i],
        )
        for n, i in enumerate(sorted(int(p) for p in picks))
    ]
    StudyItem.objects.bulk_create(repeats)
    builder.log.append(
        f"{len(created) + len(repeats)} items: {len(regular)} regular, {len(repeats)} repeated, "
        f"{len(created) - len(regular)} attention check(s)."
    )


def _attention_items(study, builder, chosen, shapes):
    items = []
    if not study.attention_checks:
        return items
    shown = [case for case, _, _ in chosen]
    for case, intact in _showable_references(study, builder, shown, True, shapes):
        if len(items) == study.attention_checks:
            break
        if study.design == Design.HALLUCINATION:
            altered, where = blinding.attention_image(intact, builder.rng, kind="insert")
            expected = {"marks": True, **where}
        else:
            altered, _ = blinding.attention_image(intact, builder.rng)
            expected = {
                Design.TURING: {"call": "synthetic"},
                Design.LIKERT: {"max_score": 2},
                Design.PAIRWISE: {"winner": "a"},
            }[study.design]
        check = builder.store(altered, case, ImageSource.ATTENTION)
        if study.design == Design.PAIRWISE:
            items.append((builder.store(intact, case, ImageSource.REAL), check, ItemKind.ATTENTION, expected))
        else:
            items.append((check, None, ItemKind.ATTENTION, expected))
    return items


# --- Readers -----------------------------------------------------------------------------


def invite(study, users):
    """Invite readers: accounts without staff rights. Running studies open their sessions at once."""
    staff = [user.username for user in users if user.is_staff or user.is_superuser]
    if staff:
        raise StudyError(f"Readers cannot have staff rights: {', '.join(staff)}.")
    editing = [user.username for user in users if study.is_editor(user)]
    if editing:
        raise StudyError(f"Editors of the study cannot read it: {', '.join(editing)}.")
    with transaction.atomic():
        study.readers.add(*users)
        if study.status == StudyStatus.RUNNING:
            for user in users:
                open_session(study, user)


@transaction.atomic
def open_session(study, reader):
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


def reader_session(study_uid, user):
    """The user's session in a running study, or NotFound (not invited, draft or closed study)."""
    session = (
        ReaderSession.objects.select_related("study")
        .filter(study__uid=study_uid, reader=user, study__status=StudyStatus.RUNNING)
        .first()
    )
    if session is None:
        study = ReaderStudy.objects.filter(uid=study_uid, status=StudyStatus.RUNNING, readers=user).first()
        if study is None:
            raise NotFound("No running study of yours has this address.")
        session = open_session(study, user)
        session.study = study
    return session


#: What showing an item needs: its image rows (their stored headers), in the same query.
ITEM_IMAGES = ("item__image", "item__image_b")


def item_payload(assignment):
    """What the browser learns of an item: its token, its images' viewer headers (the same the header
    endpoint serves, so the viewer needs no request for them) and the autosaved draft."""
    images = [
        {"header_url": reverse("read-image", args=[assignment.token, slot]),
         "header": image_header(assignment.token, slot, image)}
        for slot, image in enumerate(assignment.images())
    ]  # fmt: skip
    return {"token": assignment.token, "images": images, "draft": assignment.draft}


def image_header(token, slot, image):
    """The viewer header of a study image as the reader reaches it: stored at freeze time, plus its data URL."""
    return {**image.header, "data_url": reverse("read-image-data", args=[token, slot])}


def state(session, assignment=None):
    """Progress and the current item (stamping when the server first showed it)."""
    data = {"total": session.total, "done": session.answered, "finished": session.is_finished, "item": None}
    if session.is_finished:
        return data
    if assignment is None:
        assignment = (
            Assignment.objects.select_related(*ITEM_IMAGES).filter(session=session, position=session.answered).first()
        )
    if assignment is None:
        return data
    if assignment.shown_at is None:
        assignment.shown_at = timezone.now()
        Assignment.objects.filter(pk=assignment.pk, shown_at__isnull=True).update(shown_at=assignment.shown_at)
    data["item"] = item_payload(assignment)
    return data


def _current(session, token):
    assignment = Assignment.objects.select_related("item").filter(session=session, token=token).first()
    if assignment is None:
        raise NotFound("No item of yours has this token.")
    if assignment.position < session.answered:
        raise Conflict("This item has already been answered.")
    if assignment.position > session.answered:
        raise NotFound("No item of yours has this token.")
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
    )


def _replay(session, token, key):
    """The state again if `key` already answered `token`; Conflict if it answered another item; else None."""
    prior = Answer.objects.filter(session=session, idempotency_key=key).select_related("assignment").first()
    if prior is None:
        return None
    if prior.assignment.token != token:
        raise Conflict("This idempotency key was used for another item: send a new key per answer.")
    return state(session)


def submit(session, token, value, key):
    """Store the answer to the current item and return the new state (with the next item).

    Safe to repeat: the same idempotency key returns the state again without a second answer
    (also when two copies race: the session's row lock and the unique constraints pick one).
    Another answer to an answered item is a Conflict, and so is a key reused for another item.

    The common path is five queries: lock the session row (only it: `of=("self",)`, else
    PostgreSQL also locks the joined study row and every reader's submit queues on it), read
    the answered item and the next one together, insert the answer, update the session, stamp
    the next item's first showing.
    """
    return _submit(ReaderSession.objects.filter(pk=session.pk), token, value, key)


def submit_as(study_uid, user, token, value, key):
    """`submit` to `user`'s session in the running study `study_uid`: what the answer endpoint calls.

    One query finds and locks the session (rather than `reader_session`, then the lock); a reader
    invited before their session existed gets it opened first, as `reader_session` does.
    """
    sessions = ReaderSession.objects.filter(study__uid=study_uid, reader=user, study__status=StudyStatus.RUNNING)
    return _submit(sessions, token, value, key, open_missing=lambda: reader_session(study_uid, user))


def _submit(sessions, token, value, key, open_missing=None):
    if not key or len(key) > 64:
        raise answer_rules.InvalidAnswer("Send an idempotency key of 1 to 64 characters.")
    session = None
    try:
        with transaction.atomic():
            locked = sessions.select_for_update(of=("self",)).select_related("study").order_by("pk")
            session = locked.first()
            if session is None and open_missing is not None:
                locked = ReaderSession.objects.filter(pk=open_missing().pk).select_for_update(of=("self",))
                session = locked.select_related("study").first()
            if session is None:
                raise NotFound("No running study of yours has this address.")
            if session.study.status != StudyStatus.RUNNING:
                raise StudyError("The study is not running.")
            rows = Assignment.objects.select_related(*ITEM_IMAGES).filter(
                Q(token=token) | Q(position=session.answered + 1), session=session
            )
            assignment = following = None
            for row in rows:
                if row.token == token:
                    assignment = row
                if row.position == session.answered + 1:
                    following = row
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
            return state(session, following)
    except IntegrityError:
        # The key was stored already: by a concurrent copy of this request, or for another item.
        if session is None:
            raise
        session.refresh_from_db()
        replayed = _replay(session, token, key)
        if replayed is not None:
            return replayed
        raise Conflict("This item has already been answered.") from None


def save_draft(session, token, value):
    """Autosave an incomplete answer to the current item (it comes back with the item after a reload)."""
    assignment = _current(session, token)
    cleaned = _validate(session.study, assignment, value, partial=True)
    Assignment.objects.filter(pk=assignment.pk).update(draft=cleaned)
    ReaderSession.objects.filter(pk=session.pk).update(last_activity_at=timezone.now())


def reader_image(user, token, slot):
    """The StudyImage at `slot` (left 0, right 1) of the user's item `token`, if they may see it now.

    A reader reaches an item's images from when it is current until the study closes;
    never another reader's items or items still ahead in their order.
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
    if assignment is None or assignment.position > assignment.session.answered:
        raise NotFound("Not found.")
    images = assignment.images()
    if not 0 <= slot < len(images):
        raise NotFound("Not found.")
    return images[slot]


# --- Editors -----------------------------------------------------------------------------


def progress(study):
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


def answer_records(study):
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


@transaction.atomic
def close(study):
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    study.transition(StudyStatus.CLOSED)
    return study


@transaction.atomic
def reopen(study):
    study = ReaderStudy.objects.select_for_update().get(pk=study.pk)
    if study.published_at is not None:
        raise StudyError("Withdraw the published results before reopening: new answers would make them stale.")
    study.transition(StudyStatus.RUNNING)
    return study
