"""Runs: the state machine, execution, idempotency, cancel and the reaper (services called in-process).

The same services run inside the real worker in test_worker_jobs.py.
"""

from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from core import jobs
from core.models import IllegalTransition, JobStatus
from inference.models import CaseOutput, ModelStatus, ModelValidation, Run
from inference.services import artifacts, runs
from tests.support.factories import NoisyScale, Scale, WrongShape, make_task, save_torchscript
from tests.support.jobs import run_job, validate

pytestmark = pytest.mark.django_db

RUNS = jobs.kind_of(Run)


def valid_model(task, module, tmp_path, name="m", **fields):
    path = save_torchscript(module, tmp_path / f"{name}.pt")
    fields.setdefault("spatial_shape", [None, None])
    model = artifacts.register_model(path, name=name, task=task, **fields)
    assert validate(model) == ModelStatus.VALID
    model.refresh_from_db()
    return model


def test_state_machine_allows_only_the_documented_moves():
    run = Run(status=JobStatus.PENDING)
    run.transition(JobStatus.QUEUED, save=False)
    run.transition(JobStatus.RUNNING, save=False)
    assert run.started_at and run.heartbeat_at
    run.transition(JobStatus.SUCCEEDED, save=False)
    assert run.finished_at
    for target in JobStatus:
        with pytest.raises(IllegalTransition):
            run.transition(target, save=False)
    with pytest.raises(IllegalTransition):
        Run(status=JobStatus.PENDING).transition(JobStatus.SUCCEEDED, save=False)
    with pytest.raises(IllegalTransition):
        Run(status=JobStatus.QUEUED).transition(JobStatus.SUCCEEDED, save=False)


def test_run_stores_one_output_per_case_with_latency(tmp_path):
    task = make_task(n_cases=5, shape=(1, 12, 12))
    model = valid_model(task, Scale(2.0), tmp_path)
    run = runs.create_run(model)
    assert run.status == JobStatus.QUEUED
    assert run_job(run) == "succeeded"
    run.refresh_from_db()
    assert run.status == JobStatus.SUCCEEDED
    assert (run.progress_done, run.progress_total) == (5, 5)
    assert run.device == "cpu" and run.attempts == 1
    assert run.latency_ms_p50 > 0 and run.latency_ms_p95 >= run.latency_ms_p50 and run.throughput_cases_per_s > 0
    outputs = CaseOutput.objects.filter(run=run)
    assert outputs.count() == 5
    for output in outputs:
        expected = output.case.image("input").load() * 2
        np.testing.assert_allclose(output.load(), expected, rtol=1e-6)
        assert output.latency_ms > 0 and output.nonfinite_count == 0
    assert "queued → running" in run.log and "running → succeeded" in run.log


def test_task_executed_twice_keeps_one_output_per_case(tmp_path):
    task = make_task(n_cases=3)
    model = valid_model(task, Scale(), tmp_path)
    run = runs.create_run(model)
    run_job(run)
    assert run_job(run) == "skipped"
    assert CaseOutput.objects.filter(run=run).count() == 3


def test_resumed_run_redoes_only_missing_cases_and_overwrites_files(tmp_path, isolated_media):
    task = make_task(n_cases=4)
    model = valid_model(task, Scale(), tmp_path)
    run = runs.create_run(model)
    run_job(run)
    # Simulate a worker lost half-way: back to running with two outputs gone, then requeued.
    CaseOutput.objects.filter(run=run, case__case_id__in=["case002", "case003"]).delete()
    Run.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    requeued, failed = jobs.reap(RUNS, stale_seconds=60, max_attempts=3)
    assert requeued == [run.pk] and failed == []
    assert run_job(run) == "succeeded"
    assert CaseOutput.objects.filter(run=run).count() == 4
    files = list((isolated_media / "runs" / str(run.uid)).iterdir())
    assert len(files) == 4


def test_reaper_fails_a_run_after_max_attempts_with_a_reason(tmp_path):
    task = make_task(n_cases=2)
    model = valid_model(task, Scale(), tmp_path)
    run = runs.create_run(model)
    Run.objects.filter(pk=run.pk).update(
        status=JobStatus.RUNNING, attempts=3, worker="w1", heartbeat_at=timezone.now() - timedelta(hours=1)
    )
    requeued, failed = jobs.reap(RUNS, stale_seconds=60, max_attempts=3)
    run.refresh_from_db()
    assert failed == [run.pk] and requeued == []
    assert run.status == JobStatus.FAILED
    assert "stopped reporting" in run.error


def test_reaper_leaves_a_fresh_running_run_alone(tmp_path):
    task = make_task(n_cases=2)
    model = valid_model(task, Scale(), tmp_path)
    run = runs.create_run(model)
    Run.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now())
    assert jobs.reap(RUNS, stale_seconds=60) == ([], [])


def test_cancelled_before_start_never_runs(tmp_path):
    task = make_task(n_cases=2)
    model = valid_model(task, Scale(), tmp_path)
    run = runs.create_run(model)
    runs.cancel_run(run.pk)
    assert run_job(run) == "skipped"
    assert not CaseOutput.objects.filter(run=run).exists()
    with pytest.raises(runs.RunError, match="nothing to cancel"):
        runs.cancel_run(run.pk)


