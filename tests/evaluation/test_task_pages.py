"""The organisers' task pages: create and edit a task without the Django admin; the catalogue's checks
(`Task.clean`) refuse what cannot be scored, with their message in the page and nothing stored."""

import re

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from evaluation.models import DownstreamSetup
from inference.models import MemberRole, Membership, MemberStatus, Task
from inference.services import participation
from tests.support.evaluation import downstream_task
from tests.support.factories import make_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def organiser(client):
    """A user who organises one task (not staff), logged in: they may set up their next benchmark."""
    user = get_user_model().objects.create_user("olga")
    existing = make_task(n_cases=2, slug="existing", is_public=False)
    participation.add_organiser(existing, user=user)
    client.force_login(user)
    return user, existing


def task_data(dataset, **overrides):
    data = {
        "name": "Brain T1 to T2",
        "slug": "brain-t2",
        "kind": "translation",
        "description": "Translate T1 to T2.",
        "dataset": dataset.pk,
        "data_range": "",
        "profile": "medgen",
        "region": "whole",
        "region_threshold": "",
        "metrics": ["psnr", "ssim", "fid"],
        "primary_metric": "ssim",
        "ranking": "primary",
        "join_policy": "auto",
        "leaderboard_entry": "best",
        "downstream_recipe": "unet-8-16-32-e60",
        "downstream_seeds": "0, 1, 2",
        "downstream_test_fraction": "0.5",
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def test_an_organiser_creates_a_task_through_the_page_and_becomes_its_organiser(client, organiser):
    user, existing = organiser
    page = client.get("/tasks/new/")
    assert page.status_code == 200
    html = page.content.decode()
    # The metrics are checkboxes from the catalogue, grouped by tier (the pixel tier by profile).
    assert 'type="checkbox" name="metrics" value="fastmri:ssim"' in html
    assert "Pixel tier · fastMRI" in html and "Feature tier" in html and 'value="fid"' in html
    assert "<p>" not in html.split('id="task-form"')[1].split("</form>")[0]  # the shared layout, not as_p

    response = client.post("/tasks/new/", task_data(existing.dataset, data_range="2.5"))
    assert response.status_code == 302 and response["Location"] == "/tasks/brain-t2/settings/"
    task = Task.objects.get(slug="brain-t2")
    assert (task.name, task.kind, task.dataset_id, task.data_range) == (
        "Brain T1 to T2",
        "translation",
        existing.dataset_id,
        2.5,
    )
    assert (task.metrics, task.primary_metric, task.profile, task.region) == (
        ["psnr", "ssim", "fid"],
        "ssim",
        "medgen",
        "whole",
    )
    assert not task.is_public and not hasattr(task, "downstream_setup")
    membership = Membership.objects.get(task=task, user=user)
    assert (membership.role, membership.status) == (MemberRole.ORGANISER, MemberStatus.ACCEPTED)
    # Their new task's settings open for them, with the way to a reader study on it.
    page = client.get("/tasks/brain-t2/settings/").content.decode()
    assert f"/studies/new/?task={task.pk}" in page
    assert 'id="task-settings-link" href="/tasks/brain-t2/settings/"' in client.get("/tasks/brain-t2/").content.decode()
    ticked = set(re.findall(r'name="metrics" value="([^"]+)"[^>]* checked', page))
    assert ticked == {"psnr", "ssim", "fid"}


def test_an_unknown_metric_is_refused_with_the_catalogue_message_and_nothing_stored(client, organiser):
    _, existing = organiser
    before = Task.objects.count()
    response = client.post("/tasks/new/", task_data(existing.dataset, metrics=["psnr", "not_a_metric"]))
    assert response.status_code == 400
    html = response.content.decode()
    assert "Unknown metric(s) not_a_metric. Known: psnr" in html
    assert Task.objects.count() == before and not Task.objects.filter(slug="brain-t2").exists()
    # A metric of another profile and a primary metric outside the ticked ones are refused the same way.
    response = client.post("/tasks/new/", task_data(existing.dataset, metrics=["fastmri:ssim"]))
    assert response.status_code == 400 and "not of the task&#x27;s profile MedGen Eval" in response.content.decode()
    response = client.post("/tasks/new/", task_data(existing.dataset, metrics=["psnr"], primary_metric="ssim"))
    assert response.status_code == 400 and "is not among the task&#x27;s metrics (psnr)" in response.content.decode()
    response = client.post("/tasks/new/", task_data(existing.dataset, slug="new"))
    assert response.status_code == 400 and "names a page (/tasks/new/)" in response.content.decode()
    assert Task.objects.count() == before


def test_an_organiser_edits_their_task_and_the_change_is_stored(client, organiser):
    _, existing = organiser
    data = task_data(
        existing.dataset, slug=existing.slug, name="Renamed", profile="fastmri",
        metrics=["fastmri:nmse", "fastmri:ssim"], primary_metric="fastmri:ssim", ranking="mean_rank",
    )  # fmt: skip
    response = client.post(f"/tasks/{existing.slug}/settings/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    existing.refresh_from_db()
    assert existing.name == "Renamed" and existing.profile == "fastmri" and existing.ranking == "mean_rank"
    assert existing.metrics == ["fastmri:nmse", "fastmri:ssim"] and existing.primary_metric == "fastmri:ssim"
    # A region fastMRI's convention cannot take: the message on the page, the stored task unchanged.
    response = client.post(f"/tasks/{existing.slug}/settings/", {**data, "name": "Again", "region": "case_mask"})
    assert response.status_code == 400 and "The fastMRI profile takes no region" in response.content.decode()
    existing.refresh_from_db()
    assert existing.name == "Renamed" and existing.region == "whole"


def test_a_downstream_evaluation_is_declared_from_the_form(client, django_user_model):
    staff = django_user_model.objects.create_user("boss", is_staff=True)
    client.force_login(staff)
    task = downstream_task(n_cases=8, size=32)
    data = task_data(
        task.dataset, slug=task.slug, name=task.name, metrics=[], primary_metric="", downstream="on",
        downstream_recipe="unet-8-16-32-e40-demo", downstream_seeds="3, 4", downstream_test_fraction="0.25",
    )  # fmt: skip
    response = client.post(f"/tasks/{task.slug}/settings/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    setup = DownstreamSetup.objects.get(task=task)
    assert setup.name == "unet-8-16-32-e40-demo" and setup.seeds == [3, 4] and setup.test_fraction == 0.25
    assert setup.config["epochs"] == 40 and len(setup.test_case_ids) >= 1
    assert set(setup.train_case_ids).isdisjoint(setup.test_case_ids)
    page = client.get(f"/tasks/{task.slug}/settings/").content.decode()
    assert re.search(r'name="downstream"[^>]* checked', page) and 'value="3, 4"' in page
    assert '<option value="unet-8-16-32-e40-demo" selected>' in page


def test_a_task_without_labels_cannot_have_a_downstream_evaluation_and_keeps_its_settings(client, organiser):
    _, existing = organiser
    data = task_data(existing.dataset, slug=existing.slug, name="Renamed", downstream="on")
    response = client.post(f"/tasks/{existing.slug}/settings/", data)
    assert response.status_code == 400 and "cannot have a downstream evaluation" in response.content.decode()
    existing.refresh_from_db()
    assert existing.name != "Renamed" and not DownstreamSetup.objects.filter(task=existing).exists()


def test_participants_and_visitors_cannot_reach_the_organiser_pages(client, django_user_model):
    task = make_task(n_cases=1, slug="open", is_public=True)
    participant = django_user_model.objects.create_user("pat")
    participation.join_task(task, user=participant)
    anonymous = {
        url: client.get(url).status_code for url in ("/tasks/new/", "/tasks/open/settings/", "/datasets/import/")
    }
    assert anonymous == {"/tasks/new/": 302, "/tasks/open/settings/": 302, "/datasets/import/": 302}
    client.force_login(participant)
    seen = {url: client.get(url).status_code for url in ("/tasks/new/", "/tasks/open/settings/", "/datasets/import/")}
    assert seen == {"/tasks/new/": 403, "/tasks/open/settings/": 403, "/datasets/import/": 403}
    response = client.post("/tasks/open/settings/", task_data(task.dataset, slug="open", name="Taken over"))
    assert response.status_code == 403
    task.refresh_from_db()
    assert task.name != "Taken over"
    assert "task-settings-link" not in client.get("/tasks/open/").content.decode()


def test_the_api_answers_the_same_rule_and_makes_the_creator_the_organiser(organiser):
    user, existing = organiser
    api = APIClient()
    api.force_authenticate(user)
    body = {"slug": "via-api", "name": "Via API", "kind": "synthesis", "dataset": existing.dataset_id}
    response = api.post("/api/tasks/", body, format="json")
    assert response.status_code == 201, response.content
    assert Membership.objects.get(task__slug="via-api", user=user).role == MemberRole.ORGANISER
    stranger = get_user_model().objects.create_user("stranger")
    api.force_authenticate(stranger)
    assert api.post("/api/tasks/", {**body, "slug": "other"}, format="json").status_code == 403
    assert not Task.objects.filter(slug="other").exists()
