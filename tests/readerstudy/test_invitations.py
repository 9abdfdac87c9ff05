"""Readers without the admin: an editor's one-time invitation link makes the reader's account (or adds the one
they are logged in with) and opens their session; "Your reading" shows their studies and progress."""

import re
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core import mail
from django.test import Client, override_settings
from django.utils import timezone

from readerstudy.errors import StudyError
from readerstudy.models import Assignment, Invitation, ReaderStudy, StudyStatus
from readerstudy.services import invitations, reading, studies
from tests.support.study_data import answer_for, make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-reader-passphrase"


@pytest.fixture
def editor(django_user_model):
    user = django_user_model.objects.create_user("editor", password="editor-pass-123")
    user.user_permissions.add(Permission.objects.get(codename="add_readerstudy"))
    return user


@pytest.fixture
def study(editor):
    task, runs = make_study_task(n_cases=8, n_runs=1)
    return make_study(task, runs, created_by=editor, items_per_model=3)


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def make_link(client, study, **data):
    """Post the study page's "Invite by link" form; the new invitation and the study page after it."""
    response = client.post(f"/studies/{study.pk}/invitations/", {"email": "", "days": 14, **data})
    assert response.status_code == 302 and response["Location"] == f"/studies/{study.pk}/"
    invitation = Invitation.objects.filter(study=study).latest("created_at")
    return invitation, client.get(f"/studies/{study.pk}/").content.decode()


def join_with_new_account(token, username="newreader", password=PASSWORD, again=None):
    client = Client()
    response = client.post(
        f"/invite/{token}/",
        {"username": username, "email": "", "password": password, "password_again": again or password},
    )
    return client, response


def test_an_editor_makes_a_link_and_the_page_shows_it_whole(editor, study):
    invitation, page = make_link(logged_in(editor), study)
    link = f"http://testserver/invite/{invitation.token}/"
    assert f'value="{link}"' in page  # the copy field
    assert link in page  # and the message after making it
    assert 'data-copy-target="invitation-link-' in page and "js/copy_link.js" in page
    assert invitation.created_by == editor and invitation.used_at is None
    assert timedelta(days=13, hours=23) < invitation.expires_at - timezone.now() <= timedelta(days=14)
    row = re.search(rf'<tr data-invitation="{invitation.pk}">.*?</tr>', page, re.S).group(0)
    assert '<td class="invitation-status">open</td>' in row


@override_settings(MEDGEN_EMAIL=True)
def test_the_link_is_e_mailed_when_e_mail_is_configured(editor, study):
    invitation, page = make_link(logged_in(editor), study, email="dr.who@example.org", days=3)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["dr.who@example.org"]
    assert f"http://testserver/invite/{invitation.token}/" in message.body
    assert study.title in message.subject
    assert invitation.email == "dr.who@example.org"
    assert "e-mailed to dr.who@example.org" in page


@override_settings(MEDGEN_EMAIL=False)
def test_without_e_mail_nothing_is_sent_and_the_editor_is_told(editor, study):
    invitation, page = make_link(logged_in(editor), study, email="dr.who@example.org")
    assert mail.outbox == []
    assert invitation.email == "dr.who@example.org"
    assert "E-mail is not set up on this site: send it to dr.who@example.org." in page


