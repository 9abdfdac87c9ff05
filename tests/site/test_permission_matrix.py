"""Every route × every role × its methods, with the expected outcome declared in one table.

The routes come from the URL resolver (the DRF router's included); a route with no entry in ROUTES
fails `test_every_route_has_an_entry`, so a new page or endpoint cannot ship without saying who may
reach it. Outcomes are categories: "ok" (served, or refused for its input: 2xx, 3xx, 400, 405, 409),
"login" (401, or a redirect to a login page), "forbidden" (403), "hidden" (404: the thing does not
exist for this user). The world: a public benchmark with a hidden test set (an organiser, a
participant with a run, a baseline), a running reader study on a task of its own (an editor, a
reader), and staff.
"""

import json
from datetime import timedelta

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from core.models import JobStatus
from evaluation.models import CaseResult, CaseStatus, DownstreamJob, DownstreamSetup, Evaluation, ProbeCase, ProbeSet
from inference.models import (
    Case,
    Dataset,
    DatasetImport,
    GenerativeModel,
    ImageRole,
    MemberRole,
    Membership,
    Phase,
    Run,
    RunKind,
)
from inference.services import participation
from inference.services.runs import store_output
from inference.storage import save_array
from readerstudy.models import Assignment, Invitation
from tests.support.factories import add_image, make_task
from tests.support.files import outputs_zip
from tests.support.study_data import make_reader, make_study, make_study_task

pytestmark = pytest.mark.django_db

ROLES = ("anonymous", "participant", "reader", "editor", "organiser", "staff")


def expect(default="ok", **roles):
    return {role: roles.get(role, default) for role in ROLES}


PUBLIC = expect()
LOGGED_IN = expect(anonymous="login")
OWN_RUN = expect("hidden", participant="ok", organiser="ok", staff="ok")  # a participant's run, hidden test set
SECRET = expect("hidden", organiser="ok", staff="ok")  # a hidden test set's reference (or what shows it)
STUDY_EDITORS = expect("hidden", anonymous="login", editor="ok", staff="ok")
STUDY_READER = expect("hidden", anonymous="login", reader="ok")
API_STAFF_WRITE = expect("forbidden", anonymous="login", staff="ok")
API_ORGANISER_WRITE = expect("forbidden", anonymous="login", organiser="ok", staff="ok")
PAGE_STAFF_WRITE_OWN_RUN = expect("hidden", participant="forbidden", organiser="forbidden", staff="ok")

