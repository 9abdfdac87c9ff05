"""403/404/500 answers: a page in the site's layout with a way back (the tasks; a reader's reading),
JSON under /api/; a 500 shows no traceback. A reader who logs in lands on their reading, and their menu
leaves out models and the API."""

import re

import pytest
from django.test import Client, override_settings

from inference.models import MemberRole, Membership, MemberStatus
from tests.support.factories import make_task
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db


def in_layout(response):
    html = response.content.decode()
    assert '<header class="top">' in html and "css/site.css" in html, html[:300]
    return html


def ways_back(html):
    ways = re.search(r'<p class="error-ways" id="error-ways">(.*?)</p>', html, re.S).group(1)
    return re.findall(r'href="([^"]+)"', ways)


@pytest.fixture
def reader():
    """A reader of a running study, and nothing else."""
    user = make_reader("onlyreader")
    task, runs = make_study_task(n_cases=4, shape=(1, 16, 16), n_runs=1)
    make_study(task, runs, readers=[user], items_per_model=2)
    return user


def test_a_hidden_task_is_a_styled_404_with_ways_back_for_a_reader(reader):
    hidden = make_task(n_cases=1, is_public=False)
    client = Client()
    client.force_login(reader)
    response = client.get(f"/tasks/{hidden.slug}/")
    assert response.status_code == 404
    html = in_layout(response)
    assert "<h1>Not found</h1>" in html
    assert '<p class="lead">There is no page here, or it is not visible to you.</p>' in html
    assert ways_back(html) == ["/reading/", "/"]


def test_an_unknown_page_is_a_styled_404_and_an_unknown_api_path_is_json():
    response = Client().get("/no/such/page/")
    assert response.status_code == 404
    html = in_layout(response)
    assert ways_back(html) == ["/", "/accounts/login/?next=/no/such/page/"]
    api = Client().get("/api/no-such-endpoint/")
    assert api.status_code == 404 and api.json() == {"detail": "There is no page here, or it is not visible to you."}


@override_settings(ROOT_URLCONF="tests.site.error_urls")
def test_403_and_500_are_styled_and_the_500_leaks_nothing(staff_user):
    client = Client(raise_request_exception=False)
    client.force_login(staff_user)
    forbidden = client.get("/test-forbidden/")
    assert forbidden.status_code == 403
    assert "<h1>Not allowed</h1>" in in_layout(forbidden)
    crash = client.get("/test-crash/")
    assert crash.status_code == 500
    html = in_layout(crash)
    assert "<h1>Something went wrong</h1>" in html and ways_back(html) == ["/"]
    assert "Traceback" not in html and "secret-internal-detail" not in html and "RuntimeError" not in html


def test_a_reader_logs_in_to_their_reading_with_a_reader_menu(reader):
    client = Client()
    home = client.get("/").content.decode()
    login_href = re.search(r'<a href="([^"]+)" id="nav-login">', home).group(1)
    assert login_href == "/accounts/login/"  # no ?next=/ that would send a reader back to the task list
    page = client.get(login_href).content.decode()
    next_value = re.search(r'name="next" value="([^"]*)"', page).group(1)
    response = client.post(
        login_href, {"username": "onlyreader", "password": "reader-pass-123", "next": next_value}, follow=True
    )
    assert response.redirect_chain[-1][0] == "/reading/"
    nav = re.search(r"<nav>(.*?)</nav>", response.content.decode(), re.S).group(1)
    assert re.findall(r">([^<]+)</a>", nav) == ["Your reading", "Tasks"]


def test_a_reader_who_also_takes_part_in_a_task_keeps_the_full_menu(reader):
    task = make_task(n_cases=1)
    Membership.objects.create(task=task, user=reader, role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED)
    client = Client()
    client.force_login(reader)
    nav = re.search(r"<nav>(.*?)</nav>", client.get("/").content.decode(), re.S).group(1)
    assert {"Models", "API", "Your reading"} <= set(re.findall(r">([^<]+)</a>", nav))


@override_settings(ROOT_URLCONF="tests.site.error_urls")
def test_a_500_whose_page_cannot_render_is_a_plain_page(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the database is gone")

    monkeypatch.setattr("core.error_pages.render", broken)
    response = Client(raise_request_exception=False).get("/test-crash/")
    assert response.status_code == 500
    html = response.content.decode()
    assert "<h1>Something went wrong</h1>" in html and 'href="/"' in html
    assert "database is gone" not in html and "secret-internal-detail" not in html
