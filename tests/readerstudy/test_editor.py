"""Editors create, start, invite and close studies through the pages; bad settings get a message."""

import json

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from inference.services import participation
from readerstudy.models import ReaderStudy, StudyStatus
from tests.support.study_data import form_data, make_reader, make_study_task

pytestmark = pytest.mark.django_db


def test_staff_create_start_invite_and_close_a_study(staff_client):
    task, runs = make_study_task(n_cases=13, n_runs=2)
    reader = make_reader()
    response = staff_client.post("/studies/new/", form_data(task, runs, readers=[reader.pk]))
    assert response.status_code == 302
    study = ReaderStudy.objects.get()
    assert study.status == StudyStatus.DRAFT and not study.items.exists()
    assert staff_client.post(f"/studies/{study.pk}/start/").status_code == 302
    study.refresh_from_db()
    assert study.status == StudyStatus.RUNNING
    # Synthetic (each run its own 3 cases), real 1:1 from 6 other cases, a repeat, an attention check from the last.
    assert study.items.count() == 2 * 3 + 6 + 1 + 1
    cases = {
        kind: set(study.images.filter(source=kind).values_list("case_id", flat=True))
        for kind in ("synthetic", "real", "attention")
    }
    assert [len(c) for c in cases.values()] == [6, 6, 1]
    assert not (cases["synthetic"] & cases["real"]) and not (cases["attention"] & (cases["synthetic"] | cases["real"]))
    assert study.sessions.get().reader == reader
    late = make_reader("late")
    staff_client.post(f"/studies/{study.pk}/invite/", {"readers": [late.pk]})
    assert study.sessions.count() == 2
    page = staff_client.get(f"/studies/{study.pk}/").content.decode()
    assert 'data-reader="late"' in page and "0 / 14" in page
    staff_client.post(f"/studies/{study.pk}/close/")
    study.refresh_from_db()
    assert study.status == StudyStatus.CLOSED
    reader_client = Client()
    reader_client.force_login(reader)
    assert reader_client.get(f"/api/read/{study.uid}/state/").status_code == 404


def test_the_form_refuses_foreign_runs_bad_scales_and_readers_who_edit(staff_client, staff_user):
    task, runs = make_study_task(n_cases=6, n_runs=1)
    other_task, other_runs = make_study_task(n_cases=6, n_runs=1)
    reader = make_reader()
    cases = {
        "runs": form_data(task, other_runs),
        "scales": form_data(
            task, runs, design="likert", scales=json.dumps([{"key": "x", "label": "X", "anchors": []}])
        ),
        "json": form_data(task, runs, design="likert", scales="{not json"),
        "both": form_data(task, runs, readers=[reader.pk], editors=[reader.pk]),
        "items": form_data(task, runs, items_per_model=0),
    }
    for name, data in cases.items():
        response = staff_client.post("/studies/new/", data)
        assert response.status_code == 200, name  # the form again, with its errors
        assert 'class="errorlist' in response.content.decode(), name
    assert not ReaderStudy.objects.exists()


def test_likert_scales_default_to_three_anchored_scales(staff_client):
    task, runs = make_study_task(n_cases=6, n_runs=1)
    page = staff_client.get("/studies/new/").content.decode()
    assert "Indistinguishable from a real acquisition" in page
    from readerstudy.models import DEFAULT_SCALES

    response = staff_client.post(
        "/studies/new/", form_data(task, runs, design="likert", scales=json.dumps(DEFAULT_SCALES))
    )
    assert response.status_code == 302
    assert [s["key"] for s in ReaderStudy.objects.get().scales] == ["realism", "diagnostic_quality", "anatomy"]


def test_a_start_that_cannot_build_keeps_the_draft_and_says_why(staff_client):
    task, runs = make_study_task(n_cases=4, n_runs=1)
    staff_client.post("/studies/new/", form_data(task, runs, items_per_model=9))
    study = ReaderStudy.objects.get()
    response = staff_client.post(f"/studies/{study.pk}/start/", follow=True)
    assert "Only 4 case(s)" in response.content.decode()
    study.refresh_from_db()
    assert study.status == StudyStatus.DRAFT


def test_non_staff_editors_need_the_permission_and_see_only_their_studies(client):
    task, runs = make_study_task(n_cases=6, n_runs=1)
    editor = make_reader("editor")
    client.force_login(editor)
    assert client.get("/studies/new/").status_code == 404
    editor.user_permissions.add(Permission.objects.get(codename="add_readerstudy"))
    client.force_login(editor)
    # The task's test set is hidden, so its runs are seen by its organisers only: the editor needs to be one.
    assert client.post("/studies/new/", form_data(task, runs)).status_code == 200
    participation.add_organiser(task, user=editor)
    assert client.post("/studies/new/", form_data(task, runs)).status_code == 302
    mine = ReaderStudy.objects.get()
    page = client.get(f"/studies/{mine.pk}/")
    assert page.status_code == 200 and mine.title in page.content.decode()
    others = ReaderStudy.objects.create(title="not yours", task=task, design="turing")
    assert client.get(f"/studies/{others.pk}/").status_code == 404
    assert client.post(f"/studies/{others.pk}/start/").status_code == 404
