"""Diffusion noise predictors as a model kind: uploaded with a declared scheduler, validated and run in the
sandbox child with the platform's sampling loop (steps, samples and seed as run parameters), and sweeps of
runs over the number of steps (idempotent, cancellable). Expected outputs are the hand-computed DDIM
trajectories of `test_sampling`."""

from datetime import timedelta

import numpy as np
import pytest
import torch
from django.utils import timezone

from core import jobs
from core.models import JobStatus
from inference import runner
from inference.models import Case, CaseOutput, GenerativeModel, ImageRole, ModelStatus, Run, TaskKind
from inference.sampling import SchedulerSpec
from inference.services import artifacts, runs, sweeps
from tests.inference.test_sampling import Linear, ddim_reference, onnx_linear
from tests.support.factories import Scale, add_image, make_task, save_torchscript
from tests.support.jobs import run_job, validate

pytestmark = pytest.mark.django_db

SCHEDULER = {"kind": "ddim", "num_train_timesteps": 20, "clip_sample": False}


class NaNBand(torch.nn.Module):
    """ε = 0, except NaN for 30 ≤ t < 50: the dry run (t = 50, 0) passes, 10 DDIM steps meet t = 40."""

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        zero = torch.zeros_like(x[:, 0:1])
        step = int(t[0])
        if step >= 30 and step < 50:
            return zero + float("nan")
        return zero


def diffusion_model(task, module, tmp_path, name="eps", scheduler=SCHEDULER, **fields):
    path = save_torchscript(module, tmp_path / f"{name}.pt")
    fields.setdefault("spatial_shape", [None, None])
    model = artifacts.register_model(path, name=name, task=task, family="diffusion", scheduler=scheduler, **fields)
    assert validate(model) == ModelStatus.VALID, model.validation_error
    model.refresh_from_db()
    return model


def test_a_run_samples_the_ddim_trajectory_of_every_case_and_sample(tmp_path):
    task = make_task(n_cases=3, shape=(1, 8, 8))
    model = diffusion_model(task, Linear(), tmp_path, samples_per_case=2)
    assert model.family == "diffusion" and model.scheduler["schedule"] == "linear_beta"
    run = runs.create_run(model, seed=7, sampling_steps=4)
    assert (run.scheduler, run.sampling_steps, run.samples_per_case) == ("ddim", 4, 2)
    assert run_job(run) == "succeeded"
    run.refresh_from_db()
    assert run.latency_ms_p50 > 0 and run.latency_ms_p95 >= run.latency_ms_p50
    assert "DDIM with 4 steps" in run.log
    spec = SchedulerSpec.from_dict(SCHEDULER)
    outputs = CaseOutput.objects.filter(run=run).select_related("case")
    assert outputs.count() == 6
    positions = {case.pk: i for i, case in enumerate(task.dataset.cases.order_by("case_id"))}
    for output in outputs:
        condition = output.case.image("input").load()[0].astype(np.float64)
        seed = runner.sample_seed(7, output.sample, positions[output.case_id])
        np.testing.assert_allclose(output.load(), ddim_reference(spec, 4, condition, seed), atol=1e-4)
        assert output.latency_ms > 0
    first = CaseOutput.objects.get(run=run, case__case_id="case000", sample=0).load()
    second = CaseOutput.objects.get(run=run, case__case_id="case000", sample=1).load()
    assert np.abs(first - second).max() > 1e-2


