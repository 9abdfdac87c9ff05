"""Evaluation jobs: what they store, how they treat bad outputs, and that they are idempotent.

Most tests run the job in-process (`execute_evaluation`) on a run whose outputs are written
directly; `test_succeeded_run_is_evaluated_by_a_real_worker` goes through a real worker.
The numbers are checked against scikit-image and numpy computed here, independently.
"""

import dataclasses
import math
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from core import jobs
from core.models import JobStatus
from evaluation import selectors, services
from evaluation.metrics import catalog, pixel
from evaluation.models import CaseResult, CaseStatus, Evaluation, FeatureSet, MetricResult
from inference.models import Case, ImageRole, Run, RunKind
from inference.services.runs import store_output
from tests.support.evaluation import noisy, phantom_task, succeeded_run
from tests.support.factories import TaskFactory, add_image
from tests.support.jobs import run_job, wait_for_job, wait_until


def references(task):
    cases = task.dataset.cases.order_by("case_id")
    return {case.case_id: case.images.get(role=ImageRole.REFERENCE).load() for case in cases}


def evaluate(run):
    evaluation = services.request_evaluation(run)
    assert run_job(evaluation) == "succeeded", Evaluation.objects.get(pk=evaluation.pk).error
    return Evaluation.objects.get(pk=evaluation.pk)


def evaluation_of(run, timeout):
    """The run's evaluation once the run's success has queued it (polled)."""
    return wait_until(lambda: Evaluation.objects.filter(run=run).first(), timeout, what="the run's evaluation")