def test_a_case_that_does_not_fit_fails_the_run_naming_the_case(tmp_path):
    task = make_task(n_cases=3, shape=(1, 16, 16))
    from inference.models import Case
    from tests.support.factories import add_image

    odd = Case.objects.create(dataset=task.dataset, case_id="odd-one")
    add_image(odd, "input", np.zeros((1, 20, 16)))
    model = valid_model(task, Scale(), tmp_path, spatial_shape=[16, 16])
    run = runs.create_run(model)
    assert run_job(run) == "failed"
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "case 'odd-one'" in run.error and "(20, 16)" in run.error


def test_model_with_wrong_output_shape_is_invalid_and_its_pending_runs_fail(tmp_path):
    task = make_task(n_cases=2)
    model = artifacts.register_model(
        save_torchscript(WrongShape(), tmp_path / "w.pt"), name="w", task=task, spatial_shape=[32, 32]
    )
    run = runs.create_run(model)
    assert run.status == JobStatus.PENDING
    assert validate(model) == ModelStatus.INVALID
    model.refresh_from_db()
    run.refresh_from_db()
    assert "Wrong output shape" in model.validation_error
    assert run.status == JobStatus.FAILED and "failed validation" in run.error
    with pytest.raises(runs.RunError, match="failed validation"):
        runs.create_run(model)


def test_stochastic_model_stores_every_sample_repeatably(tmp_path):
    task = make_task(n_cases=3)
    model = valid_model(task, NoisyScale(), tmp_path, stochastic=True, samples_per_case=3)
    first = runs.create_run(model, seed=7)
    second = runs.create_run(model, seed=7)
    run_job(first)
    run_job(second)
    assert CaseOutput.objects.filter(run=first).count() == 9
    case = task.dataset.cases.first()
    a = [o.load() for o in CaseOutput.objects.filter(run=first, case=case).order_by("sample")]
    b = [o.load() for o in CaseOutput.objects.filter(run=second, case=case).order_by("sample")]
    assert not np.allclose(a[0], a[1])
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    first.refresh_from_db()
    assert first.progress_done == 3


def test_nan_outputs_are_stored_and_counted(tmp_path):
    import torch

    class HalfNan(torch.nn.Module):
        def forward(self, x):
            y = x.clone()
            y[:, :, 0, :] = float("nan")
            return y

    task = make_task(n_cases=2, shape=(1, 8, 8))
    path = save_torchscript(HalfNan(), tmp_path / "nan.pt")
    model = artifacts.register_model(path, name="nan", task=task, spatial_shape=[8, 8])
    # The dry run refuses NaN, so such a model cannot even become runnable.
    assert validate(model) == ModelStatus.INVALID
    model.refresh_from_db()
    assert "NaN" in model.validation_error


def test_reaper_sends_the_job_again_for_a_run_queued_too_long(tmp_path, monkeypatch):
    task = make_task(n_cases=1)
    model = valid_model(task, Scale(), tmp_path)
    run = runs.create_run(model)
    sent = []
    monkeypatch.setattr(jobs, "dispatch", lambda job: sent.append(job.pk))
    assert jobs.resend_lost(RUNS, cutoff=timezone.now() - timedelta(seconds=60)) == []
    Run.objects.filter(pk=run.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    jobs.reap(RUNS, stale_seconds=60)
    assert sent == [run.pk]
    jobs.reap(RUNS, stale_seconds=60)  # queued_at was refreshed: not sent a third time
    assert sent == [run.pk]
    assert run_job(run) == "succeeded"


def test_volume_cases_run_slice_by_slice_through_a_2d_model(tmp_path):
    task = make_task(n_cases=2, shape=(1, 5, 16, 16))
    model = valid_model(task, Scale(2.0), tmp_path, spatial_shape=[16, 16])
    run = runs.create_run(model)
    assert run_job(run) == "succeeded"
    for output in CaseOutput.objects.filter(run=run):
        assert output.shape == [1, 5, 16, 16]
        np.testing.assert_allclose(output.load(), output.case.image("input").load() * 2, rtol=1e-6)


def test_reaper_sends_validation_again_for_a_model_never_validated(tmp_path, monkeypatch):
    task = make_task(n_cases=1)
    sent = []
    monkeypatch.setattr(jobs, "dispatch", lambda job: sent.append(job.pk))
    model = artifacts.register_model(
        save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16]
    )
    validations = jobs.kind_of(ModelValidation)
    jobs.reap(validations, stale_seconds=60)
    assert sent == []  # just queued: its job may still be on the way
    ModelValidation.objects.filter(pk=model.validation.pk).update(queued_at=timezone.now() - timedelta(hours=1))
    jobs.reap(validations, stale_seconds=60)
    assert sent == [model.validation.pk]
    jobs.reap(validations, stale_seconds=60)  # the request time was refreshed: not sent every minute
    assert sent == [model.validation.pk]