def test_a_resumed_run_samples_the_missing_cases_as_the_first_attempt_did(tmp_path):
    task = make_task(n_cases=4, shape=(1, 8, 8))
    model = diffusion_model(task, Linear(), tmp_path)
    run = runs.create_run(model, seed=3, sampling_steps=3)
    assert run_job(run) == "succeeded"
    before = {o.case.case_id: o.load() for o in CaseOutput.objects.filter(run=run).select_related("case")}
    # A worker lost half-way: the outputs of cases 1 and 3 (not one contiguous batch) are gone.
    CaseOutput.objects.filter(run=run, case__case_id__in=["case001", "case003"]).delete()
    Run.objects.filter(pk=run.pk).update(status=JobStatus.RUNNING, heartbeat_at=timezone.now() - timedelta(hours=1))
    assert jobs.reap(jobs.kind_of(Run), stale_seconds=60, max_attempts=3)[0] == [run.pk]
    assert run_job(run) == "succeeded"
    after = {o.case.case_id: o.load() for o in CaseOutput.objects.filter(run=run).select_related("case")}
    assert sorted(after) == sorted(before)
    for case_id, array in before.items():
        np.testing.assert_array_equal(after[case_id], array)


def test_the_defaults_and_the_checks_of_the_sampling_settings(tmp_path):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    model = diffusion_model(task, Linear(), tmp_path)
    run = runs.create_run(model)
    assert (run.scheduler, run.sampling_steps, run.samples_per_case) == ("ddim", 20, 1)  # min(50, training steps)
    assert runs.create_run(model, scheduler="ddpm").sampling_steps == 20
    with pytest.raises(runs.RunError, match="DDPM samples all 20 training steps; use DDIM for 5 steps"):
        runs.create_run(model, scheduler="ddpm", sampling_steps=5)
    with pytest.raises(runs.RunError, match="from 1 to 20"):
        runs.create_run(model, sampling_steps=21)
    plain = artifacts.register_model(
        save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[8, 8]
    )
    with pytest.raises(runs.RunError, match="not a diffusion noise predictor"):
        runs.create_run(plain, sampling_steps=10)


def test_a_nan_from_the_predictor_fails_the_run_naming_the_step(tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    model = diffusion_model(task, NaNBand(), tmp_path, scheduler={"kind": "ddim", "num_train_timesteps": 100})
    run = runs.create_run(model, sampling_steps=10)
    assert run_job(run) == "failed"
    run.refresh_from_db()
    assert run.status == JobStatus.FAILED
    assert "case(s) 'case000', 'case001'" in run.error
    assert "NaN or Inf at sampling step 6 of 10 (t=40)" in run.error


def test_the_upload_checks_the_declared_scheduler(tmp_path):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    path = save_torchscript(Linear(), tmp_path / "l.pt")
    cases = [
        ({"family": "gan", "scheduler": SCHEDULER}, "family: A noise predictor with a scheduler is of the diffusion"),
        ({"family": "diffusion", "scheduler": {"kind": "ddim"}}, "scheduler: The scheduler needs"),
        ({"family": "diffusion", "scheduler": {**SCHEDULER, "schedule": "warp"}}, "β schedule 'warp'"),
        ({"family": "dragon"}, "family: Value 'dragon' is not a valid choice"),
    ]
    for fields, message in cases:
        with pytest.raises(artifacts.ModelUploadError, match=message):
            artifacts.register_model(path, name="x", task=task, spatial_shape=[8, 8], **fields)
    recon = make_task(n_cases=1, shape=(2, 8, 8), kind=TaskKind.RECONSTRUCTION)
    with pytest.raises(artifacts.ModelUploadError, match="2-channel"):
        artifacts.register_model(
            path, name="x", task=recon, spatial_shape=[8, 8], family="diffusion", scheduler=SCHEDULER
        )


class Zero(torch.nn.Module):
    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x[:, 0:1])


