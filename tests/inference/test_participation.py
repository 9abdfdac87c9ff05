"""Participants: accounts and tokens, joining, phases and their limits, hidden test sets, the leaderboard's
entries, and organisers' decisions — through the API and the pages."""

import io
import zipfile
from datetime import timedelta

import numpy as np
import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from core.models import JobStatus
from evaluation import leaderboard
from evaluation.models import MetricResult
from inference.models import CaseImage, ImageRole, Membership, MemberStatus, Phase, Run, RunKind
from inference.services import participation
from tests.support.factories import add_image, make_task
from tests.support.files import outputs_zip
from tests.support.jobs import run_job

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-enough-passphrase"


def participant_api(username="alice"):
    api = APIClient()
    assert (
        api.post("/api/auth/register/", {"username": username, "password": PASSWORD}, format="json").status_code == 201
    )
    token = api.post("/api/auth/token/", {"username": username, "password": PASSWORD}, format="json").json()["token"]
    api.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return api


def benchmark(limit_per_period=3, hidden=True, **task_fields):
    task = make_task(n_cases=3, shape=(1, 8, 8), hidden_references=hidden, **task_fields)
    Phase.objects.create(
        task=task, name="test", starts_at=timezone.now() - timedelta(days=1), limit_per_period=limit_per_period
    )
    return task


def submit(api, task, value=0.5, name="mine"):
    return api.post("/api/submissions/", {"task": task.slug, "name": name, "file": outputs_zip(task, value)})


# --- accounts -------------------------------------------------------------------------------------


def test_registration_refuses_weak_passwords_taken_names_and_can_be_turned_off(api_client, settings):
    response = api_client.post("/api/auth/register/", {"username": "bob", "password": "123"}, format="json")
    assert response.status_code == 400 and any("too short" in error for error in response.json()["errors"])
    assert api_client.post("/api/auth/register/", {"username": "bob", "password": PASSWORD}).status_code == 201
    response = api_client.post("/api/auth/register/", {"username": "BOB", "password": PASSWORD})
    assert response.status_code == 409 and "taken" in response.json()["detail"]
    settings.MEDGEN_SELF_REGISTRATION = False
    response = api_client.post("/api/auth/register/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 403 and "turned off" in response.json()["detail"]


def test_a_wrong_password_gets_no_token_and_repeated_ones_lock_the_token_endpoint(api_client, settings):
    settings.AXES_FAILURE_LIMIT = 3
    participant_api("dora")
    for _ in range(2):
        response = api_client.post("/api/auth/token/", {"username": "dora", "password": "wrong"}, format="json")
        assert response.status_code == 401 and "wrong password" in response.json()["detail"]
    assert api_client.post("/api/auth/token/", {"username": "dora", "password": "wrong"}).status_code == 429
    assert api_client.post("/api/auth/token/", {"username": "dora", "password": PASSWORD}).status_code == 429


def test_the_token_page_shows_and_renews_the_token(django_user_model):
    user = django_user_model.objects.create_user("erin", password=PASSWORD)
    client = Client()
    client.force_login(user)
    first = client.get("/accounts/token/")
    old = first.context["token"].key
    assert old in first.content.decode()
    client.post("/accounts/token/renew/")
    new = client.get("/accounts/token/").context["token"].key
    assert new != old
    api = APIClient(HTTP_AUTHORIZATION=f"Token {old}")
    assert api.get("/api/tasks/").status_code == 401


def test_the_signup_page_creates_an_account_and_logs_in():
    client = Client()
    response = client.post("/accounts/signup/", {"username": "fred", "password": PASSWORD, "email": "f@example.org"})
    assert response.status_code == 302
    assert client.get("/").context["user"].username == "fred"


# --- joining and submitting -----------------------------------------------------------------------


def test_joining_is_accepted_at_once_or_waits_for_an_organiser(django_user_model):
    open_task = benchmark()
    approved = benchmark(join_policy="approval")
    api = participant_api()
    assert api.post(f"/api/tasks/{open_task.slug}/join/").json()["status"] == "accepted"
    assert api.post(f"/api/tasks/{approved.slug}/join/").json()["status"] == "pending"
    assert submit(api, approved).status_code == 403
    organiser = django_user_model.objects.create_user("olga", password=PASSWORD)
    participation.add_organiser(approved, user=organiser)
    pending = Membership.objects.get(task=approved, status=MemberStatus.PENDING)
    organiser_api = APIClient()
    organiser_api.force_authenticate(organiser)
    response = organiser_api.post(f"/api/tasks/{approved.slug}/members/{pending.pk}/decide/", {"accept": True})
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert submit(api, approved).status_code == 201
    again = api.post(f"/api/tasks/{approved.slug}/join/")  # asking again answers the same membership
    assert again.status_code == 200 and again.json()["status"] == "accepted"
    assert Membership.objects.filter(task=approved, user__username="alice").count() == 1


def test_an_organiser_cannot_attach_a_dataset_they_cannot_see(django_user_model):
    task = benchmark()
    private = make_task(n_cases=1, is_public=False).dataset
    organiser = django_user_model.objects.create_user("olga", password=PASSWORD)
    participation.add_organiser(task, user=organiser)
    api = APIClient()
    api.force_authenticate(organiser)
    response = api.patch(f"/api/tasks/{task.slug}/", {"reference_dataset": private.pk}, format="json")
    assert response.status_code == 400 and "does not exist" in response.json()["errors"]["reference_dataset"][0]
    task.refresh_from_db()
    assert task.reference_dataset_id is None
    assert api.get(f"/api/datasets/{private.pk}/").status_code == 404


def test_a_participant_gets_the_inputs_as_a_zip_named_by_case(django_user_model):
    task = benchmark()
    api = participant_api()
    api.post(f"/api/tasks/{task.slug}/join/")
    response = api.get(f"/api/tasks/{task.slug}/inputs/")
    assert response.status_code == 200
    with zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))) as archive:
        assert sorted(archive.namelist()) == sorted(f"{case.case_id}.npy" for case in task.dataset.cases.all())
        case = task.dataset.cases.order_by("case_id").first()
        stored = np.load(io.BytesIO(archive.read(f"{case.case_id}.npy")))
        np.testing.assert_array_equal(stored, case.images.get(role="input").load())


