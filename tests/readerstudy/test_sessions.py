"""Readers' sessions: answers stored exactly once, autosave, resume, server-side timing, and what readers
cannot reach (other readers' items, other studies, editors' pages, the task of a running study)."""

import json
import threading
from datetime import timedelta

import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.db import connection
from django.test import Client
from django.utils import timezone

from readerstudy.errors import StudyError
from readerstudy.models import Answer, Assignment, ReaderSession, ReaderStudy, StudyStatus
from readerstudy.services import build, reading, studies
from tests.support.study_data import answer_for, make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_and_reader(client):
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=2)
    study = make_study(task, runs, readers=[reader], items_per_model=3)
    client.force_login(reader)
    return study, reader, client


def state_of(client, study):
    return client.get(f"/api/read/{study.uid}/state/").json()


def post_answer(client, study, token, answer, key):
    body = json.dumps({"item": token, "answer": answer, "key": key})
    return client.post(f"/api/read/{study.uid}/answers/", body, content_type="application/json")


def test_double_submit_keeps_one_answer(study_and_reader):
    study, reader, client = study_and_reader
    token = state_of(client, study)["item"]["token"]
    answer = {"call": "synthetic", "confidence": 4}
    first = post_answer(client, study, token, answer, "key-1")
    again = post_answer(client, study, token, answer, "key-1")  # a retry after a lost response
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.json()["done"] == 1
    assert Answer.objects.count() == 1
    assert Answer.objects.get().value == answer


def test_second_answer_to_an_answered_item_is_refused(study_and_reader):
    study, reader, client = study_and_reader
    token = state_of(client, study)["item"]["token"]
    post_answer(client, study, token, {"call": "real", "confidence": 2}, "key-1")
    response = post_answer(client, study, token, {"call": "synthetic", "confidence": 5}, "key-2")
    assert response.status_code == 409
    assert response.json()["state"]["done"] == 1
    assert Answer.objects.get().value == {"call": "real", "confidence": 2}


def test_invalid_answers_get_a_message_and_store_nothing(study_and_reader):
    study, reader, client = study_and_reader
    token = state_of(client, study)["item"]["token"]
    for bad in ({"call": "maybe", "confidence": 3}, {"call": "real"}, {"call": "real", "confidence": 9}, [1, 2]):
        response = post_answer(client, study, token, bad, "key-x")
        assert response.status_code == 400
        assert response.json()["detail"]
    response = client.post(f"/api/read/{study.uid}/answers/", "not json", content_type="application/json")
    assert response.status_code == 400
    assert Answer.objects.count() == 0
    assert state_of(client, study)["done"] == 0


@pytest.mark.django_db(transaction=True)
def test_concurrent_double_submit_stores_one_answer():
    """Two copies of the same submit racing on separate connections: the row lock and the unique
    constraints leave one answer, and both copies get the same state back."""
    reader = make_reader()
    task, runs = make_study_task(n_cases=8, n_runs=1)
    study = make_study(task, runs, readers=[reader], items_per_model=3)
    session = reading.open_session(study, reader=reader)
    token = reading.state(session)["item"]["token"]
    results, barrier = [], threading.Barrier(4)

    def submit():
        client = Client()
        client.force_login(reader)
        barrier.wait()
        try:
            results.append(post_answer(client, study, token, {"call": "real", "confidence": 1}, "same-key"))
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.status_code for r in results] == [200] * 4
    assert {r.json()["done"] for r in results} == {1}
    assert Answer.objects.filter(session__study=study).count() == 1


def test_draft_autosaves_and_comes_back_after_a_reload(client):
    reader = make_reader()
    task, runs = make_study_task(n_cases=8, n_runs=1)
    study = make_study(task, runs, design="likert", readers=[reader], items_per_model=2)
    client.force_login(reader)
    token = state_of(client, study)["item"]["token"]
    body = json.dumps({"item": token, "answer": {"scores": {"realism": 4}}})
    assert client.post(f"/api/read/{study.uid}/draft/", body, content_type="application/json").status_code == 204
    assert state_of(client, study)["item"]["draft"] == {"scores": {"realism": 4}}
    incomplete = post_answer(client, study, token, {"scores": {"realism": 4}}, "k1")
    assert incomplete.status_code == 400 and "diagnostic_quality" in incomplete.json()["detail"]
    bad_draft = json.dumps({"item": token, "answer": {"scores": {"realism": 7}}})
    assert client.post(f"/api/read/{study.uid}/draft/", bad_draft, content_type="application/json").status_code == 400


def test_session_resumes_where_it_stopped_after_logout(study_and_reader):
    study, reader, client = study_and_reader
    for n in range(3):
        state = state_of(client, study)
        post_answer(client, study, state["item"]["token"], answer_for("turing"), f"k{n}")
    expected = state_of(client, study)
    client.logout()
    fresh = Client()
    fresh.login(username=reader.username, password="reader-pass-123")
    resumed = state_of(fresh, study)
    assert resumed == expected
    assert resumed["done"] == 3
    assert Assignment.objects.get(token=resumed["item"]["token"]).position == 3