def test_a_reconstruction_run_is_data_consistent(tmp_path):
    rng = np.random.default_rng(2)
    task = make_task(n_cases=0, kind=TaskKind.RECONSTRUCTION)
    image = rng.random((16, 16))
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))
    columns = rng.random(16) < 0.3
    columns[7:9] = True
    mask = np.broadcast_to(columns, (16, 16))
    case = Case.objects.create(dataset=task.dataset, case_id="k")
    add_image(case, ImageRole.INPUT, np.stack([(kspace * mask).real, (kspace * mask).imag]))
    add_image(case, ImageRole.REFERENCE, image[None])
    model = diffusion_model(task, Zero(), tmp_path, in_channels=2, spatial_shape=[16, 16])
    run = runs.create_run(model, sampling_steps=5)
    assert run_job(run) == "succeeded", Run.objects.get(pk=run.pk).error
    out = CaseOutput.objects.get(run=run).load()[0].astype(np.float64)
    back = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(out), norm="ortho"))
    both = mask & np.roll(mask[::-1, ::-1], 1, axis=(0, 1))  # measured with its mirror: exact for a real image
    np.testing.assert_allclose(back[both], kspace[both], atol=1e-4)


# --------------------------------------------------------------------------- sweeps


def test_a_sweep_is_idempotent_and_cancellable(tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    model = diffusion_model(task, Linear(), tmp_path)
    first = sweeps.start_sweep(model, steps=[2, 5, 10], samples_per_case=2, seed=3)
    assert [r.sampling_steps for r in first] == [2, 5, 10]
    assert {(r.status, r.scheduler, r.samples_per_case, r.seed) for r in first} == {(JobStatus.QUEUED, "ddim", 2, 3)}
    assert len({r.sweep for r in first}) == 1
    again = sweeps.start_sweep(model, steps=[2, 5, 10], samples_per_case=2, seed=3)
    assert [r.pk for r in again] == [r.pk for r in first]
    assert Run.objects.filter(model=model).count() == 3
    # Another seed is another sweep.
    other = sweeps.start_sweep(model, steps=[2], samples_per_case=2, seed=4)
    assert other[0].pk not in {r.pk for r in first}

    assert run_job(first[0]) == "succeeded"
    cancelled = sweeps.cancel_sweep(model, first[0].sweep)
    assert sorted(r.pk for r in cancelled) == sorted(r.pk for r in first[1:])
    statuses = dict(Run.objects.filter(pk__in=[r.pk for r in first]).values_list("sampling_steps", "status"))
    assert statuses == {2: JobStatus.SUCCEEDED, 5: JobStatus.CANCELLED, 10: JobStatus.CANCELLED}
    assert run_job(first[1]) == "skipped"
    assert not CaseOutput.objects.filter(run=first[1]).exists()
    # Started again: the succeeded setting is kept, the cancelled ones run anew.
    restarted = sweeps.start_sweep(model, steps=[2, 5, 10], samples_per_case=2, seed=3)
    assert restarted[0].pk == first[0].pk
    assert restarted[1].pk not in {r.pk for r in first} and restarted[1].status == JobStatus.QUEUED
    with pytest.raises(runs.RunError, match="not a diffusion noise predictor"):
        plain = artifacts.register_model(
            save_torchscript(Scale(), tmp_path / "p.pt"), name="p", task=task, spatial_shape=[8, 8]
        )
        sweeps.start_sweep(plain)


def test_an_onnx_noise_predictor_runs_in_the_sandbox(tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    path = onnx_linear(tmp_path / "linear.onnx")
    model = artifacts.register_model(
        path, name="onnx-eps", task=task, family="diffusion", scheduler=SCHEDULER, spatial_shape=[8, 8]
    )
    assert validate(model) == ModelStatus.VALID, GenerativeModel.objects.get(pk=model.pk).validation_error
    run = runs.create_run(GenerativeModel.objects.get(pk=model.pk), seed=2, sampling_steps=5)
    assert run_job(run) == "succeeded"
    spec = SchedulerSpec.from_dict(SCHEDULER)
    for position, case in enumerate(task.dataset.cases.order_by("case_id")):
        output = CaseOutput.objects.get(run=run, case=case).load()
        condition = case.image("input").load()[0].astype(np.float64)
        seed = runner.sample_seed(2, 0, position)
        np.testing.assert_allclose(output, ddim_reference(spec, 5, condition, seed), atol=1e-4)