def test_the_fourth_submission_of_the_day_gets_429_saying_when_and_failures_do_not_count():
    task = benchmark(limit_per_period=3)
    api = participant_api()
    api.post(f"/api/tasks/{task.slug}/join/")
    bad = api.post("/api/submissions/", {"task": task.slug, "name": "broken", "file": io.BytesIO(b"not a zip")})
    assert bad.status_code == 400
    failing = submit(api, task)  # a zip that validates to a failure (wrong shape) does not count
    Run.objects.filter(pk=failing.json()["id"]).update(status=JobStatus.FAILED)
    for number in range(3):
        assert submit(api, task, name=f"try {number}").status_code == 201
    response = submit(api, task, name="one too many")
    assert response.status_code == 429
    assert "used 3 of 3 submissions in the last 24 h" in response.json()["detail"]
    assert "the next is allowed at" in response.json()["detail"] and int(response["Retry-After"]) > 80_000
    assert Run.objects.filter(task=task).count() == 4


def test_no_submission_outside_an_open_phase(django_user_model):
    task = benchmark()
    api = participant_api()
    api.post(f"/api/tasks/{task.slug}/join/")
    Phase.objects.filter(task=task).update(ends_at=timezone.now() - timedelta(minutes=1))
    response = submit(api, task)
    assert response.status_code == 403 and "no phase open" in response.json()["detail"]


# --- hidden test sets -----------------------------------------------------------------------------