def test_an_anonymous_visitor_makes_an_account_and_lands_in_the_running_study(editor, study):
    invitation = invitations.create_invitation(study, created_by=editor)
    page = Client().get(f"/invite/{invitation.token}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert study.title in text and 'name="password_again"' in text
    assert f'href="/accounts/login/?next=/invite/{invitation.token}/"' in text

    client, response = join_with_new_account(invitation.token)
    assert response.status_code == 302 and response["Location"] == f"/read/{study.uid}/"
    reader = get_user_model().objects.get(username="newreader")
    assert reader.check_password(PASSWORD) and not reader.is_staff
    session = study.sessions.get(reader=reader)
    assert session.total == study.items.count() > 0
    assert set(Assignment.objects.filter(session=session).values_list("item_id", flat=True)) == set(
        study.items.values_list("pk", flat=True)
    )
    invitation.refresh_from_db()
    assert invitation.used_by == reader and invitation.used_at is not None
    # Logged in as the new reader: the workspace and its state answer.
    assert client.get(f"/read/{study.uid}/").status_code == 200
    assert client.get(f"/api/read/{study.uid}/state/").json()["total"] == session.total


def test_a_bad_password_or_a_taken_name_makes_no_account_and_keeps_the_link(editor, study):
    invitation = invitations.create_invitation(study, created_by=editor)
    make_reader("taken")
    attempts = {
        "short": join_with_new_account(invitation.token, username="someone", password="short"),
        "differ": join_with_new_account(invitation.token, username="someone", again="another-long-passphrase"),
        "taken": join_with_new_account(invitation.token, username="Taken"),
    }
    for name, (_client, response) in attempts.items():
        assert response.status_code == 400, name
    assert "This password is too short" in attempts["short"][1].content.decode()
    assert "The two passwords differ." in attempts["differ"][1].content.decode()
    assert "The username &#x27;Taken&#x27; is taken." in attempts["taken"][1].content.decode()
    assert not get_user_model().objects.filter(username="someone").exists()
    invitation.refresh_from_db()
    assert invitation.used_at is None and not study.sessions.filter(reader__username="someone").exists()


def test_a_link_works_once(editor, study):
    invitation = invitations.create_invitation(study, created_by=editor)
    join_with_new_account(invitation.token, username="first")
    _client, again = join_with_new_account(invitation.token, username="second")
    assert again.status_code == 410
    assert "already used" in again.content.decode()
    assert not get_user_model().objects.filter(username="second").exists()
    assert Client().get(f"/invite/{invitation.token}/").status_code == 410
    with pytest.raises(invitations.InvitationClosed):
        invitations.accept_invitation(token=invitation.token, user=make_reader("third"))


def test_an_expired_link_says_so(editor, study):
    invitation = invitations.create_invitation(study, created_by=editor, days=1)
    Invitation.objects.filter(pk=invitation.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = Client().get(f"/invite/{invitation.token}/")
    assert response.status_code == 410 and "has expired" in response.content.decode()
    _client, joined = join_with_new_account(invitation.token)
    assert joined.status_code == 410
    assert not get_user_model().objects.filter(username="newreader").exists()


def test_a_revoked_link_is_gone(editor, study):
    client = logged_in(editor)
    invitation, _page = make_link(client, study)
    response = client.post(f"/studies/{study.pk}/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    assert not Invitation.objects.filter(pk=invitation.pk).exists()
    gone = Client().get(f"/invite/{invitation.token}/")
    assert gone.status_code == 404 and "not valid" in gone.content.decode()
    _client, joined = join_with_new_account(invitation.token)
    assert joined.status_code == 404
    assert not get_user_model().objects.filter(username="newreader").exists()
    # A used invitation is the record of who joined: it cannot be revoked.
    used = invitations.create_invitation(study, created_by=editor)
    invitations.accept_invitation(token=used.token, user=make_reader("joined"))
    client.post(f"/studies/{study.pk}/invitations/{used.pk}/revoke/")
    assert Invitation.objects.filter(pk=used.pk, used_by__username="joined").exists()


def test_a_logged_in_account_joins_with_one_click(editor, study):
    invitation = invitations.create_invitation(study, created_by=editor)
    reader = make_reader("existing")
    client = logged_in(reader)
    page = client.get(f"/invite/{invitation.token}/").content.decode()
    assert f"Join {study.title} as existing" in page and 'name="password"' not in page
    response = client.post(f"/invite/{invitation.token}/")
    assert response.status_code == 302 and response["Location"] == f"/read/{study.uid}/"
    assert study.readers.filter(pk=reader.pk).exists()
    assert study.sessions.get(reader=reader).total == study.items.count()
    invitation.refresh_from_db()
    assert invitation.used_by == reader


def test_a_draft_study_is_joined_and_its_session_opens_at_the_start(editor):
    task, runs = make_study_task(n_cases=8, n_runs=1)
    draft = make_study(task, runs, created_by=editor, items_per_model=3, start=False)
    invitation = invitations.create_invitation(draft, created_by=editor)
    client, response = join_with_new_account(invitation.token)
    assert response.status_code == 302 and response["Location"] == "/reading/"
    assert "not started yet" in client.get("/reading/").content.decode()
    assert not draft.sessions.exists() and draft.readers.filter(username="newreader").exists()


@pytest.mark.parametrize("who", ["staff", "editor"])
def test_staff_and_the_study_s_editors_are_refused_with_the_reason(editor, study, django_user_model, who):
    user = django_user_model.objects.create_user("admin", is_staff=True) if who == "staff" else editor
    invitation = invitations.create_invitation(study, created_by=editor)
    response = logged_in(user).post(f"/invite/{invitation.token}/")
    assert response.status_code == 400
    expected = "admin has staff rights" if who == "staff" else f"{editor.username} edits the study"
    assert expected in response.content.decode()
    invitation.refresh_from_db()
    assert invitation.used_at is None and not study.readers.filter(pk=user.pk).exists()


def test_a_study_error_from_invite_leaves_no_account_behind(editor, study, monkeypatch):
    """Whatever `studies.invite` refuses (more checks are coming there) reaches the visitor, and the new
    account it would have read with is rolled back."""

    def refuse(study, *, readers):
        raise StudyError("This reader is not eligible for the study.")

    monkeypatch.setattr(invitations, "invite", refuse)
    invitation = invitations.create_invitation(study, created_by=editor)
    _client, response = join_with_new_account(invitation.token)
    assert response.status_code == 400 and "not eligible" in response.content.decode()
    assert not get_user_model().objects.filter(username="newreader").exists()
    invitation.refresh_from_db()
    assert invitation.used_at is None


def test_non_editors_cannot_make_or_revoke_links(editor, study, django_user_model):
    invitation = invitations.create_invitation(study, created_by=editor)
    reader = make_reader("outsider")
    other_editor = django_user_model.objects.create_user("other-editor")
    other_editor.user_permissions.add(Permission.objects.get(codename="add_readerstudy"))
    for user in (reader, other_editor):
        client = logged_in(user)
        assert client.post(f"/studies/{study.pk}/invitations/", {"days": 14}).status_code == 404
        assert client.post(f"/studies/{study.pk}/invitations/{invitation.pk}/revoke/").status_code == 404
    anonymous = Client().post(f"/studies/{study.pk}/invitations/", {"days": 14})
    assert anonymous.status_code == 302 and "/accounts/login/" in anonymous["Location"]
    assert list(Invitation.objects.values_list("pk", flat=True)) == [invitation.pk]


def test_closed_or_published_studies_take_no_new_links(editor, study):
    with pytest.raises(StudyError, match="1 to 90 days"):
        invitations.create_invitation(study, created_by=editor, days=0)
    client = logged_in(editor)
    studies.close(study)
    response = client.post(f"/studies/{study.pk}/invitations/", {"days": 14}, follow=True)
    assert "The study is closed" in response.content.decode()
    assert not Invitation.objects.exists()
    study.refresh_from_db()
    study.status, study.published_at = StudyStatus.RUNNING, timezone.now()
    with pytest.raises(StudyError, match="published"):
        invitations.create_invitation(study, created_by=editor)


def test_an_open_link_to_a_study_closed_meanwhile_is_refused(editor, study):
    invitation = invitations.create_invitation(study, created_by=editor)
    studies.close(study)
    _client, response = join_with_new_account(invitation.token)
    assert response.status_code == 400 and "The study is closed" in response.content.decode()
    assert not get_user_model().objects.filter(username="newreader").exists()


def test_your_reading_shows_each_study_with_its_progress(editor, study):
    reader = make_reader("counting")
    studies.invite(study, readers=[reader])
    session = study.sessions.get(reader=reader)
    rng = np.random.default_rng(3)
    for _ in range(3):
        token = reading.state(session)["item"]["token"]
        reading.submit(session, token=token, value=answer_for("turing", rng), key=f"k-{token}")
        session.refresh_from_db()
    # Other images (another size): a reader is never given a second study of the same sources.
    task, runs = make_study_task(n_cases=8, n_runs=1, shape=(1, 20, 20))
    closed = make_study(task, runs, created_by=editor, items_per_model=3)
    ReaderStudy.objects.filter(pk=closed.pk).update(title="Closed one")
    studies.invite(closed, readers=[reader])
    studies.close(closed)
    client = logged_in(reader)
    page = client.get("/reading/").content.decode()
    total = study.items.count()
    running_row = re.search(rf'<tr data-study="{study.uid}">.*?</tr>', page, re.S).group(0)
    assert f"3 / {total}" in running_row and "running" in running_row
    assert f'href="/read/{study.uid}/">Continue</a>' in running_row
    closed_row = re.search(rf'<tr data-study="{closed.uid}">.*?</tr>', page, re.S).group(0)
    assert "closed" in closed_row and f"0 / {closed.items.count()}" in closed_row and "/read/" not in closed_row
    assert page.index(study.title) < page.index("Closed one")  # running first
    assert 'id="nav-my-reading"' in page
    assert Client().get("/reading/").status_code == 302


def test_your_reading_says_finished_and_offers_start_before_the_first_answer(editor, study):
    reader = make_reader("finisher")
    studies.invite(study, readers=[reader])
    client = logged_in(reader)
    assert f'href="/read/{study.uid}/">Start</a>' in client.get("/reading/").content.decode()
    session = study.sessions.get(reader=reader)
    while not session.is_finished:
        token = reading.state(session)["item"]["token"]
        reading.submit(session, token=token, value=answer_for("turing"), key=f"k-{token}")
        session.refresh_from_db()
    page = client.get("/reading/").content.decode()
    assert f"{session.total} / {session.total}" in page and "finished" in page
    assert f'href="/read/{study.uid}/"' not in page


def test_a_login_without_next_lands_readers_in_your_reading_and_others_on_the_tasks(editor, study):
    reader = make_reader("lander")
    studies.invite(study, readers=[reader])
    outsider = make_reader("outsider")
    logins = [
        (reader, "reader-pass-123", "/reading/"),
        (outsider, "reader-pass-123", "/"),
        (editor, "editor-pass-123", "/"),
    ]
    for user, password, landing in logins:
        client = Client()
        response = client.post("/accounts/login/", {"username": user.username, "password": password})
        assert response.status_code == 302 and response["Location"] == "/reading/landing/"
        assert client.get("/reading/landing/")["Location"] == landing, user.username
    studies.close(study)
    assert logged_in(reader).get("/reading/landing/")["Location"] == "/"
    # With ?next= the login goes there, as before.
    client = Client()
    response = client.post(
        "/accounts/login/?next=/models/", {"username": "lander", "password": "reader-pass-123", "next": "/models/"}
    )
    assert response["Location"] == "/models/"


@override_settings(MEDGEN_SELF_REGISTRATION=False)
def test_a_link_makes_an_account_where_self_registration_is_off(editor, study):
    assert Client().post("/accounts/signup/", {"username": "x", "password": PASSWORD}).status_code == 400
    invitation = invitations.create_invitation(study, created_by=editor)
    _client, response = join_with_new_account(invitation.token)
    assert response.status_code == 302
    assert study.sessions.filter(reader__username="newreader").exists()
