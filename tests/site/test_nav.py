"""The site menu per role (issue 18): an "Organise" link for whoever may create tasks (staff and task
organisers), leading to the organisers' page (a new task, the settings of theirs, a dataset import);
a reader who is only a reader sees their reading and the tasks, not models and the API."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from inference.models import MemberRole, Membership, MemberStatus
from tests.support.factories import make_task
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db

FULL = ["Tasks", "Models", "My submissions", "Reader studies", "Your reading", "API"]


def nav_links(client, path="/"):
    html = client.get(path).content.decode()
    nav = re.search(r"<nav>(.*?)</nav>", html, re.S).group(1)
    return re.findall(r">([^<]+)</a>", nav), dict(re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav))


def logged_in(user):
    client = Client()
    client.force_login(user)
    return client


def member(task, username, role):
    user = get_user_model().objects.create_user(username, password="pw-123456789")
    Membership.objects.create(task=task, user=user, role=role, status=MemberStatus.ACCEPTED)
    return user


@pytest.fixture
def people(staff_user):
    task = make_task(n_cases=1, name="Organised task")
    other = make_task(n_cases=1, name="Someone else's task")
    reader = make_reader("onlyreader")
    study_task, runs = make_study_task(n_cases=4, shape=(1, 16, 16), n_runs=1)
    make_study(study_task, runs, readers=[reader], items_per_model=2)
    return {
        "task": task,
        "other": other,
        "participant": member(task, "participant", MemberRole.PARTICIPANT),
        "organiser": member(task, "organiser", MemberRole.ORGANISER),
        "reader": reader,
        "staff": staff_user,
    }


def test_the_menu_per_role(people):
    assert nav_links(Client())[0] == ["Tasks", "Models", "API"]
    assert nav_links(logged_in(people["participant"]))[0] == FULL
    assert nav_links(logged_in(people["reader"]))[0] == ["Your reading", "Tasks"]  # no Models, API, Organise
    assert nav_links(logged_in(people["organiser"]))[0] == [*FULL, "Organise"]
    assert nav_links(logged_in(people["staff"]))[0] == [*FULL, "Organise", "Admin"]


@pytest.mark.parametrize("role", ["organiser", "staff"])
def test_organise_leads_to_a_new_task_the_settings_of_theirs_and_a_dataset_import(people, role):
    client = logged_in(people[role])
    _, hrefs = nav_links(client)
    organise = next(href for href, text in hrefs.items() if text == "Organise")
    page = client.get(organise)
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="task-form"' in html and 'href="/datasets/import/"' in html
    yours = re.search(r'<section class="card" id="organised-tasks">(.*?)</section>', html, re.S).group(1)
    assert f'href="/tasks/{people["task"].slug}/settings/"' in yours
    # Staff organise every task; an organiser only theirs.
    assert (f'href="/tasks/{people["other"].slug}/settings/"' in yours) == (role == "staff")
    assert client.get(f"/tasks/{people['task'].slug}/settings/").status_code == 200


def test_the_organisers_page_is_not_for_participants_or_readers(people):
    for role in ["participant", "reader"]:
        assert logged_in(people[role]).get("/tasks/new/").status_code in (403, 404)
