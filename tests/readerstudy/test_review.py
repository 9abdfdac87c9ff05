"""Review of the reader-study feature (commit 87753c2): each test shows one defect and passes once it is fixed."""

import json
from unittest import mock

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from inference.models import Case, ImageRole
from readerstudy import views
from readerstudy.models import Answer, Assignment, ImageSource, ReaderSession, ReaderStudy, StudyImage, StudyStatus
from readerstudy.services import build, publishing, studies
from readerstudy.services.reading import reader_session, state, submit
from tests.support.study_data import answer_for, form_data, make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


def _form_data(task, runs, **overrides):
    fields = {"title": "Review study", "items_per_model": 4, "repeated_items": 0, "attention_checks": 0, "seed": 11}
    return form_data(task, runs, **{**fields, **overrides})


def _current(client, study):
    return client.get(f"/api/read/{study.uid}/state/").json()


def _post(client, url, body):
    return client.post(url, body if isinstance(body, str) else json.dumps(body), content_type="application/json")


def _load(image):
    with image.array.open("rb") as handle:
        return np.load(handle)


# --- Blinding ------------------------------------------------------------------------------------------------------


def _adjacent_level_share(values):
    """Share of the occupied 12-bit levels whose next occupied level is the adjacent one."""
    levels = np.unique(np.round(values * 4095).astype(int))
    return float((np.diff(levels) == 1).mean())


def test_quantisation_histogram_does_not_tell_integer_valued_real_images_from_synthetic():
    """Integer-valued references (DICOM) spread over ~1–2 k integer values: rescaled onto the 4095-step grid they
    occupy a comb of levels two or three apart, while a network's continuous output fills adjacent levels. A script
    that counts adjacent occupied levels in the served bytes then separates real from synthetic perfectly."""
    task, runs = make_study_task(n_cases=12, shape=(1, 64, 64), n_runs=1)  # one continuous-output model
    study = make_study(task, runs, items_per_model=4, real_ratio=1.0)
    share = {ImageSource.REAL: [], ImageSource.SYNTHETIC: []}
    for image in StudyImage.objects.filter(study=study):
        share[image.source].append(_adjacent_level_share(_load(image)))
    assert len(share[ImageSource.REAL]) == len(share[ImageSource.SYNTHETIC]) == 4
    # Perfect separation by one threshold is a leak.
    assert not max(share[ImageSource.REAL]) < min(share[ImageSource.SYNTHETIC]), share


def test_real_pool_images_carry_no_spacing_that_synthetic_images_lack():
    """The real pool (Turing: other cases first) keeps each case's own spacing in the header, synthetic images the
    spacing of the chosen cases. With per-case spacings a reader sees spacings that only real images have."""
    task, runs = make_study_task(n_cases=12, n_runs=2)
    for i, case in enumerate(Case.objects.filter(dataset=task.dataset).order_by("case_id")):
        reference = case.image(ImageRole.REFERENCE)
        reference.spacing = [0.5 + 0.01 * i, 0.5 + 0.01 * i]
        reference.save()
    study = make_study(task, runs, items_per_model=4, real_ratio=1.0)
    spacings = {ImageSource.REAL: set(), ImageSource.SYNTHETIC: set()}
    for image in StudyImage.objects.filter(study=study, source__in=list(spacings)):
        spacings[image.source].add(tuple(image.header["spacing"]))
    assert spacings[ImageSource.REAL]
    assert spacings[ImageSource.REAL] <= spacings[ImageSource.SYNTHETIC], spacings


# --- Permissions ---------------------------------------------------------------------------------------------------


def test_a_non_staff_creator_cannot_list_themselves_as_a_reader(client):
    """420afe5 keeps readers and `editors` apart, but the creator is an editor too (`is_editor`: created_by) and is
    not in `editors`: a non-staff creator (add_readerstudy permission) can read their own study, truth in hand."""
    creator = get_user_model().objects.create_user("creator", password="creator-pass-123")
    creator.user_permissions.add(Permission.objects.get(codename="add_readerstudy"))
    task, runs = make_study_task(n_cases=10, n_runs=1)
    client.force_login(creator)
    response = client.post("/studies/new/", _form_data(task, runs, readers=[creator.pk]))
    assert response.status_code == 200
    assert f"{creator.pk} is not one of the available choices" in response.context["form"].errors["readers"][0]
    assert creator not in response.context["form"].fields["readers"].queryset  # not offered at all
    assert not ReaderStudy.objects.filter(title="Review study").exists()