def test_a_hidden_test_sets_references_reach_no_participant_by_any_route(django_user_model):
    task = benchmark()
    api = participant_api()
    api.post(f"/api/tasks/{task.slug}/join/")
    run = Run.objects.get(pk=submit(api, task).json()["id"])
    run_job(run)
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED, run.problems
    case = task.dataset.cases.order_by("case_id").first()
    reference = case.images.get(role=ImageRole.REFERENCE)
    browser = Client()  # the viewer's endpoints are the pages' (session login)
    browser.force_login(run.requested_by)
    anonymous = Client()
    for client in (browser, anonymous):
        assert client.get(f"/api/arrays/case-images/{reference.pk}/").status_code == 404
        assert client.get(f"/api/arrays/case-images/{reference.pk}/data/").status_code == 404
        assert client.get(f"/cases/{case.pk}/reference/0.png").status_code == 404
        listed = client.get(f"/api/cases/?dataset={task.dataset_id}").json()["results"]
        assert {image["role"] for row in listed for image in row["images"]} == {"input"}
    output = run.outputs.get(case=case)
    assert browser.get(f"/api/arrays/outputs/{output.pk}/").status_code == 200  # their own output
    assert browser.get(f"/api/arrays/outputs/{output.pk}/difference/").status_code == 404  # output − reference
    assert anonymous.get(f"/api/arrays/outputs/{output.pk}/").status_code == 404
    page = browser.get(f"/runs/{run.pk}/cases/{case.pk}/").content.decode()
    assert f"/api/arrays/case-images/{reference.pk}/" not in page


def test_a_copy_of_hidden_references_in_another_dataset_is_hidden_too(django_user_model):
    task = benchmark()
    copy_task = make_task(n_cases=0)
    for number, case in enumerate(task.dataset.cases.all()):
        other = copy_task.dataset.cases.create(case_id=f"copy{number}")
        add_image(other, ImageRole.INPUT, np.zeros((1, 8, 8)))
        add_image(other, ImageRole.REFERENCE, case.images.get(role=ImageRole.REFERENCE).load())
    copies = CaseImage.objects.filter(case__dataset=copy_task.dataset, role=ImageRole.REFERENCE)
    client = Client()
    for image in copies:
        assert client.get(f"/api/arrays/case-images/{image.pk}/").status_code == 404
    organiser = django_user_model.objects.create_user("org", password=PASSWORD)
    participation.add_organiser(task, user=organiser)
    client.force_login(organiser)
    assert all(client.get(f"/api/arrays/case-images/{image.pk}/").status_code == 200 for image in copies)


def test_others_runs_of_a_hidden_task_are_on_the_board_but_not_open(django_user_model):
    task = benchmark()
    alice, bob = participant_api("alice"), participant_api("bob")
    for api in (alice, bob):
        api.post(f"/api/tasks/{task.slug}/join/")
    alices = submit(alice, task).json()["id"]
    assert bob.get(f"/api/runs/{alices}/").status_code == 404
    assert bob.get(f"/api/runs/{alices}/outputs/").status_code == 404
    own = alice.get(f"/api/runs/{alices}/")
    assert own.status_code == 200 and own.json()["id"] == alices


# --- the leaderboard ------------------------------------------------------------------------------


def scored_run(task, user, ssim, phase=None, hidden=False):
    run = Run.objects.create(
        task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED, requested_by=user, task_phase=phase,
        name=f"{user}-{ssim}", hidden_at=timezone.now() if hidden else None,
    )  # fmt: skip
    MetricResult.objects.create(run=run, metric="ssim", tier="pixel", value=ssim, version="1")
    return run


def test_the_board_shows_each_participants_best_or_latest_run_and_no_hidden_one(django_user_model):
    task = benchmark(primary_metric="ssim", metrics=["ssim"])
    alice = django_user_model.objects.create_user("alice")
    participation.join_task(task, user=alice)
    early = scored_run(task, alice, 0.9)
    late = scored_run(task, alice, 0.7)
    hidden = scored_run(task, alice, 0.99, hidden=True)
    assert [row.run_id for row in leaderboard.build(task).rows] == [early.pk]
    task.leaderboard_entry = "latest"
    task.save()
    assert [row.run_id for row in leaderboard.build(task).rows] == [late.pk]
    assert hidden.pk not in [row.run_id for row in leaderboard.build(task).rows]