def test_time_per_item_is_measured_by_the_server(study_and_reader):
    study, reader, client = study_and_reader
    token = state_of(client, study)["item"]["token"]
    shown = timezone.now() - timedelta(seconds=7.5)
    Assignment.objects.filter(token=token).update(shown_at=shown)  # as if shown 7.5 s ago
    post_answer(client, study, token, answer_for("turing"), "k")
    assert 7400 <= Answer.objects.get().duration_ms <= 9000
    # Reloading the page does not restart the clock: shown_at is stamped once.
    next_token = state_of(client, study)["item"]["token"]
    first_shown = Assignment.objects.get(token=next_token).shown_at
    state_of(client, study)
    assert Assignment.objects.get(token=next_token).shown_at == first_shown


def test_finishing_marks_the_session_and_ends_the_items(study_and_reader):
    study, reader, client = study_and_reader
    state = state_of(client, study)
    while not state["finished"]:
        state = post_answer(client, study, state["item"]["token"], answer_for("turing"), f"k{state['done']}").json()
    session = ReaderSession.objects.get(study=study, reader=reader)
    assert session.finished_at is not None and session.answered == session.total == state["total"]
    assert Answer.objects.filter(session=session).count() == session.total
    assert state["item"] is None


def test_readers_cannot_reach_other_readers_items_or_future_items(study_and_reader):
    study, reader, client = study_and_reader
    other = make_reader("reader2")
    studies.invite(study, readers=[other])
    theirs = Assignment.objects.filter(session__reader=other).first()
    assert client.get(f"/api/read/items/{theirs.token}/images/0/").status_code == 404
    ahead = Assignment.objects.filter(session__reader=reader, position=2).get()
    assert client.get(f"/api/read/items/{ahead.token}/images/0/").status_code == 404
    assert client.get(f"/api/read/items/{ahead.token}/images/0/data/").status_code == 404
    current = state_of(client, study)["item"]["token"]
    assert client.get(f"/api/read/items/{current}/images/1/").status_code == 404  # one image only
    # Answering another reader's item, or one ahead, is refused and stores nothing.
    assert post_answer(client, study, theirs.token, answer_for("turing"), "x").status_code == 404
    assert post_answer(client, study, ahead.token, answer_for("turing"), "y").status_code == 404
    assert Answer.objects.count() == 0