# (route name, url kwargs from the world, method, body, expectations); a route may have several entries.
ROUTES = [
    # accounts
    ("signup", {}, "get", None, PUBLIC),
    ("signup", {}, "post", {}, PUBLIC),
    ("account-token", {}, "get", None, LOGGED_IN),
    ("account-token-renew", {}, "post", {}, LOGGED_IN),
    ("api-register", {}, "post", {}, PUBLIC),
    ("api-token", {}, "post", {}, PUBLIC),
    ("login", {}, "get", None, PUBLIC),
    ("logout", {}, "post", {}, PUBLIC),
    ("password_change", {}, "get", None, LOGGED_IN),
    ("password_change_done", {}, "get", None, LOGGED_IN),
    ("password_reset", {}, "get", None, PUBLIC),
    ("password_reset_done", {}, "get", None, PUBLIC),
    ("password_reset_confirm", {"uidb64": "x", "token": "y"}, "get", None, PUBLIC),
    ("password_reset_complete", {}, "get", None, PUBLIC),
    # reader studies: editors' pages
    ("study-list", {}, "get", None, LOGGED_IN),
    ("study-create", {}, "get", None, expect("hidden", anonymous="login", editor="ok", organiser="ok", staff="ok")),
    ("study-detail", {"pk": "study"}, "get", None, STUDY_EDITORS),
    ("study-edit", {"pk": "study"}, "get", None, STUDY_EDITORS),
    ("study-analysis", {"pk": "study"}, "get", None, expect("hidden", editor="ok", staff="ok")),
    ("study-export", {"pk": "study"}, "get", None, STUDY_EDITORS),
    ("study-action", {"pk": "study", "action": "invite"}, "post", {}, STUDY_EDITORS),
    ("study-invitation-create", {"pk": "study"}, "post", {}, STUDY_EDITORS),
    ("study-invitation-revoke", {"pk": "study", "invitation_pk": "invitation"}, "post", {}, STUDY_EDITORS),
    ("api-study-analysis", {"pk": "study"}, "get", None, expect("hidden", editor="ok", staff="ok")),
    # reader studies: the reader's workspace and endpoints
    ("my-reading", {}, "get", None, LOGGED_IN),
    ("reading-landing", {}, "get", None, LOGGED_IN),
    # the link is the key: anyone holding an open one sees the page; joining refuses staff and editors with a
    # message (400), an account form without its fields is a 400 too; an unknown link is a 404 for everyone
    ("study-invitation", {"token": "invitation_token"}, "get", None, PUBLIC),
    ("study-invitation", {"token": "invitation_token"}, "post", {}, PUBLIC),
    ("study-invitation", {"token": "not-a-token"}, "get", None, expect("hidden")),
    ("read-workspace", {"uid": "study_uid"}, "get", None, STUDY_READER),
    ("read-state", {"uid": "study_uid"}, "get", None, STUDY_READER),
    ("read-answer", {"uid": "study_uid"}, "post", "answer", STUDY_READER),
    ("read-draft", {"uid": "study_uid"}, "post", "draft", STUDY_READER),
    ("read-image", {"token": "item_token", "slot": 0}, "get", None, STUDY_READER),
    ("read-image-data", {"token": "item_token", "slot": 0}, "get", None, STUDY_READER),
    # evaluation: pages, viewer, API
    ("run-case", {"run_pk": "own_run", "case_pk": "case"}, "get", None, OWN_RUN),
    ("array-uncertainty", {"pk": "own_result"}, "get", None, OWN_RUN),
    ("array-uncertainty-data", {"pk": "own_result"}, "get", None, OWN_RUN),
    ("task-leaderboard", {"slug": "task_slug"}, "get", None, PUBLIC),
    ("api-task-leaderboard", {"slug": "task_slug"}, "get", None, PUBLIC),
    ("api-task-case-results", {"slug": "task_slug"}, "get", None, PUBLIC),
    ("run-evaluate", {"pk": "own_run"}, "post", {}, PAGE_STAFF_WRITE_OWN_RUN),
    ("case-result-uncertainty-png", {"pk": "own_run", "result_pk": "own_result"}, "get", None, OWN_RUN),
    ("api-run-evaluation", {"pk": "own_run"}, "get", None, OWN_RUN),
    ("api-run-evaluation", {"pk": "own_run"}, "post", {}, API_STAFF_WRITE),
    ("api-run-case-results", {"pk": "own_run"}, "get", None, OWN_RUN),
    ("run-downstream", {"pk": "own_run"}, "post", {}, PAGE_STAFF_WRITE_OWN_RUN),
    ("run-downstream-cancel", {"pk": "own_run"}, "post", {}, PAGE_STAFF_WRITE_OWN_RUN),
    ("run-downstream-curves", {"pk": "own_run"}, "get", None, OWN_RUN),
    ("task-downstream-curves", {"slug": "task_slug"}, "get", None, PUBLIC),
    ("api-run-downstream", {"pk": "own_run"}, "get", None, OWN_RUN),
    ("api-run-downstream", {"pk": "own_run"}, "post", {}, API_STAFF_WRITE),
    ("api-run-downstream-cancel", {"pk": "own_run"}, "post", {}, API_STAFF_WRITE),
    ("api-task-downstream", {"slug": "task_slug"}, "get", None, PUBLIC),
    # hallucination probes: numbers for whoever sees the leaderboard (the probe page is the reader-study app's)
    ("api-task-probe-scores", {"slug": "task_slug"}, "get", None, PUBLIC),
    ("task-probes", {"slug": "task_slug"}, "get", None, PUBLIC),
    # the probe viewer: a probe set is private to its task's organisers (Dataset.private_to)
    ("probe-case", {"run_pk": "probe_run", "case_pk": "probe_case"}, "get", None, SECRET),
    ("array-probe-truth", {"pk": "probe"}, "get", None, SECRET),
    ("array-probe-truth-data", {"pk": "probe"}, "get", None, SECRET),
    ("array-samples-sd", {"pk": "probe_output"}, "get", None, SECRET),
    ("array-samples-sd-data", {"pk": "probe_output"}, "get", None, SECRET),
    ("dataset-detail", {"pk": "probe_dataset"}, "get", None, SECRET),
    ("case-detail", {"pk": "probe_case"}, "get", None, SECRET),
    ("array-case-image", {"pk": "probe_input"}, "get", None, SECRET),
    ("api-dataset-detail", {"pk": "probe_dataset"}, "get", None, SECRET),
    # inference: pages
    ("home", {}, "get", None, PUBLIC),
    ("task-detail", {"slug": "task_slug"}, "get", None, PUBLIC),
    (
        "task-submit",
        {"slug": "task_slug"},
        "post",
        {},
        expect("forbidden", anonymous="login", participant="ok", organiser="ok", staff="ok"),
    ),  # fmt: skip
    (
        "task-join",
        {"slug": "task_slug"},
        "post",
        {},
        expect(anonymous="login", organiser="forbidden"),
    ),  # fmt: skip
    (
        "task-member-decide",
        {"slug": "task_slug", "member_id": "pending"},
        "post",
        {},
        expect("forbidden", anonymous="login", organiser="ok", staff="ok"),
    ),  # fmt: skip
    ("my-submissions", {}, "get", None, LOGGED_IN),
    ("run-hide", {"pk": "own_run"}, "post", {}, expect("hidden", participant="forbidden", organiser="ok", staff="ok")),
    ("dataset-detail", {"pk": "dataset"}, "get", None, PUBLIC),
    ("case-detail", {"pk": "case"}, "get", None, PUBLIC),
    ("case-image-png", {"pk": "case", "role": "input", "index": 0}, "get", None, PUBLIC),
    ("case-image-png", {"pk": "case", "role": "reference", "index": 0}, "get", None, SECRET),
    # organisers' pages: staff, and organisers (of the task to edit it; of any task to create one or import a dataset)
    ("task-create", {}, "get", None, API_ORGANISER_WRITE),
    ("task-create", {}, "post", {}, API_ORGANISER_WRITE),
    ("task-edit", {"slug": "task_slug"}, "get", None, API_ORGANISER_WRITE),
    ("task-edit", {"slug": "task_slug"}, "post", {}, API_ORGANISER_WRITE),
    ("dataset-import", {}, "get", None, API_ORGANISER_WRITE),
    ("dataset-import", {}, "post", {}, API_ORGANISER_WRITE),
    ("dataset-import-detail", {"uid": "dataset_import"}, "get", None, expect("hidden", organiser="ok", staff="ok")),
    ("dataset-import-status", {"uid": "dataset_import"}, "get", None, expect("hidden", organiser="ok", staff="ok")),
    ("model-list", {}, "get", None, PUBLIC),
    ("model-upload", {}, "get", None, expect("forbidden", anonymous="login", organiser="ok", staff="ok")),
    ("model-detail", {"pk": "baseline_model"}, "get", None, PUBLIC),
    (
        "model-start-run",
        {"pk": "baseline_model"},
        "post",
        {},
        expect("forbidden", anonymous="login", organiser="ok", staff="ok"),
    ),  # fmt: skip
    # A valid model is refused (409, counted "ok" here): only its organisers and uploader get that far.
    (
        "model-delete",
        {"pk": "baseline_model"},
        "post",
        {},
        expect("forbidden", anonymous="login", organiser="ok", staff="ok"),
    ),  # fmt: skip
    ("run-detail", {"pk": "own_run"}, "get", None, OWN_RUN),
    ("run-detail", {"pk": "baseline_run"}, "get", None, SECRET),
    ("run-cancel", {"pk": "own_run"}, "post", {}, OWN_RUN),
    ("output-png", {"pk": "own_run", "output_pk": "own_output"}, "get", None, OWN_RUN),
    ("case-compare", {"case_pk": "case"}, "get", None, PUBLIC),
    ("array-case-image", {"pk": "input_image"}, "get", None, PUBLIC),
    ("array-case-image", {"pk": "reference_image"}, "get", None, SECRET),
    ("array-case-image-data", {"pk": "input_image"}, "get", None, PUBLIC),
    ("array-case-image-data", {"pk": "reference_image"}, "get", None, SECRET),
    ("array-output", {"pk": "own_output"}, "get", None, OWN_RUN),
    ("array-output-data", {"pk": "own_output"}, "get", None, OWN_RUN),
    ("array-difference", {"pk": "own_output"}, "get", None, SECRET),
    ("array-difference-data", {"pk": "own_output"}, "get", None, SECRET),
    # inference: API
    ("api-schema", {}, "get", None, PUBLIC),
    ("api-docs", {}, "get", None, PUBLIC),
    ("api-redoc", {}, "get", None, PUBLIC),
    ("api-root", {}, "get", None, PUBLIC),
    ("api-task-list", {}, "get", None, PUBLIC),
    ("api-task-list", {}, "post", {}, API_ORGANISER_WRITE),  # staff, and organisers of a task (their next one)
    ("api-task-detail", {"slug": "task_slug"}, "get", None, PUBLIC),
    ("api-task-detail", {"slug": "task_slug"}, "patch", {}, API_ORGANISER_WRITE),
    ("api-task-detail", {"slug": "task_slug"}, "delete", None, API_ORGANISER_WRITE),
    (
        "api-task-decide-member",
        {"slug": "task_slug", "member_id": "pending"},
        "post",
        {"accept": True},
        API_ORGANISER_WRITE,
    ),  # fmt: skip
    ("api-task-inputs", {"slug": "task_slug"}, "get", None, PUBLIC),
    (
        "api-task-join",
        {"slug": "task_slug"},
        "post",
        {},
        expect(anonymous="login", organiser="forbidden"),
    ),  # fmt: skip
    ("api-task-members", {"slug": "task_slug"}, "get", None, API_ORGANISER_WRITE),
    ("api-dataset-list", {}, "get", None, PUBLIC),
    ("api-dataset-list", {}, "post", {}, API_ORGANISER_WRITE),
    ("api-dataset-detail", {"pk": "dataset"}, "get", None, PUBLIC),
    ("api-case-list", {}, "get", None, PUBLIC),
    ("api-case-detail", {"pk": "case"}, "get", None, PUBLIC),
    ("api-model-list", {}, "get", None, PUBLIC),
    ("api-model-list", {}, "post", {}, API_ORGANISER_WRITE),
    ("api-model-detail", {"pk": "baseline_model"}, "get", None, PUBLIC),
    ("api-model-validation", {"pk": "baseline_model"}, "get", None, PUBLIC),
    ("api-model-sweep", {"pk": "baseline_model"}, "post", {}, API_ORGANISER_WRITE),
    ("api-model-sweep-cancel", {"pk": "baseline_model"}, "post", {}, API_ORGANISER_WRITE),
    ("api-run-list", {}, "get", None, PUBLIC),
    ("api-run-list", {}, "post", {}, API_ORGANISER_WRITE),
    ("api-run-detail", {"pk": "own_run"}, "get", None, OWN_RUN),
    ("api-run-detail", {"pk": "baseline_run"}, "get", None, SECRET),
    (
        "api-run-cancel",
        {"pk": "own_run"},
        "post",
        {},
        expect("hidden", anonymous="login", participant="ok", organiser="ok", staff="ok"),
    ),  # fmt: skip
    (
        "api-run-hide",
        {"pk": "own_run"},
        "post",
        {},
        expect("hidden", anonymous="login", participant="forbidden", organiser="ok", staff="ok"),
    ),  # fmt: skip
    (
        "api-run-unhide",
        {"pk": "own_run"},
        "post",
        {},
        expect("hidden", anonymous="login", participant="forbidden", organiser="ok", staff="ok"),
    ),  # fmt: skip
    ("api-run-output-array", {"pk": "own_run", "output_id": "own_output"}, "get", None, OWN_RUN),
    ("api-run-outputs", {"pk": "own_run"}, "get", None, OWN_RUN),
    (
        "api-submission-list",
        {},
        "post",
        "submission",
        expect("forbidden", anonymous="login", participant="ok", organiser="ok", staff="ok"),
    ),  # fmt: skip
]


