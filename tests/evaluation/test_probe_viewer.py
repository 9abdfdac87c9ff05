"""The probe viewer (issue 17): a probe run's case with its output, error and SD maps and the truth region outlined,
its outcomes and detector marks as stored, the walk hallucinated first, and a probe set that reaches its task's
organisers only (`Dataset.private_to`), whatever else would show it."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse

from evaluation.models import ProbeCase, ProbeScore
from evaluation.task_forms import TaskForm
from inference.models import Dataset, MemberRole, Membership, MemberStatus
from inference.services import participation
from tests.evaluation.probe_support import SIZE, phantom_task
from tests.evaluation.test_probe_sets import built_probe_set, scored_paste_runs
from tests.inference.test_arrays import floats, viewer_config

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory):
    """Built once for the module inside an outer transaction (as the permission matrix's world): each test's own
    transaction rolls back what it changes."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            yield build_world(tmp_path_factory.mktemp("probe-viewer"))
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


def build_world(tmp_path):
    """A public phantom task with a probe set, a deterministic and a 3-sample stochastic probe run (both scored),
    an organiser, an accepted participant and a stranger."""
    task = phantom_task(n_cases=3)
    probe_set = built_probe_set(task)
    runs = scored_paste_runs(task, probe_set, tmp_path)
    users = get_user_model().objects
    people = {name: users.create_user(name) for name in ("organiser", "participant", "stranger")}
    participation.add_organiser(task, user=people["organiser"])
    Membership.objects.create(
        task=task, user=people["participant"], role=MemberRole.PARTICIPANT, status=MemberStatus.ACCEPTED
    )
    return task, probe_set, runs, people


def logged_in(client, user):
    client.force_login(user)
    return client


def probe_url(run, probe):
    return reverse("probe-case", args=[run.pk, probe.case_id])


def test_a_probe_set_is_private_to_its_tasks_organisers(world):
    task, probe_set, _, _ = world
    assert probe_set.dataset.private_to == task and not probe_set.dataset.is_public


def test_the_organiser_is_told_the_probe_set_is_private_to_the_task(client, world):
    task, probe_set, _, people = world
    client = logged_in(client, people["organiser"])
    assert client.get(f"/api/datasets/{probe_set.dataset_id}/").json()["private_to"] == task.slug
    page = client.get(reverse("dataset-detail", args=[probe_set.dataset_id])).content.decode()
    assert 'id="dataset-private"' in page and task.name in page


def test_the_organiser_sees_the_probe_with_its_maps_and_the_truth_outlined(client, world):
    task, probe_set, runs, people = world
    _, probe_run = runs["noisy"]
    probe = probe_set.probe_cases.order_by("case__case_id").first()
    page = logged_in(client, people["organiser"]).get(probe_url(probe_run, probe))
    assert page.status_code == 200
    config = viewer_config(page)
    labels = [spec["label"] for spec in config["viewports"]]
    assert labels == ["Probe input", "Output (sample 0)", "Truth image", "|Output − truth image|", "SD over 3 samples"]
    assert config["overlay"] == {
        "headerUrl": reverse("array-probe-truth", args=[probe.pk]),
        "label": "Truth region",
        "outline": True,
        "maps": True,
    }
    truth_image = probe.case.image("reference")
    assert config["viewports"][2]["headerUrl"] == reverse("array-case-image", args=[truth_image.pk])
    # The outcomes shown are the stored ones, sample by sample.
    score = ProbeScore.objects.get(run=probe_run)
    stored = sorted((o for o in score.outcomes if o["case"] == probe.case.case_id), key=lambda o: o["sample"])
    assert [o["outcome"] for o in page.context["row"]["outcomes"]] == [o["outcome"] for o in stored]
    html = page.content.decode()
    for o in stored:
        assert f'<tr data-sample="{o["sample"]}"' in html
        assert f"{o['fraction']:.3f}" in html
    # The marks listed are the detectors' on this case, with their distance from the truth centre.
    expected = [
        (name, row, col) for name, rows in sorted(score.detector_marks.items()) for case, row, col, _ in rows
        if case == probe.case.case_id
    ]  # fmt: skip
    marks = page.context["marks"]
    assert sorted((m["detector"], m["row"], m["col"]) for m in marks) == sorted(expected)
    centre = probe.truth["centre"]
    for mark in marks:
        assert mark["distance"] == pytest.approx(np.hypot(mark["row"] - centre[0], mark["col"] - centre[1]))


def test_the_truth_source_serves_the_truth_mask_as_a_label(client, world):
    _, probe_set, _, people = world
    probe = probe_set.probe_cases.order_by("case__case_id").last()
    client = logged_in(client, people["organiser"])
    header = client.get(reverse("array-probe-truth", args=[probe.pk])).json()
    assert header["kind"] == "label" and header["shape"] == [SIZE, SIZE]
    plane = floats(client.get(header["data_url"]), (SIZE, SIZE))
    assert np.array_equal(plane > 0, probe.truth_mask_array())
    assert plane.sum() == probe.truth["area_px"]


def test_the_sd_map_is_numpys_sd_over_the_samples(client, world):
    _, probe_set, runs, people = world
    _, probe_run = runs["noisy"]
    probe = probe_set.probe_cases.order_by("case__case_id").first()
    outputs = list(probe_run.outputs.filter(case=probe.case).order_by("sample"))
    assert len(outputs) == 3
    expected = np.std(np.stack([o.load()[0].astype(np.float64) for o in outputs]), axis=0)
    client = logged_in(client, people["organiser"])
    header = client.get(reverse("array-samples-sd", args=[outputs[1].pk])).json()
    assert header["kind"] == "uncertainty"
    plane = floats(client.get(header["data_url"]), (SIZE, SIZE))
    np.testing.assert_allclose(plane, expected, rtol=1e-6, atol=1e-7)
    assert plane.max() > 0.05 and (plane == 0).mean() > 0.5  # the lattice's random amplitude, and zero elsewhere


def test_a_probe_runs_case_view_is_the_probe_viewer(client, world):
    _, probe_set, runs, people = world
    _, probe_run = runs["noisy"]
    probe = probe_set.probe_cases.order_by("case__case_id").first()
    response = logged_in(client, people["organiser"]).get(
        reverse("run-case", args=[probe_run.pk, probe.case_id]) + "?sample=2"
    )
    assert response.status_code == 302 and response["Location"] == probe_url(probe_run, probe) + "?sample=2"


def test_the_samples_sd_source_is_for_probe_runs_only(client, world):
    _, _, runs, people = world
    main, _ = runs["noisy"]
    output = main.outputs.first()
    response = logged_in(client, people["organiser"]).get(reverse("array-samples-sd", args=[output.pk]))
    assert response.status_code == 404  # a main run's SD map is its evaluation's (the "uncertainty" source)


def test_deleting_a_task_deletes_its_probe_sets_dataset(world):
    """(A task with models or runs cannot be deleted at all: they protect it.)"""
    task = phantom_task(n_cases=1, seed0=5000)
    dataset_pk = built_probe_set(task).dataset_id
    task.delete()
    assert not Dataset.objects.filter(pk=dataset_pk).exists()


def test_a_deterministic_probe_run_has_no_sd_map(client, world):
    _, probe_set, runs, people = world
    _, probe_run = runs["paste"]
    probe = probe_set.probe_cases.order_by("case__case_id").first()
    client = logged_in(client, people["organiser"])
    labels = [spec["label"] for spec in viewer_config(client.get(probe_url(probe_run, probe)))["viewports"]]
    assert labels == ["Probe input", "Output", "Truth image", "|Output − truth image|"]
    output = probe_run.outputs.get(case=probe.case)
    response = client.get(reverse("array-samples-sd", args=[output.pk]))
    assert response.status_code == 404 and "one sample" in response.json()["detail"]


def test_the_walk_and_the_run_page_put_hallucinated_probes_first(client, world):
    _, probe_set, runs, people = world
    _, probe_run = runs["paste"]
    score = ProbeScore.objects.get(run=probe_run)
    share = {}
    for o in score.outcomes:
        share.setdefault(o["case"], []).append(o["outcome"] in ("invented", "omitted"))
    expected = sorted(share, key=lambda case: (-np.mean(share[case]), case))
    assert any(np.mean(flags) > 0 for flags in share.values()) and any(not any(f) for f in share.values())
    client = logged_in(client, people["organiser"])
    page = client.get(probe_run.get_absolute_url())
    html = page.content.decode()
    positions = [html.index(f'<tr data-case="{case}"') for case in expected]
    assert positions == sorted(positions)
    # Walking from the first probe by "next" visits them all in that order.
    ids = {p.case.case_id: p.case_id for p in probe_set.probe_cases.select_related("case")}
    url, seen = reverse("probe-case", args=[probe_run.pk, ids[expected[0]]]), []
    while url:
        response = client.get(url)
        seen.append(response.context["case"].case_id)
        url = response.context["neighbours"].get("next_url")
    assert seen == expected
    assert response.context["neighbours"]["position"] == len(expected) == response.context["neighbours"]["count"]


@pytest.mark.parametrize("who", ["participant", "stranger", "anonymous"])
def test_nobody_but_the_organisers_reaches_the_probe_set(client, world, who):
    """The task is public and its runs open, yet its probe set's cases, truth images, truth regions and the probe
    viewer are a 404 to everyone but its organisers (and staff), and the probe set is in no list of theirs."""
    _, probe_set, runs, people = world
    if who != "anonymous":
        client = logged_in(client, people[who])
    _, probe_run = runs["noisy"]
    probe = probe_set.probe_cases.order_by("case__case_id").first()
    truth_image = probe.case.image("reference")
    output = probe_run.outputs.filter(case=probe.case).first()
    urls = [
        probe_url(probe_run, probe),
        reverse("array-probe-truth", args=[probe.pk]),
        reverse("array-probe-truth-data", args=[probe.pk]),
        reverse("array-case-image", args=[truth_image.pk]),
        reverse("array-difference", args=[output.pk]),
        reverse("array-samples-sd", args=[output.pk]),
        reverse("array-output", args=[output.pk]),
        reverse("output-png", args=[probe_run.pk, output.pk]),
        reverse("run-case", args=[probe_run.pk, probe.case_id]),
        reverse("case-detail", args=[probe.case_id]),
        reverse("dataset-detail", args=[probe_set.dataset_id]),
        # the probe run itself: its outputs and case ids ("brain00--removed") tell the probes' kinds
        probe_run.get_absolute_url(),
        f"/api/runs/{probe_run.pk}/",
        f"/api/runs/{probe_run.pk}/outputs/",
        f"/api/runs/{probe_run.pk}/outputs/{output.pk}/array/",
        f"/api/datasets/{probe_set.dataset_id}/",
        f"/api/cases/{probe.case_id}/",
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    for listing, ids in (("/api/datasets/", {probe_set.dataset_id}), ("/api/runs/", {r.pk for _, r in runs.values()})):
        listed = client.get(listing).json()
        rows = listed["results"] if isinstance(listed, dict) else listed
        assert ids.isdisjoint({row["id"] for row in rows}), listing
    # The main runs, the board and the probe page's numbers stay theirs to see.
    main, _ = runs["noisy"]
    assert client.get(main.get_absolute_url()).status_code == 200


def test_the_probe_page_links_the_probe_cases_for_organisers_only(client, world):
    task, _, runs, people = world
    url = reverse("task-probes", args=[task.slug])
    organiser_page = logged_in(client, people["organiser"]).get(url).content.decode()
    for _, probe_run in runs.values():
        assert f'href="{reverse("run-detail", args=[probe_run.pk])}#probe-cases"' in organiser_page
    client.logout()
    participant_page = logged_in(client, people["participant"]).get(url).content.decode()
    assert "probe-cases-link" not in participant_page


def test_a_probe_set_cannot_be_a_tasks_dataset(world):
    task, probe_set, _, people = world
    form = TaskForm(user=people["organiser"])
    assert probe_set.dataset not in form.fields["dataset"].queryset
    assert task.dataset in form.fields["dataset"].queryset
    task.reference_dataset = probe_set.dataset
    with pytest.raises(ValidationError) as raised:
        task.full_clean()
    assert "reference_dataset" in raised.value.message_dict
    assert "probe set" in raised.value.message_dict["reference_dataset"][0]


def test_making_a_probe_set_public_does_not_show_it(client, world):
    _, probe_set, _, people = world
    Dataset.objects.filter(pk=probe_set.dataset_id).update(is_public=True)
    assert logged_in(client, people["stranger"]).get(f"/api/datasets/{probe_set.dataset_id}/").status_code == 404


def test_an_organiser_of_another_task_does_not_see_it(client, world, django_user_model):
    _, probe_set, _, _ = world
    other = phantom_task(n_cases=1, seed0=4000)
    someone = django_user_model.objects.create_user("elsewhere")
    participation.add_organiser(other, user=someone)
    probe = ProbeCase.objects.filter(probe_set=probe_set).first()
    assert logged_in(client, someone).get(reverse("array-probe-truth", args=[probe.pk])).status_code == 404