def test_a_private_phase_board_shows_its_runs_to_organisers_until_it_ends(django_user_model):
    task = benchmark(primary_metric="ssim", metrics=["ssim"])
    phase = task.phases.get()
    phase.private_leaderboard = True
    phase.ends_at = timezone.now() + timedelta(days=1)
    phase.save()
    alice = django_user_model.objects.create_user("alice")
    participation.join_task(task, user=alice)
    run = scored_run(task, alice, 0.8, phase=phase)
    assert leaderboard.build(task).rows == []
    assert [row.run_id for row in leaderboard.build(task, private=True).rows] == [run.pk]
    Phase.objects.filter(pk=phase.pk).update(ends_at=timezone.now() - timedelta(seconds=1))
    assert [row.run_id for row in leaderboard.build(task).rows] == [run.pk]


def test_an_organiser_hides_a_run_with_a_reason_and_it_is_kept(django_user_model):
    task = benchmark()
    alice = django_user_model.objects.create_user("alice")
    participation.join_task(task, user=alice)
    run = scored_run(task, alice, 0.8)
    organiser = django_user_model.objects.create_user("org")
    participation.add_organiser(task, user=organiser)
    api = APIClient()
    api.force_authenticate(alice)
    assert api.post(f"/api/runs/{run.pk}/hide/", {"reason": "copied references"}).status_code == 403
    api.force_authenticate(organiser)
    assert api.post(f"/api/runs/{run.pk}/hide/", {"reason": ""}).status_code == 400
    response = api.post(f"/api/runs/{run.pk}/hide/", {"reason": "copied references"})
    assert response.status_code == 200
    run.refresh_from_db()
    assert run.hidden_reason == "copied references" and run.hidden_by == organiser
    assert leaderboard.build(task).rows == [] and Run.objects.filter(pk=run.pk).exists()
    assert api.post(f"/api/runs/{run.pk}/unhide/").status_code == 200
    assert [row.run_id for row in leaderboard.build(task).rows] == [run.pk]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_participants_whole_flow_through_a_real_worker(celery_worker):
    """Register, get a token, join, download the inputs, submit four times in a day (the fourth is refused),
    see their own per-case results and the leaderboard — and never a reference image."""
    task = benchmark(limit_per_period=3, primary_metric="psnr", metrics=["psnr", "mae"], data_range=1.0)
    api = participant_api("pat")
    assert api.post(f"/api/tasks/{task.slug}/join/").json()["status"] == "accepted"
    inputs = api.get(f"/api/tasks/{task.slug}/inputs/")
    assert inputs.status_code == 200
    ids = [submit(api, task, value=value, name=f"try {value}").json()["id"] for value in (0.3, 0.5, 0.7)]
    assert submit(api, task, name="fourth").status_code == 429
    for run_id in ids:
        run = wait_until_final(run_id)
        assert run.status == JobStatus.SUCCEEDED, (run.error, run.problems)
    for run_id in ids:
        evaluation = wait_until_evaluated(api, run_id)
        assert evaluation["status"] == "succeeded"
    cases = api.get(f"/api/runs/{ids[0]}/case-results/").json()["results"]
    assert len(cases) == 3 and all("psnr" in row["values"] for row in cases)
    board = api.get(f"/api/tasks/{task.slug}/leaderboard/").json()
    assert len(board["rows"]) == 1  # the participant's best of three
    best = max(ids, key=lambda run_id: MetricResult.objects.get(run_id=run_id, metric="psnr").value)
    assert board["rows"][0]["run"]["id"] == best
    served = api.get(f"/api/cases/?dataset={task.dataset_id}").json()["results"]
    assert {image["role"] for row in served for image in row["images"]} == {"input"}


def wait_until_final(run_id, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = Run.objects.get(pk=run_id)
        if run.is_final:
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def wait_until_evaluated(api, run_id, timeout=180):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = api.get(f"/api/runs/{run_id}/evaluation/")
        if response.status_code == 200 and response.json()["is_final"]:
            return response.json()
        time.sleep(0.3)
    raise AssertionError(f"run {run_id} was not evaluated")