def test_readers_cannot_see_other_studies_editor_pages_or_the_running_task(study_and_reader):
    study, reader, client = study_and_reader
    task = study.task
    other_study = make_study(task, list(study.runs.all()), items_per_model=2)  # not invited
    assert client.get(f"/api/read/{other_study.uid}/state/").status_code == 404
    assert client.get(f"/read/{other_study.uid}/").status_code == 404
    for url in (
        f"/studies/{study.pk}/",
        f"/studies/{study.pk}/analysis/",
        f"/studies/{study.pk}/answers.csv",
        f"/api/studies/{study.pk}/analysis/",
        "/studies/new/",
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/studies/{study.pk}/close/").status_code == 404
    # The task of the running study: leaderboard, pages, runs, outputs, case images and APIs.
    run = study.runs.first()
    output = run.outputs.first()
    case_image = output.case.images.first()
    for url in (
        f"/tasks/{task.slug}/",
        f"/tasks/{task.slug}/leaderboard/",
        f"/api/tasks/{task.slug}/leaderboard/",
        f"/runs/{run.pk}/",
        f"/runs/{run.pk}/cases/{output.case_id}/",
        f"/cases/{output.case_id}/",
        f"/api/arrays/outputs/{output.pk}/",
        f"/api/arrays/case-images/{case_image.pk}/",
        f"/api/runs/{run.pk}/",
    ):
        assert client.get(url).status_code == 404, url
    listed = client.get("/api/tasks/").json()
    assert task.slug not in json.dumps(listed)
    # Closing changes nothing (a reopened study would be read by readers who had seen its task); once
    # its results are published, the task is theirs to see again.
    studies.close(study)
    assert client.get(f"/tasks/{task.slug}/leaderboard/").status_code == 404
    assert client.get(f"/api/read/{study.uid}/state/").status_code == 404  # and the items are gone
    ReaderStudy.objects.filter(pk=study.pk).update(published_at=timezone.now())  # as `publishing.publish` marks it
    board = client.get(f"/tasks/{task.slug}/leaderboard/")
    assert board.status_code == 200 and task.name in board.content.decode()


def test_anonymous_users_get_401_from_the_reader_api(client, study_and_reader):
    study, reader, _ = study_and_reader
    anonymous = Client()
    assert anonymous.get(f"/api/read/{study.uid}/state/").status_code == 401
    assert anonymous.get(f"/read/{study.uid}/").status_code == 302  # to the login page


def test_staff_cannot_be_invited_as_readers(staff_user):
    task, runs = make_study_task(n_cases=6, n_runs=1)
    study = make_study(task, runs, items_per_model=2)
    with pytest.raises(StudyError, match="staff"):
        studies.invite(study, readers=[staff_user])


def test_items_are_frozen_once_the_study_starts(staff_client):
    reader = make_reader()
    task, runs = make_study_task(n_cases=10, n_runs=2)
    study = make_study(task, runs, readers=[reader], items_per_model=3)
    items = list(study.items.values_list("pk", "image_id", "image_b_id"))
    with pytest.raises(StudyError, match="frozen"):
        build.freeze(study)
    response = staff_client.post(f"/studies/{study.pk}/edit/", {"title": "changed", "items_per_model": 9})
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.title != "changed" and study.items_per_model == 3
    studies.invite(study, readers=[make_reader("late")])  # a reader invited later gets the same items
    assert list(study.items.values_list("pk", "image_id", "image_b_id")) == items
    assert ReaderSession.objects.get(study=study, reader__username="late").total == len(items)
    assert study.status == StudyStatus.RUNNING


def test_a_failed_build_leaves_the_draft_and_no_files(settings, tmp_path):
    task, runs = make_study_task(n_cases=4, n_runs=1)
    study = make_study(task, runs, items_per_model=10, start=False)  # only 4 cases exist
    with pytest.raises(StudyError, match="Only 4 case"):
        build.freeze(study)
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT and not study.items.exists() and not study.images.exists()
    folder = f"readerstudies/{study.uid}"
    assert not default_storage.exists(folder)


def test_the_next_item_comes_blind_for_prefetching_and_cannot_be_answered_early(study_and_reader):
    study, reader, client = study_and_reader
    state = state_of(client, study)
    following = Assignment.objects.get(session__reader=reader, position=1)
    assert state["next"] == {
        "token": following.token,
        "images": [
            {"header_url": f"/api/read/items/{following.token}/images/0/",
             "header": client.get(f"/api/read/items/{following.token}/images/0/").json()}
        ],
    }  # fmt: skip
    assert "draft" not in state["next"] and Assignment.objects.get(pk=following.pk).shown_at is None
    data = client.get(state["next"]["images"][0]["header"]["data_url"])
    assert data.status_code == 200 and len(data.content) == 4 * np.prod(following.item.image.header["shape"])
    assert post_answer(client, study, following.token, answer_for("turing"), "early").status_code == 404
    assert (
        client.post(
            f"/api/read/{study.uid}/draft/", {"item": following.token, "answer": {}}, content_type="application/json"
        ).status_code
        == 404
    )
    # After an answer, the answer's response names the item after the next one, whose images open now.
    answered = post_answer(client, study, state["item"]["token"], answer_for("turing"), "k").json()
    assert answered["item"]["token"] == following.token
    after = Assignment.objects.get(session__reader=reader, position=2)
    assert answered["next"]["token"] == after.token
    assert client.get(f"/api/read/items/{after.token}/images/0/").status_code == 200
    further = Assignment.objects.get(session__reader=reader, position=3)
    assert client.get(f"/api/read/items/{further.token}/images/0/data/").status_code == 404
    last = Assignment.objects.filter(session__reader=reader).order_by("-position").first()
    session = ReaderSession.objects.get(study=study, reader=reader)
    session.answered = last.position
    session.save(update_fields=["answered"])
    assert state_of(client, study)["next"] is None  # the last item has none


def test_submit_and_next_is_a_fixed_handful_of_queries(study_and_reader, django_assert_max_num_queries):
    """Whatever the position, the study or its size: the load benchmark's 50 ms budget depends on it.

    Nine: the login session and user, then submit's five (find and lock the reader's session, the
    answered and next items, insert, update, stamp) inside a savepoint pair (the test's own transaction)."""
    study, reader, client = study_and_reader
    token = state_of(client, study)["item"]["token"]
    with django_assert_max_num_queries(9) as captured:
        response = post_answer(client, study, token, answer_for("turing"), "k-0")
    assert response.status_code == 200
    locks = [q["sql"] for q in captured.captured_queries if "FOR UPDATE" in q["sql"]]
    if connection.vendor == "postgresql":  # only the reader's own session row is locked, never the study's
        assert len(locks) == 1 and 'FOR UPDATE OF "readerstudy_readersession"' in locks[0]


def test_study_images_share_the_viewers_whole_array_limit(study_and_reader, settings):
    study, reader, client = study_and_reader
    header = state_of(client, study)["item"]["images"][0]["header"]
    settings.MEDGEN_VIEWER_MAX_ARRAY_BYTES = header["whole_bytes"] - 1
    refused = client.get(header["data_url"])
    assert refused.status_code == 413 and "slice" in refused.json()["detail"]
    plane = client.get(header["data_url"], {"slice": 0})
    assert plane.status_code == 200 and plane["X-Array-Shape"] == f"{header['rows']},{header['columns']}"
    assert len(plane.content) == 4 * header["rows"] * header["columns"]