# --- Bad input -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("seed", "-1", "Ensure this value is greater than or equal to 0."),
        ("real_ratio", "1e308", "Ensure this value is less than or equal to 20."),
    ],
)
def test_study_settings_that_would_crash_the_start_are_refused_by_the_form(staff_client, field, value, message):
    """A negative seed (numpy's default_rng refuses it) or a huge real ratio (round(inf)) used to pass the form and
    then raise ValueError/OverflowError in freeze: a 500 instead of a message. The form refuses them now."""
    staff_client.raise_request_exception = False
    task, runs = make_study_task(n_cases=10, n_runs=1)
    response = staff_client.post("/studies/new/", _form_data(task, runs, **{field: value}))
    assert response.status_code == 200
    assert response.context["form"].errors == {field: [message]}
    assert not ReaderStudy.objects.exists()


@pytest.mark.parametrize("key", [["realism"], {"k": 1}])
def test_likert_scale_with_an_unhashable_key_is_a_form_error(staff_client, key):
    staff_client.raise_request_exception = False
    task, runs = make_study_task(n_cases=10, n_runs=1)
    scales = [{"key": key, "label": "Realism", "anchors": ["a", "b", "c", "d", "e"]}]
    response = staff_client.post("/studies/new/", _form_data(task, runs, design="likert", scales=json.dumps(scales)))
    assert response.status_code == 200
    assert response.context["form"].errors == {"__all__": ["A scale's key and label are non-empty texts."]}
    assert not ReaderStudy.objects.exists()


@pytest.fixture
def reading(client):
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=1)
    study = make_study(task, runs, readers=[reader], items_per_model=3)
    client.force_login(reader)
    return study, reader, client


def test_deeply_nested_json_body_is_a_400_not_a_500(reading):
    study, _reader, client = reading
    client.raise_request_exception = False
    session = reader_session(study.uid, _reader)
    for url in (f"/api/read/{study.uid}/answers/", f"/api/read/{study.uid}/draft/"):
        response = _post(client, url, "[" * 100_000 + "]" * 100_000)
        assert response.status_code == 400, (url, response.status_code)
        assert response.json() == {"detail": "The request body must be JSON."}
    assert not Answer.objects.exists()
    session.refresh_from_db()
    assert session.answered == 0 and not session.assignments.exclude(draft=None).exists()


def test_huge_integer_mark_coordinate_is_a_400_not_a_500(client):
    """`float(10**400)` in answers._mark raises OverflowError, which nothing turns into a 4xx."""
    client.raise_request_exception = False
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=1)
    study = make_study(task, runs, design="hallucination", readers=[reader], items_per_model=3, real_ratio=0)
    client.force_login(reader)
    token = _current(client, study)["item"]["token"]
    body = '{"item": "%s", "key": "k1", "answer": {"marks": [{"type": "point", "slice": 0, "points": [[1%s, 2]]}]}}'
    response = _post(client, f"/api/read/{study.uid}/answers/", body % (token, "0" * 400))
    assert response.status_code == 400
    assert response.json() == {"detail": "A mark lies outside the image."}
    assert not Answer.objects.exists()


def test_a_null_idempotency_key_is_refused(reading):
    """`str(body.get("key", ""))` turns null into the key "None": accepted once, after which every null-key answer
    is taken as a replay and silently dropped (200, nothing stored)."""
    study, _reader, client = reading
    url = f"/api/read/{study.uid}/answers/"
    token = _current(client, study)["item"]["token"]
    for _ in range(2):  # refused every time: not stored once and then dropped as a replay
        response = _post(client, url, {"item": token, "answer": answer_for("turing"), "key": None})
        assert response.status_code == 400
        assert response.json()["detail"] == "'key' must be a non-empty string."
        assert not Answer.objects.exists()
    assert _current(client, study)["item"]["token"] == token  # still the item to answer
    # The same answer with a real key is stored once.
    assert _post(client, url, {"item": token, "answer": answer_for("turing"), "key": "k1"}).status_code == 200
    assert Answer.objects.filter(assignment__token=token).count() == 1