@pytest.mark.django_db
def test_per_case_pixel_metrics_match_scikit_image():
    task = phantom_task(data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluate(run)
    refs = references(task)
    for result in CaseResult.objects.filter(run=run).select_related("case"):
        output = run.outputs.get(case=result.case).load()
        reference = refs[result.case.case_id]
        expected_ssim = structural_similarity(
            output[0].astype(np.float64),
            reference[0].astype(np.float64),
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            data_range=1.5,
        )
        expected_psnr = peak_signal_noise_ratio(reference[0], output[0], data_range=1.5)
        assert result.status == CaseStatus.OK
        assert result.value("ssim") == pytest.approx(expected_ssim, abs=1e-6)
        assert result.value("psnr") == pytest.approx(expected_psnr, rel=1e-6)
        assert result.value("mae") == pytest.approx(np.abs(output - reference).mean(), rel=1e-5)


@pytest.mark.django_db
def test_run_means_carry_seeded_bootstrap_cis_and_data_range():
    task = phantom_task(data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluate(run)
    psnr = MetricResult.objects.get(run=run, metric="psnr")
    values = [r.value("psnr") for r in CaseResult.objects.filter(run=run)]
    assert psnr.value == pytest.approx(np.mean(values))
    assert psnr.ci_low < psnr.value < psnr.ci_high
    assert psnr.n_cases == 8 and psnr.n_excluded == 0
    assert psnr.data_range == 1.5 and psnr.n_resamples > 0
    assert psnr.version == catalog.metric_version("psnr") and not psnr.is_stale
    # Independent check of the CI: the same percentile bootstrap written out here.
    rng = np.random.default_rng(psnr.bootstrap_seed)
    means = np.asarray(values)[rng.integers(0, len(values), (psnr.n_resamples, len(values)))].mean(axis=1)
    assert psnr.ci_low == pytest.approx(np.percentile(means, 2.5), rel=0.02)
    assert psnr.ci_high == pytest.approx(np.percentile(means, 97.5), rel=0.02)


@pytest.mark.django_db
def test_data_range_comes_from_the_references_when_the_task_has_none():
    task = phantom_task(n_cases=4)
    run = succeeded_run(task, noisy(0.05))
    evaluation = evaluate(run)
    refs = np.stack(list(references(task).values()))
    assert evaluation.data_range == pytest.approx(float(refs.max() - refs.min()), rel=1e-6)
    assert "reference" in evaluation.data_range_source
    assert MetricResult.objects.get(run=run, metric="ssim").data_range == pytest.approx(evaluation.data_range)


@pytest.mark.django_db
def test_evaluating_twice_keeps_one_result_per_metric_and_case():
    task = phantom_task(n_cases=4, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    first = {(r.metric, r.extractor): r.value for r in (evaluate(run) and MetricResult.objects.filter(run=run))}
    evaluate(run)
    assert CaseResult.objects.filter(run=run).count() == 4
    results = MetricResult.objects.filter(run=run)
    assert results.count() == len(first)
    assert {(r.metric, r.extractor): r.value for r in results} == first
    assert FeatureSet.objects.filter(run=run).count() == 1


@pytest.mark.django_db
def test_a_second_delivery_of_the_job_does_nothing():
    task = phantom_task(n_cases=3, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluation = services.request_evaluation(run)
    assert run_job(evaluation) == "succeeded"
    assert run_job(evaluation) == "skipped"
    assert Evaluation.objects.get(pk=evaluation.pk).attempts == 1


@pytest.mark.django_db
def test_nonfinite_and_wrong_shape_outputs_are_named_per_case_not_dropped():
    task = phantom_task(n_cases=5, data_range=1.5)

    def make(case_id, reference, sample):
        if case_id == "case001":
            broken = reference.copy()
            broken[0, :3, :3] = np.nan
            return broken
        if case_id == "case002":
            return reference[:, :-4, :]
        return reference + 0.01

    run = succeeded_run(task, make)
    evaluate(run)
    by_case = {r.case.case_id: r for r in CaseResult.objects.filter(run=run).select_related("case")}
    assert by_case["case001"].status == CaseStatus.NONFINITE and "9 voxel" in by_case["case001"].problem
    assert by_case["case002"].status == CaseStatus.WRONG_SHAPE and "(1, 44, 48)" in by_case["case002"].problem
    assert by_case["case000"].status == CaseStatus.OK
    ssim = MetricResult.objects.get(run=run, metric="ssim")
    assert ssim.n_cases == 3 and ssim.n_excluded == 2


@pytest.mark.django_db
def test_identical_output_gives_infinite_psnr_that_is_stored_and_served(client):
    task = phantom_task(n_cases=3, data_range=1.5)
    run = succeeded_run(task, lambda case_id, reference, sample: reference)
    evaluate(run)
    psnr = MetricResult.objects.get(run=run, metric="psnr")
    assert math.isinf(psnr.value) and psnr.value > 0
    assert psnr.extra["infinite_cases"] == 3
    assert MetricResult.objects.get(run=run, metric="ssim").value == pytest.approx(1.0)
    body = client.get(f"/api/runs/{run.pk}/evaluation/").json()
    psnr_json = next(r for r in body["results"] if r["metric"] == "psnr")
    assert psnr_json["value"] == "inf"
    page = client.get(run.get_absolute_url()).content.decode()
    assert "∞" in page


@pytest.mark.django_db
def test_stochastic_run_stores_the_per_voxel_sd_map_and_the_mean_over_samples():
    task = phantom_task(n_cases=3, data_range=1.5)
    run = succeeded_run(task, noisy(0.05, seed=3), samples=4)
    evaluate(run)
    refs = references(task)
    for result in CaseResult.objects.filter(run=run).select_related("case"):
        samples = np.stack([o.load() for o in run.outputs.filter(case=result.case).order_by("sample")])
        expected_sd = samples.astype(np.float64).std(axis=0, ddof=1)
        stored = selectors.load_uncertainty(result)
        np.testing.assert_allclose(stored, expected_sd, rtol=1e-5, atol=1e-7)
        assert result.uncertainty_mean == pytest.approx(expected_sd.mean(), rel=1e-5)
        assert result.samples == 4
        reference = refs[result.case.case_id]
        per_sample = [peak_signal_noise_ratio(reference, s, data_range=1.5) for s in samples]
        assert result.value("psnr") == pytest.approx(np.mean(per_sample), rel=1e-6)


@pytest.mark.django_db
def test_feature_tier_stores_frd_against_the_reference_set_and_says_why_fid_is_missing():
    task = phantom_task(n_cases=8, data_range=1.5)
    close = succeeded_run(task, noisy(0.01))
    far = succeeded_run(task, noisy(0.3))
    evaluate(close)
    evaluation = evaluate(far)
    frd_close = MetricResult.objects.get(run=close, metric="frd", extractor="radiomics")
    frd_far = MetricResult.objects.get(run=far, metric="frd", extractor="radiomics")
    assert 0 <= frd_close.value < frd_far.value
    assert frd_far.ci_low <= frd_far.value <= frd_far.ci_high
    assert MetricResult.objects.filter(run=far, metric="kid", extractor="radiomics").exists()
    assert "MEDGEN_INCEPTION_WEIGHTS" in evaluation.unavailable["inception_v3"]
    # The reference features were computed once and shared by both runs.
    assert FeatureSet.objects.filter(dataset=task.dataset, extractor="radiomics").count() == 1


@pytest.mark.django_db
def test_precision_and_recall_are_those_of_the_outputs_against_the_references():
    # Mode collapse: every output is the first case's reference, so every output is a real image
    # (precision 1) but the outputs cover that one reference of eight (recall 1/8); swapped arguments
    # would give the opposite.
    task = phantom_task(n_cases=8, data_range=1.5)
    first = references(task)["case000"]
    run = succeeded_run(task, lambda case_id, reference, sample: first.copy())
    evaluate(run)
    precision = MetricResult.objects.get(run=run, metric="precision", extractor="radiomics")
    recall = MetricResult.objects.get(run=run, metric="recall", extractor="radiomics")
    assert (precision.value, recall.value) == (1.0, 1 / 8)
    assert precision.extra == recall.extra
    # Every output is a reference (distance 0); nothing lies beyond ±10 reference standard deviations.
    assert precision.extra["k"] == 3 and precision.extra["median_nearest_reference"] == 0.0
    assert precision.extra["median_reference_radius"] > 0 and precision.extra["values_clipped"] == 0
    assert precision.extra["zscore_clip"] == catalog.FRD_ZSCORE_CLIP


@pytest.mark.django_db
def test_results_are_stale_when_a_metric_version_changes(monkeypatch):
    task = phantom_task(n_cases=3, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluate(run)
    monkeypatch.setitem(catalog.METRICS, "ssim", dataclasses.replace(catalog.get("ssim"), version="999"))
    ssim = MetricResult.objects.get(run=run, metric="ssim")
    assert ssim.is_stale
    assert not MetricResult.objects.get(run=run, metric="psnr").is_stale
    evaluate(run)
    assert not MetricResult.objects.get(run=run, metric="ssim").is_stale


@pytest.mark.django_db
def test_only_staff_can_start_an_evaluation_over_the_api(api_client, staff_user, reader_user):
    task = phantom_task(n_cases=2, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    api_client.force_authenticate(reader_user)
    response = api_client.post(f"/api/runs/{run.pk}/evaluation/")
    assert response.status_code == 403
    assert not Evaluation.objects.filter(run=run).exists()
    api_client.force_authenticate(staff_user)
    response = api_client.post(f"/api/runs/{run.pk}/evaluation/")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    again = api_client.post(f"/api/runs/{run.pk}/evaluation/")
    assert again.status_code == 400 and "already queued" in again.json()["detail"]


@pytest.mark.django_db
def test_a_run_that_did_not_succeed_cannot_be_evaluated():
    task = phantom_task(n_cases=2, data_range=1.5)
    run = Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.FAILED)
    with pytest.raises(services.EvaluationError, match="succeeded"):
        services.request_evaluation(run)


@pytest.mark.django_db
def test_run_page_shows_pixel_and_feature_results_with_cis(client):
    task = phantom_task(n_cases=4, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluate(run)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="pixel-results"' in page and 'id="feature-results"' in page
    assert 'data-metric="ssim"' in page and 'data-metric="frd"' in page
    ssim = MetricResult.objects.get(run=run, metric="ssim")
    assert f"[{ssim.ci_low:.4f}" in page
    assert "inception_v3" in page and "unavailable" in page


@pytest.mark.django_db
def test_ms_ssim_on_small_images_uses_the_scales_that_fit_and_says_so(client):
    task = phantom_task(n_cases=2, data_range=1.5, size=32)
    run = succeeded_run(task, noisy(0.05))
    evaluation = evaluate(run)
    assert "ms_ssim" not in evaluation.unavailable
    ms_ssim = MetricResult.objects.get(run=run, metric="ms_ssim")
    assert ms_ssim.extra == {"scales": 2, "full_definition": False}  # 11·2 ≤ 32 < 11·4
    output = run.outputs.order_by("case__case_id").first()
    reference = output.case.images.get(role=ImageRole.REFERENCE).load()
    two_scale = float(pixel.ms_ssim(output.load()[None], reference[None], data_range=1.5, scales=2)[0])
    assert CaseResult.objects.get(run=run, case=output.case).value("ms_ssim") == pytest.approx(two_scale)
    assert "(2 scales)" in client.get(run.get_absolute_url()).content.decode()


def parent_pid(pid):
    """The parent of a live process on this host, from /proc/<pid>/stat (the field after the state)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_succeeded_run_is_evaluated_by_a_real_worker_on_the_metrics_queue(worker_factory):
    # The worker consumes the metrics queue only: an evaluation sent to any other queue never runs.
    worker = worker_factory(queues=["metrics"])
    task = phantom_task(n_cases=4, data_range=1.5)
    run = Run.objects.create(task=task, kind=RunKind.SUBMISSION, status=JobStatus.RUNNING, attempts=1)
    for case in task.dataset.cases.all():
        store_output(run, case, 0, case.images.get(role=ImageRole.REFERENCE).load() * 0.9)
    run.transition(JobStatus.SUCCEEDED)  # commits → signal → evaluation queued on the metrics queue

    evaluation = wait_for_job(Evaluation, evaluation_of(run, timeout=60).pk, timeout=120)
    assert evaluation is not None, worker.read_log()[-3000:]
    assert evaluation.status == JobStatus.SUCCEEDED, evaluation.error + worker.read_log()[-3000:]
    assert evaluation.progress_done == evaluation.progress_total > 0
    assert jobs.kind_of(Evaluation).queue_for(evaluation) == "metrics"
    # Claimed by one of this worker's pool processes, once, after the worker received the task.
    host, _, pid = evaluation.worker.rpartition(":")
    assert host == socket.gethostname() and parent_pid(int(pid)) == worker.process.pid
    assert evaluation.attempts == 1 and f"attempt 1 on {evaluation.worker}" in evaluation.log
    assert re.search(r"Task core\.execute_job\[[0-9a-f-]+\] received", worker.read_log())

    pixel_metrics = set(MetricResult.objects.filter(run=run, extractor="").values_list("metric", flat=True))
    assert {"psnr", "ssim", "mse", "mae", "nmse"} <= pixel_metrics
    # The radiomics extractor ran: its feature metrics are stored with finite values, its features cached.
    radiomics = {r.metric: r for r in MetricResult.objects.filter(run=run, extractor="radiomics")}
    assert set(radiomics) == {"frd", "kid", "precision", "recall"}
    assert all(r.value is not None and math.isfinite(r.value) and r.n_cases == 4 for r in radiomics.values())
    assert radiomics["frd"].value > 0  # outputs are 0.9 × the references, not the references
    assert FeatureSet.objects.get(run=run, extractor="radiomics").n == 4
    assert FeatureSet.objects.get(dataset=task.dataset, extractor="radiomics").n == 4
    assert list(evaluation.unavailable) == ["inception_v3"]  # no weights configured in the tests


@pytest.mark.django_db
@override_settings(MEDGEN_FEATURE_EXTRACTORS=["radiomics"])
def test_configured_extractors_only_are_listed():
    task = phantom_task(n_cases=3, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluation = evaluate(run)
    assert evaluation.unavailable == {}  # inception_v3 is not configured, so not listed as missing
    extractors = set(MetricResult.objects.filter(run=run, tier="feature").values_list("extractor", flat=True))
    assert extractors == {"radiomics"}
    assert set(FeatureSet.objects.filter(run=run).values_list("extractor", flat=True)) == {"radiomics"}


@pytest.mark.django_db
def test_fid_is_computed_when_inception_weights_are_configured(tmp_path, monkeypatch, settings):
    """FID end to end with a generated weights file, against torch-fidelity's extractor and pytorch-fid's formula."""
    import dataclasses
    import hashlib

    import torch

    from evaluation.metrics.extractors import REGISTRY
    from tests.evaluation.metrics.test_extractors import STANDARD_NAME
    from tests.support.generated_weights import random_fid_inception
    from tests.support.reference_libs import torch_fidelity

    weights = tmp_path / STANDARD_NAME
    torch.save(random_fid_inception().state_dict(), weights)
    spec = dataclasses.replace(
        REGISTRY["inception_v3"],
        weights_sha256=hashlib.sha256(weights.read_bytes()).hexdigest(),
        weights_bytes=weights.stat().st_size,
    )
    monkeypatch.setitem(REGISTRY._specs, "inception_v3", spec)
    settings.MEDGEN_INCEPTION_WEIGHTS = str(weights)
    settings.MEDGEN_FEATURE_EXTRACTORS = ["inception_v3"]
    settings.MEDGEN_FEATURE_BOOTSTRAP_RESAMPLES = 20

    task = phantom_task(n_cases=6, data_range=1.5)
    run = succeeded_run(task, noisy(0.1))
    evaluation = evaluate(run)
    assert evaluation.unavailable == {}
    fid = MetricResult.objects.get(run=run, metric="fid", extractor="inception_v3")

    lo = min(case.images.get(role=ImageRole.REFERENCE).intensity_min for case in task.dataset.cases.all())
    reference_net = (
        torch_fidelity()
        .FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights))
        .eval()
    )

    def features(arrays):
        pixels = np.rint(np.clip((np.stack(arrays) - lo) / 1.5, 0, 1) * 255).astype(np.uint8)
        rgb = torch.from_numpy(np.repeat(pixels, 3, axis=1))
        with torch.no_grad():
            return reference_net(rgb)[0].double().numpy()

    cases = list(task.dataset.cases.order_by("case_id"))
    generated = features([run.outputs.get(case=case).load() for case in cases])
    real = features([case.images.get(role=ImageRole.REFERENCE).load() for case in cases])
    # n < d here: the singular-value route (checked against pytorch-fid in tests/evaluation/metrics/test_feature.py).
    from evaluation.metrics.feature import frechet_distance_from_features

    assert fid.value == pytest.approx(frechet_distance_from_features(generated, real), rel=1e-6)


@pytest.mark.django_db
def test_private_task_results_are_hidden_from_other_users(client, reader_user):
    task = phantom_task(n_cases=2, data_range=1.5)
    task.is_public = False
    task.save()
    run = succeeded_run(task, noisy(0.05, seed=1), samples=2)
    evaluate(run)
    result = CaseResult.objects.filter(run=run).first()
    urls = [
        f"/api/runs/{run.pk}/evaluation/",
        f"/api/runs/{run.pk}/case-results/",
        f"/runs/{run.pk}/case-results/{result.pk}/uncertainty.png",
    ]
    for url in urls:
        assert client.get(url).status_code == 404, url
    client.force_login(reader_user)
    for url in urls:
        assert client.get(url).status_code == 404, url
    assert client.post(f"/runs/{run.pk}/evaluate/").status_code == 404  # the run does not exist for them
    assert Evaluation.objects.get(run=run).status == JobStatus.SUCCEEDED


@pytest.mark.django_db
def test_case_results_api_lists_every_case_with_its_status(client):
    task = phantom_task(n_cases=3, data_range=1.5)

    def make(case_id, reference, sample):
        return reference[:, :-1] if case_id == "case001" else reference + 0.01

    run = succeeded_run(task, make)
    evaluate(run)
    rows = client.get(f"/api/runs/{run.pk}/case-results/").json()["results"]
    assert [row["case_id"] for row in rows] == ["case000", "case001", "case002"]
    assert [row["status"] for row in rows] == ["ok", "wrong_shape", "ok"]
    assert rows[0]["values"]["ssim"] == pytest.approx(
        CaseResult.objects.get(run=run, case__case_id="case000").value("ssim")
    )


@pytest.mark.django_db
def test_an_evaluation_that_cannot_run_fails_with_the_reason_and_can_be_rerun():
    task = TaskFactory()
    for i in range(2):
        case = Case.objects.create(dataset=task.dataset, case_id=f"flat{i}")
        add_image(case, ImageRole.INPUT, np.zeros((1, 24, 24)))
        add_image(case, ImageRole.REFERENCE, np.zeros((1, 24, 24)))  # no intensity range to take
    run = succeeded_run(task, lambda case_id, reference, sample: reference + 1)
    evaluation = services.request_evaluation(run)
    assert run_job(evaluation) == "failed"
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.FAILED and "set the task's data_range" in evaluation.error
    task.data_range = 2.0
    task.save()
    evaluation = evaluate(run)  # staff fix the task and re-run
    assert evaluation.error == "" and MetricResult.objects.get(run=run, metric="mae").value == pytest.approx(1.0)
    assert "No feature has a finite, nonzero reference standard deviation" in evaluation.unavailable["radiomics"]


@pytest.mark.django_db
def test_run_page_says_why_a_tier_was_not_computed(client):
    task = phantom_task(n_cases=2, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluate(run)
    page = client.get(run.get_absolute_url()).content.decode()
    assert 'id="evaluation-unavailable"' in page and "MEDGEN_INCEPTION_WEIGHTS" in page


@pytest.mark.django_db
def test_reaper_requeues_a_silent_evaluation_then_fails_it_after_its_attempts():
    from datetime import timedelta

    from django.utils import timezone

    task = phantom_task(n_cases=2, data_range=1.5)
    run = succeeded_run(task, noisy(0.05))
    evaluation = services.request_evaluation(run)
    long_ago = timezone.now() - timedelta(hours=1)
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=JobStatus.RUNNING, attempts=1, worker="elsewhere:1", heartbeat_at=long_ago
    )
    assert jobs.reap(jobs.kind_of(Evaluation), stale_seconds=60, max_attempts=2) == ([evaluation.pk], [])
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.QUEUED and "stopped reporting" in evaluation.log
    Evaluation.objects.filter(pk=evaluation.pk).update(
        status=JobStatus.RUNNING, attempts=2, worker="elsewhere:1", heartbeat_at=long_ago
    )
    assert jobs.reap(jobs.kind_of(Evaluation), stale_seconds=60, max_attempts=2) == ([], [evaluation.pk])
    evaluation.refresh_from_db()
    assert evaluation.status == JobStatus.FAILED and "2 attempt(s) were used" in evaluation.error


@pytest.mark.django_db
def test_one_output_of_huge_finite_values_is_named_and_excluded_not_the_whole_evaluation():
    task = phantom_task(n_cases=4, data_range=1.5)

    def one_extreme(case_id, reference, sample):
        return np.full_like(reference, 1e30) if case_id == "case001" else reference * 0.9

    run = succeeded_run(task, one_extreme)
    evaluation = evaluate(run)
    assert evaluation.status == JobStatus.SUCCEEDED
    extreme = CaseResult.objects.get(run=run, case__case_id="case001")
    assert extreme.status == CaseStatus.EXTREME and "1e+30" in extreme.problem and extreme.values == {}
    assert CaseResult.objects.filter(run=run, status=CaseStatus.OK).count() == 3
    ssim = MetricResult.objects.get(run=run, metric="ssim")
    assert ssim.n_cases == 3 and ssim.n_excluded == 1 and math.isfinite(ssim.value)
    for result in MetricResult.objects.filter(run=run, tier="feature"):
        assert result.n_cases == 3