def route_names():
    """Every named route outside the Django admin (which answers to staff only, see the last test)."""

    def walk(patterns):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                if str(pattern.pattern).startswith("admin/"):
                    continue
                yield from walk(pattern.url_patterns)
            elif isinstance(pattern, URLPattern):
                yield pattern.name

    return set(walk(get_resolver().url_patterns))


def test_every_route_has_an_entry():
    declared = {name for name, *_ in ROUTES}
    assert route_names() - declared == set(), "routes without an entry in the permission matrix"
    assert declared - route_names() == set(), "entries for routes that no longer exist"


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """Built once for the module inside an outer transaction (as Django's setUpTestData does): each test's
    own transaction rolls back what it changes, and the whole world is rolled back at the end."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world(get_user_model())
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def build_world(django_user_model):
    users = {
        "participant": django_user_model.objects.create_user("participant"),
        "reader": make_reader("reader"),
        "editor": django_user_model.objects.create_user("editor"),
        "organiser": django_user_model.objects.create_user("organiser"),
        "staff": django_user_model.objects.create_user("staff", is_staff=True, is_superuser=True),
    }
    users["editor"].user_permissions.add(Permission.objects.get(codename="add_readerstudy"))
    task = make_task(n_cases=2, shape=(1, 8, 8), hidden_references=True, slug="bench")
    Phase.objects.create(task=task, name="test", starts_at=timezone.now())
    participation.add_organiser(task, user=users["organiser"])
    participation.join_task(task, user=users["participant"])
    pending = Membership.objects.create(
        task=task, user=django_user_model.objects.create_user("waiting"), role=MemberRole.PARTICIPANT
    )
    case = task.dataset.cases.order_by("case_id").first()
    own_run = Run.objects.create(
        task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED, requested_by=users["participant"]
    )
    baseline_run = Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED)
    own_output = store_output(own_run, case, 0, np.zeros((1, 8, 8), np.float32))
    store_output(baseline_run, case, 0, np.zeros((1, 8, 8), np.float32))
    result = CaseResult.objects.create(run=own_run, case=case, status=CaseStatus.OK, samples=2)
    save_array(result.uncertainty_map, "sd.npy", np.ones((1, 8, 8), np.float32))
    result.save()
    Evaluation.objects.create(run=own_run, status=JobStatus.SUCCEEDED)
    setup = DownstreamSetup.objects.create(task=task, name="tiny", seeds=[0])
    DownstreamJob.objects.create(setup=setup, run=own_run, status=JobStatus.SUCCEEDED)
    baseline_model = GenerativeModel.objects.create(
        name="baseline", task=task, format="onnx", artifact="models/x.onnx", sha256="0" * 64, size_bytes=1,
        spatial_shape=[8, 8], status="valid",
    )  # fmt: skip
    study_task, study_runs = make_study_task(n_cases=4, shape=(1, 16, 16), n_runs=1, is_public=False)
    study = make_study(study_task, study_runs, readers=[users["reader"]], items_per_model=2, created_by=users["editor"])
    assignment = Assignment.objects.filter(session__reader=users["reader"], position=0).first()
    invitation = Invitation.objects.create(
        study=study, created_by=users["editor"], expires_at=timezone.now() + timedelta(days=1)
    )
    dataset_import = DatasetImport.objects.create(name="incoming", requested_by=users["organiser"])
    probe_world = build_probe_world(task, own_run, users["organiser"])
    objects = {
        "dataset_import": dataset_import.uid,
        "study": study.pk,
        "study_uid": study.uid,
        "item_token": assignment.token,
        "invitation": invitation.pk,
        "invitation_token": invitation.token,
        "own_run": own_run.pk,
        "baseline_run": baseline_run.pk,
        "own_output": own_output.pk,
        "own_result": result.pk,
        "case": case.pk,
        "dataset": task.dataset_id,
        "task_slug": task.slug,
        "pending": pending.pk,
        "baseline_model": baseline_model.pk,
        "input_image": case.images.get(role=ImageRole.INPUT).pk,
        "reference_image": case.images.get(role=ImageRole.REFERENCE).pk,
        **probe_world,
    }
    return users, objects, task


def build_probe_world(task, main_run, organiser):
    """A built probe set of `task` (one probe case) and a two-sample probe run of `main_run` started by `organiser`."""
    dataset = Dataset.objects.create(name="Probe set of bench", private_to=task)
    probe_set = ProbeSet.objects.create(task=task, status=JobStatus.SUCCEEDED, dataset=dataset)
    source = task.dataset.cases.order_by("case_id").first()
    probe_case = Case.objects.create(dataset=dataset, case_id="case0--removed")
    # Values of their own: a probe's reference is secret like the test set's, by content hash too.
    probe_input = add_image(probe_case, ImageRole.INPUT, np.full((1, 8, 8), 0.25, np.float32))
    add_image(probe_case, ImageRole.REFERENCE, np.full((1, 8, 8), 0.5, np.float32))
    truth = {"kind": "removed", "expected": "absent", "centre": [4.0, 4.0], "extent": [1.0, 1.0], "angle": 0.0,
             "area_px": 4, "contrast": 1.0, "site": "lesion", "region": 1}  # fmt: skip
    probe = ProbeCase(
        probe_set=probe_set, case=probe_case, source=source, kind="removed", expected="absent", truth=truth
    )
    save_array(probe.truth_mask, "truth.npy", np.ones((1, 8, 8), np.float32))
    probe.save()
    probe_run = Run.objects.create(
        task=task, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED, requested_by=organiser, dataset=dataset,
        probe_of=main_run,
    )  # fmt: skip
    probe_output = store_output(probe_run, probe_case, 0, np.full((1, 8, 8), 0.75, np.float32))
    store_output(probe_run, probe_case, 1, np.ones((1, 8, 8), np.float32))
    return {
        "probe_dataset": dataset.pk,
        "probe_case": probe_case.pk,
        "probe_input": probe_input.pk,
        "probe": probe.pk,
        "probe_run": probe_run.pk,
        "probe_output": probe_output.pk,
    }


def category(response):
    if response.status_code == 401:
        return "login"
    if response.status_code in (301, 302) and "/login/" in response.get("Location", ""):
        return "login"
    return {403: "forbidden", 404: "hidden"}.get(response.status_code, "ok")


def request_body(body, objects, task):
    if body == "answer":
        return {"item": objects["item_token"], "key": "k-1", "answer": {"not": "an answer"}}, "application/json"
    if body == "draft":
        return {"item": objects["item_token"], "answer": {"not": "an answer"}}, "application/json"
    if body == "submission":
        return {"task": task.slug, "name": "m", "file": outputs_zip(task, value=0.0)}, None
    return body, "application/json" if body is not None else None


@pytest.mark.parametrize(
    ("name", "kwargs", "method", "body", "expected"),
    ROUTES,
    ids=[f"{name}-{method}-{'-'.join(map(str, kwargs.values()))}" for name, kwargs, method, *_ in ROUTES],
)
def test_each_role_gets_the_declared_outcome(world, name, kwargs, method, body, expected):
    users, objects, task = world
    url = reverse(name, kwargs={key: objects.get(value, value) for key, value in kwargs.items()})
    outcomes = {}
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            client.force_login(users[role])
        data, content_type = request_body(body, objects, task)
        if method == "get":
            response = client.get(url)
        elif content_type == "application/json":
            response = getattr(client, method)(url, json.dumps(data or {}), content_type=content_type)
        else:
            response = getattr(client, method)(url, data or {})
        outcomes[role] = category(response)
    assert outcomes == expected


def test_the_django_admin_answers_to_staff_only(world):
    users, _, _ = world
    for role in ROLES:
        client = Client()
        if role != "anonymous":
            client.force_login(users[role])
        response = client.get("/admin/")
        if role == "staff":
            assert response.status_code == 200
        else:
            assert response.status_code == 302 and "/admin/login/" in response["Location"]