def test_reusing_an_idempotency_key_for_another_item_does_not_silently_drop_the_answer(reading):
    study, _reader, client = reading
    url = f"/api/read/{study.uid}/answers/"
    first = _current(client, study)["item"]["token"]
    assert _post(client, url, {"item": first, "answer": answer_for("turing"), "key": "same"}).status_code == 200
    second = _current(client, study)["item"]["token"]
    response = _post(client, url, {"item": second, "answer": answer_for("turing"), "key": "same"})
    # Not dropped silently: the client is told that the key belongs to another item, and nothing is stored for it.
    assert response.status_code == 409, response.json()
    assert response.json()["detail"] == "This idempotency key was used for another item: send a new key per answer."
    assert response.json()["state"]["item"]["token"] == second and response.json()["state"]["done"] == 1
    assert not hasattr(Assignment.objects.get(token=second), "answer")
    assert Answer.objects.count() == 1


# --- State machine and atomicity -----------------------------------------------------------------------------------


def test_saving_the_edit_form_while_another_editor_starts_the_study_does_not_unfreeze_it(staff_client):
    """study_edit checks `is_frozen` on a copy read before validation and then `form.save()`s every field of that
    copy, status="draft" included: a start between the two is undone while its items and sessions remain."""
    task, runs = make_study_task(n_cases=10, n_runs=2)
    study = make_study(task, runs[:1], start=False, items_per_model=3)
    original_clean = views.StudyForm.clean

    def clean_while_started(form):
        build.freeze(ReaderStudy.objects.get(pk=study.pk))  # the other editor presses "Start" now
        return original_clean(form)

    with mock.patch.object(views.StudyForm, "clean", clean_while_started):
        staff_client.post(f"/studies/{study.pk}/edit/", _form_data(task, runs, title="Edited"))
    study.refresh_from_db()
    assert study.status == StudyStatus.RUNNING
    assert list(study.runs.all()) == runs[:1]


def test_a_failure_while_opening_a_session_leaves_no_empty_session(client):
    """open_session creates the session, then its assignments, outside a transaction: a crash between them (on the
    lazy path: readers added while the study is closed, then reopened) leaves a session with no items for good."""
    task, runs = make_study_task(n_cases=10, n_runs=1)
    study = make_study(task, runs, items_per_model=3)
    study = studies.close(study)
    reader = make_reader()
    studies.invite(study, readers=[reader])
    studies.reopen(study)
    with mock.patch.object(Assignment.objects, "bulk_create", side_effect=RuntimeError("worker killed")):
        with pytest.raises(RuntimeError):
            reader_session(study.uid, reader)
    session = reader_session(study.uid, reader)
    assert session.total == study.items.count() > 0
    assert ReaderSession.objects.get(pk=session.pk).assignments.count() == session.total


def test_reopening_a_published_study_does_not_leave_stale_results_on_the_leaderboard(staff_client):
    """Closed → running is allowed after publishing: the leaderboard keeps the published values while new answers
    come in, and the analysis page of a running study stays public."""
    readers = [make_reader("reader1"), make_reader("reader2")]
    task, runs = make_study_task(n_cases=10, n_runs=1)
    study = make_study(task, runs, readers=readers, items_per_model=3, real_ratio=1.0)
    rng = np.random.default_rng(1)
    for reader in readers:
        session = reader_session(study.uid, reader)
        while not session.is_finished:
            token = state(session)["item"]["token"]
            submit(session, token=token, value=answer_for("turing", rng), key=f"k{session.answered}")
            session.refresh_from_db()
    studies.close(study)
    publishing.publish(study)
    response = staff_client.post(f"/studies/{study.pk}/reopen/", follow=True)
    study.refresh_from_db()
    # Refused with the reason: a published study stays closed (and published).
    assert study.status == StudyStatus.CLOSED and study.published_at is not None
    assert [str(m) for m in response.context["messages"]] == [
        "Its results were published, which showed its readers the images' sources; a reopened study would not be "
        "blind. Start a new study instead."
    ]
