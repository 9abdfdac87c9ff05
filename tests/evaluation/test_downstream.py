"""The downstream-task tier's jobs, in process: what they store, that the split holds, failures, the API and pages.

Runs are made by writing outputs directly (no model); jobs run with `execute_downstream` on a
tiny network so each takes a second or two. `tests/evaluation/test_downstream_worker.py` goes through a
real Celery worker.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from core import jobs
from core.jobs import JobContext
from core.models import JobStatus
from core.signals import job_finished
from evaluation import downstream, segmentation, services
from evaluation.downstream import training
from evaluation.metrics import catalog
from evaluation.models import DownstreamJob, DownstreamSetup, Evaluation, MetricResult
from inference.models import Case, ImageRole, Run, RunKind
from tests.support.evaluation import TINY, downstream_task, near_reference, succeeded_run
from tests.support.factories import TaskFactory, add_image
from tests.support.jobs import run_job

CLINICAL = {"downstream_dice", "downstream_hd95", "utility_ratio"}


def declare(task, config=TINY, seeds=(0, 1), **kwargs):
    return downstream.declare_downstream(task, config=config, seeds=seeds, queue_existing=False, **kwargs)


def execute(job):
    assert run_job(job) == "succeeded", DownstreamJob.objects.get(pk=job.pk).error
    job.refresh_from_db()
    return job


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    """Jobs are executed here; what would have been sent to the broker is recorded."""
    sent = []
    monkeypatch.setattr(jobs, "dispatch", lambda job: sent.append(job.pk) if isinstance(job, DownstreamJob) else None)
    return sent


# ----------------------------------------------------------------------------- results


@pytest.mark.django_db
def test_run_results_are_clinical_metric_results_with_cis_and_the_ratio_to_real():
    task = downstream_task()
    declare(task)
    run = succeeded_run(task, near_reference)
    job = execute(downstream.request_downstream(run))
    # The reference has not run yet: Dice and HD95 are there, the ratio waits for it.
    assert set(MetricResult.objects.filter(run=run).values_list("metric", flat=True)) == {
        "downstream_dice",
        "downstream_hd95",
    }
    reference = execute(downstream.reference_job(job.setup))
    results = {r.metric: r for r in MetricResult.objects.filter(run=run)}
    assert set(results) == CLINICAL

    setup = DownstreamSetup.objects.get(task=task)
    run_dice = np.asarray(job.results["dice"])  # (seeds, test cases)
    reference_dice = np.asarray(reference.results["dice"])
    assert run_dice.shape == (2, len(setup.test_case_ids))
    dice = results["downstream_dice"]
    assert dice.tier == catalog.CLINICAL == "clinical" and dice.extractor == ""
    assert dice.value == pytest.approx(run_dice.mean())
    assert dice.ci_low <= dice.value <= dice.ci_high
    assert dice.n_cases == len(setup.test_case_ids) and dice.n_resamples > 0
    assert dice.version == catalog.metric_version("downstream_dice") and not dice.is_stale
    assert dice.extra["seeds"] == [0, 1] and dice.extra["config"] == "tiny-test"
    assert dice.extra["per_seed"] == pytest.approx({"0": run_dice[0].mean(), "1": run_dice[1].mean()})
    assert dice.extra["curves_url"] == f"/runs/{run.pk}/downstream/curves/"
    hd95 = results["downstream_hd95"]
    assert hd95.value == pytest.approx(np.mean(job.results["hd95"])) and hd95.info.unit == "mm"
    ratio = results["utility_ratio"]
    assert ratio.value == pytest.approx(run_dice.mean() / reference_dice.mean())
    assert ratio.ci_low <= ratio.value <= ratio.ci_high

    ref = downstream.task_reference(task)
    assert ref["status"] == "succeeded" and ref["config"] == "tiny-test" and ref["seeds"] == [0, 1]
    assert ref["dice"] == pytest.approx(reference_dice.mean()) and ref["dice_ci"][0] <= ref["dice"] <= ref["dice_ci"][1]
    assert ref["hd95"] == pytest.approx(np.mean(reference.results["hd95"]))
    assert ref["n_test_cases"] == len(setup.test_case_ids)


@pytest.mark.django_db
def test_test_cases_never_enter_training(monkeypatch):
    task = downstream_task(n_cases=10)
    setup = declare(task)
    run = succeeded_run(task, near_reference)
    train_images = []
    real_train = segmentation.train_segmenter

    def recording(images, labels, config, seed, **kwargs):
        train_images.append(np.array(images))
        return real_train(images, labels, config, seed, **kwargs)

    monkeypatch.setattr(segmentation, "train_segmenter", recording)
    job = execute(downstream.request_downstream(run))
    reference = execute(downstream.reference_job(setup))

    assert not set(setup.train_case_ids) & set(setup.test_case_ids)
    assert set(job.results["train_case_ids"]) == set(setup.train_case_ids)
    assert job.results["test_case_ids"] == setup.test_case_ids == reference.results["test_case_ids"]
    cases = {c.case_id: c for c in task.dataset.cases.all()}
    test_arrays = [cases[c].images.get(role=ImageRole.REFERENCE).load() for c in setup.test_case_ids]
    test_arrays += [run.outputs.get(case=cases[c]).load() for c in setup.test_case_ids]
    train_arrays = [cases[c].images.get(role=ImageRole.REFERENCE).load() for c in setup.train_case_ids]
    train_arrays += [run.outputs.get(case=cases[c]).load() for c in setup.train_case_ids]
    assert len(train_images) == 4  # two seeds, run and reference
    for images in train_images:
        assert len(images) == len(setup.train_case_ids)
        for image in images:
            assert not any(np.array_equal(image, test) for test in test_arrays)
            assert any(np.array_equal(image, train) for train in train_arrays)


@pytest.mark.django_db
def test_the_same_run_configuration_and_seed_give_the_same_dice_twice():
    task = downstream_task()
    declare(task)
    run = succeeded_run(task, near_reference)
    first = execute(downstream.request_downstream(run)).results
    second = execute(downstream.request_downstream(run))
    assert second.attempts == 2
    assert second.results["dice"] == first["dice"] and second.results["hd95"] == first["hd95"]
    assert second.results["final_loss"] == first["final_loss"]


@pytest.mark.django_db
def test_a_run_without_some_outputs_trains_on_the_rest_and_says_so():
    task = downstream_task()
    setup = declare(task)
    run = succeeded_run(task, near_reference)
    missing = setup.train_case_ids[0]
    run.outputs.filter(case__case_id=missing).delete()
    job = execute(downstream.request_downstream(run))
    assert missing not in job.results["train_case_ids"]
    assert job.results["train_left_out"] == [f"{missing}: no output"]
    assert f"{missing}: no output" in job.log


# ---------------------------------------------------------------------------- failures


@pytest.mark.django_db
def test_a_nan_loss_fails_the_job_with_the_reason_and_leaves_the_run_and_its_evaluation_alone():
    task = downstream_task(n_cases=6)
    diverging = segmentation.SegmentationConfig(
        name="diverging", channels=(4, 8), epochs=5, crop=32, learning_rate=1e12
    )
    declare(task, config=diverging)
    run = succeeded_run(task, near_reference)
    evaluation = Evaluation.objects.create(run=run, status="succeeded", phase="", log="done\n")
    MetricResult.objects.create(run=run, metric="psnr", tier="pixel", value=30.0, version="1")
    job = downstream.request_downstream(run)
    assert run_job(job) == "failed"
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert "training loss became nan at epoch" in job.error
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED and run.error == ""
    after = Evaluation.objects.get(pk=evaluation.pk)
    assert (after.status, after.error, after.log) == ("succeeded", "", "done\n")
    assert list(MetricResult.objects.filter(run=run).values_list("metric", flat=True)) == ["psnr"]
    assert not DownstreamSetup.objects.get(task=task).is_frozen


@pytest.mark.django_db
def test_a_cancel_stops_the_training_at_the_next_epoch(monkeypatch):
    task = downstream_task(n_cases=6)
    declare(task, config=segmentation.SegmentationConfig(name="long", channels=(4, 8), epochs=50, crop=32))
    run = succeeded_run(task, near_reference)
    job = downstream.request_downstream(run)
    epochs_seen = []
    real_progress = JobContext.progress

    def cancel_after_two_epochs(context, **fields):
        epochs_seen.append(fields["epoch"])
        if fields["epoch"] == 2:
            downstream.cancel_downstream(context.pk)
        return real_progress(context, **fields)

    monkeypatch.setattr(JobContext, "progress", cancel_after_two_epochs)
    assert run_job(job) == "stopped"
    job.refresh_from_db()
    assert job.status == JobStatus.CANCELLED and job.error == "Cancelled by a user."
    assert epochs_seen == [0, 1, 2] and job.epoch == 1  # 0: the heartbeat once the data are loaded
    assert not MetricResult.objects.filter(run=run).exists()
    with pytest.raises(downstream.DownstreamError, match="nothing to cancel"):
        downstream.cancel_downstream(job.pk)


@pytest.mark.django_db
def test_a_second_delivery_of_the_job_does_nothing():
    task = downstream_task(n_cases=6)
    declare(task)
    run = succeeded_run(task, near_reference)
    job = execute(downstream.request_downstream(run))
    computed = MetricResult.objects.get(run=run, metric="downstream_dice").computed_at
    assert run_job(job) == "skipped"
    assert DownstreamJob.objects.get(pk=job.pk).attempts == 1
    assert MetricResult.objects.get(run=run, metric="downstream_dice").computed_at == computed


@pytest.mark.django_db
def test_a_re_evaluation_keeps_the_downstream_results():
    task = downstream_task(n_cases=6)
    declare(task)
    run = succeeded_run(task, near_reference)
    execute(downstream.request_downstream(run))
    execute(downstream.reference_job(DownstreamSetup.objects.get(task=task)))
    before = set(MetricResult.objects.filter(run=run, tier="clinical").values_list("metric", "value"))
    assert len(before) == 3
    evaluation = services.request_evaluation(run)
    assert run_job(evaluation) == "succeeded"
    assert set(MetricResult.objects.filter(run=run, tier="clinical").values_list("metric", "value")) == before
    assert MetricResult.objects.filter(run=run, metric="ssim").exists()


@pytest.mark.django_db
def test_the_reaper_requeues_a_silent_job_and_fails_it_after_the_last_attempt(no_broker):
    task = downstream_task(n_cases=4)
    declare(task)
    run = succeeded_run(task, near_reference)
    job = downstream.request_downstream(run)
    kind = jobs.kind_of(DownstreamJob)
    jobs.claim(kind, job.pk)
    DownstreamJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1), worker="elsewhere:1"
    )
    assert jobs.reap(kind, stale_seconds=60, max_attempts=2) == ([job.pk], [])
    assert DownstreamJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    jobs.claim(kind, job.pk)
    DownstreamJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - timedelta(hours=1), worker="elsewhere:1"
    )
    assert jobs.reap(kind, stale_seconds=60, max_attempts=2) == ([], [job.pk])
    failed = DownstreamJob.objects.get(pk=job.pk)
    assert failed.status == JobStatus.FAILED and "2 attempt(s)" in failed.error


# ------------------------------------------------------------------------ the split


@pytest.mark.django_db
def test_the_split_is_stored_and_frozen_once_results_exist():
    task = downstream_task()
    setup = declare(task, split_seed=0)
    moved = declare(task, split_seed=1)  # no results yet: the split may still change
    assert moved.pk == setup.pk
    assert not set(moved.train_case_ids) & set(moved.test_case_ids)
    run = succeeded_run(task, near_reference)
    execute(downstream.request_downstream(run))
    frozen = DownstreamSetup.objects.get(task=task)
    assert frozen.is_frozen and frozen.test_case_ids == moved.test_case_ids
    with pytest.raises(downstream.DownstreamError, match="frozen.*split_seed"):
        declare(task, split_seed=2)
    with pytest.raises(downstream.DownstreamError, match="frozen.*seeds"):
        declare(task, split_seed=1, seeds=(0, 1, 2))
    assert declare(task, split_seed=1).test_case_ids == moved.test_case_ids  # the same declaration is fine


@pytest.mark.django_db
def test_a_task_without_labels_cannot_declare_one():
    task = TaskFactory()
    for i in range(3):
        case = Case.objects.create(dataset=task.dataset, case_id=f"c{i}")
        add_image(case, ImageRole.REFERENCE, np.ones((1, 8, 8)))
    with pytest.raises(downstream.DownstreamError, match="at least two cases"):
        declare(task)


@pytest.mark.django_db
def test_a_run_that_succeeds_on_a_declared_task_is_queued_with_the_reference(no_broker):
    task = downstream_task(n_cases=4)
    declare(task)
    run = succeeded_run(task, near_reference)
    job_finished.send(sender=Run, job_id=run.pk, status=JobStatus.SUCCEEDED)
    job = DownstreamJob.objects.get(run=run)
    reference = downstream.reference_job(job.setup)
    assert job.status == reference.status == JobStatus.QUEUED
    assert Evaluation.objects.filter(run=run).exists()  # the evaluation is still requested as before
    other = TaskFactory()
    plain = Run.objects.create(task=other, kind=RunKind.SUBMISSION, status=JobStatus.SUCCEEDED)
    job_finished.send(sender=Run, job_id=plain.pk, status=JobStatus.SUCCEEDED)
    assert not DownstreamJob.objects.filter(run=plain).exists()


# ------------------------------------------------------------------------ API and pages


@pytest.mark.django_db
def test_api_starts_reports_and_cancels_the_downstream_job(api_client, staff_user, reader_user):
    task = downstream_task(n_cases=4)
    declare(task)
    run = succeeded_run(task, near_reference)
    url = f"/api/runs/{run.pk}/downstream/"
    assert api_client.get(url).status_code == 404
    api_client.force_authenticate(reader_user)
    assert api_client.post(url).status_code == 403
    api_client.force_authenticate(staff_user)
    response = api_client.post(url)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["config"]["name"] == "tiny-test" and body["seeds"] == [0, 1]
    again = api_client.post(url)
    assert again.status_code == 400 and "already queued" in again.json()["detail"]
    cancelled = api_client.post(f"{url}cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert api_client.post(f"{url}cancel/").status_code == 409
    split = api_client.get(f"/api/tasks/{task.slug}/downstream/").json()
    assert split["test_case_ids"] and not set(split["test_case_ids"]) & set(split["train_case_ids"])
    assert split["real_reference"]["status"] == "queued"


@pytest.mark.django_db
def test_api_serves_results_and_progress_of_a_finished_job(api_client):
    task = downstream_task(n_cases=6)
    declare(task)
    run = succeeded_run(task, near_reference)
    execute(downstream.request_downstream(run))
    execute(downstream.reference_job(DownstreamSetup.objects.get(task=task)))
    body = api_client.get(f"/api/runs/{run.pk}/downstream/").json()
    assert body["status"] == "succeeded" and body["epoch"] == TINY.epochs and body["loss"] > 0
    assert body["progress_done"] == body["progress_total"] == 2 * TINY.epochs
    assert {r["metric"] for r in body["results"]} == CLINICAL
    assert all(r["tier"] == "clinical" and r["ci_low"] is not None for r in body["results"])
    assert body["real_reference"]["dice"] is not None and body["curves_url"].endswith("/downstream/curves/")


@pytest.mark.django_db
def test_run_page_shows_the_downstream_block_and_the_curves_page_draws_with_local_plotly(client, staff_client):
    task = downstream_task(n_cases=6)
    declare(task)
    run = succeeded_run(task, near_reference)
    page = staff_client.get(run.get_absolute_url()).content.decode()
    assert 'id="downstream"' in page and "Run downstream task" in page
    execute(downstream.request_downstream(run))
    execute(downstream.reference_job(DownstreamSetup.objects.get(task=task)))
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="downstream-results"' in page and "Utility ratio" in page
    assert f"/runs/{run.pk}/downstream/curves/" in page and "Run downstream task" not in page
    curves = client.get(f"/runs/{run.pk}/downstream/curves/")
    assert curves.status_code == 200
    html = curves.content.decode()
    assert "/static/vendor/plotly/plotly.min.js" in html and 'id="downstream-curves-data"' in html
    task_curves = client.get(f"/tasks/{task.slug}/downstream/curves/")
    assert task_curves.status_code == 200
    assert 'id="downstream-curves-data"' in task_curves.content.decode()
    plain = succeeded_run(TaskFactory(), near_reference)
    assert 'id="downstream"' not in client.get(plain.get_absolute_url()).content.decode()


@pytest.mark.django_db
def test_staff_buttons_start_and_cancel_from_the_run_page(staff_client, no_broker):
    task = downstream_task(n_cases=4)
    declare(task)
    run = succeeded_run(task, near_reference)
    response = staff_client.post(f"/runs/{run.pk}/downstream/")
    assert response.status_code == 302 and response["Location"].endswith("#downstream")
    job = DownstreamJob.objects.get(run=run)
    assert job.status == JobStatus.QUEUED
    page = staff_client.get(run.get_absolute_url()).content.decode()
    assert "Cancel downstream job" in page and "job_progress.js" in page
    staff_client.post(f"/runs/{run.pk}/downstream/cancel/")
    assert DownstreamJob.objects.get(pk=job.pk).status == JobStatus.CANCELLED


@pytest.mark.django_db
def test_pure_noise_outputs_score_far_below_real_to_real_on_the_demo_phantoms():
    # The demo's test phantoms (seeds 1000+) at full size; a small recipe that learns the lesions in seconds.
    task = downstream_task(n_cases=12, size=128, seed=1000)
    quick = segmentation.SegmentationConfig(
        name="quick", epochs=60, learning_rate=0.01, batch_size=16, crop=32, positive_fraction=0.8
    )
    setup = declare(task, config=quick)
    references = [c.images.get(role=ImageRole.REFERENCE).load() for c in task.dataset.cases.all()]
    high = float(max(r.max() for r in references))

    def noise(case_id, reference, sample):
        return np.random.default_rng(int(case_id[-3:])).uniform(0, high, reference.shape).astype(np.float32)

    run = succeeded_run(task, noise, name="noise")
    execute(downstream.request_downstream(run))
    execute(downstream.reference_job(setup))
    real = downstream.task_reference(task)
    noise_dice = MetricResult.objects.get(run=run, metric="downstream_dice")
    ratio = MetricResult.objects.get(run=run, metric="utility_ratio")
    assert real["dice"] > 0.08, real
    assert noise_dice.value < 0.02 and noise_dice.value < real["dice"] / 5
    assert ratio.value < 0.2 and ratio.ci_high < 0.5
    hd95 = MetricResult.objects.get(run=run, metric="downstream_hd95")
    assert hd95.value > 2 * real["hd95"]


@pytest.mark.django_db
def test_a_job_whose_setup_changed_while_it_trained_fails_instead_of_storing_results():
    task = downstream_task(n_cases=6)
    declare(task)
    run = succeeded_run(task, near_reference)
    job = downstream.request_downstream(run)
    context = jobs.claim(jobs.kind_of(DownstreamJob), job.pk)
    setup = DownstreamSetup.objects.get(task=task)
    trained_under = {"config": setup.name, "seeds": list(setup.seeds), "test_case_ids": list(setup.test_case_ids)}
    DownstreamSetup.objects.filter(pk=setup.pk).update(seeds=[7, 8])  # re-declared before any result froze it
    results = {**trained_under, "dice": [], "hd95": []}
    assert training._finish(context, setup, results, seconds=1.0, total=0) is False
    job.refresh_from_db()
    assert job.status == "failed" and "seeds" in job.error
    assert not MetricResult.objects.filter(run=run, tier="clinical").exists()
    assert DownstreamSetup.objects.get(pk=setup.pk).frozen_at is None


@pytest.mark.django_db
def test_the_admin_cannot_edit_a_frozen_setup(admin_client):
    task = downstream_task(n_cases=4)
    setup = declare(task)
    url = f"/admin/evaluation/downstreamsetup/{setup.pk}/change/"
    assert 'name="seeds"' in admin_client.get(url).content.decode()
    DownstreamSetup.objects.filter(pk=setup.pk).update(frozen_at=timezone.now())
    page = admin_client.get(url).content.decode()
    assert 'name="seeds"' not in page and 'name="name"' not in page
