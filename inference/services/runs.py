"""Creating, cancelling and executing inference runs (a run is a kind of `core.models.Job`).

`execute` is the job handler for inference runs (`core.jobs` claims the run, beats its heartbeat
and finishes it): it skips cases whose outputs are already stored, writes each output with
update-or-create on the unique (run, case, sample), and reports progress after every batch,
which also stops it once a cancel or a newer attempt took the run away.
"""

import contextlib
import logging

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count

from core import jobs
from core.errors import Conflict, InvalidInput
from core.models import JobStatus

from .. import runner
from ..models import CaseOutput, Dataset, GenerativeModel, ImageRole, ModelStatus, Run, RunKind
from ..storage import content_hash, save_array
from .sandboxed import open_model

log = logging.getLogger(__name__)


class RunError(InvalidInput):
    """A run cannot be created or cannot finish as asked; the message says why (400, or the run's error)."""


class RunConflict(Conflict, RunError):
    """The run's state does not allow the change (409)."""


class RunCaseError(RunError):
    def __init__(self, case, reason):
        super().__init__(f"case '{case.case_id}': {reason}")


def sampling_settings(
    model: GenerativeModel, *, sampling_steps: int | None, scheduler: str, samples_per_case: int | None
) -> dict:
    """The run fields of the sampling settings asked for, checked against the model; RunError says what is wrong.

    A noise predictor samples with `scheduler` (ddpm or ddim; the declared one when empty) for
    `sampling_steps` (the scheduler's default when None), `samples_per_case` seeded samples (the model's
    count when None). Other models take none of these (their samples per case are declared)."""
    if not model.is_noise_predictor:
        if sampling_steps is not None or scheduler:
            raise RunError(f"Model '{model.name}' is not a diffusion noise predictor: it takes no sampling steps.")
        if samples_per_case not in (None, model.samples_by_default):
            raise RunError(f"Model '{model.name}' takes {model.samples_by_default} sample(s) per case, as declared.")
        return {"samples_per_case": model.samples_by_default}
    spec = model.scheduler_spec
    kind = scheduler or spec.kind
    steps = spec.default_steps(kind) if sampling_steps is None else sampling_steps
    try:
        spec.check_steps(steps, kind)
    except ValueError as exc:
        raise RunError(str(exc)) from None
    samples = model.samples_per_case if samples_per_case is None else samples_per_case
    if isinstance(samples, bool) or not isinstance(samples, int) or not 1 <= samples <= MAX_SAMPLES:
        raise RunError(f"Samples per case are a whole number from 1 to {MAX_SAMPLES}.")
    return {"sampling_steps": steps, "scheduler": kind, "samples_per_case": samples}


MAX_SAMPLES = 64


def create_run(
    model: GenerativeModel,
    *,
    user=None,
    name: str = "",
    seed: int = 0,
    sampling_steps: int | None = None,
    scheduler: str = "",
    samples_per_case: int | None = None,
    sweep: str = "",
    dataset: Dataset | None = None,
    probe_of: Run | None = None,
) -> Run:
    """A run of `model` on its task's dataset (or on `dataset`, e.g. a probe set's, with `probe_of` its main
    run); queued now if the model is valid, else when it is.

    For a diffusion noise predictor the sampling settings are run parameters (`sampling_settings`)."""
    if model.status == ModelStatus.INVALID:
        raise RunError(f"Model '{model.name}' failed validation and cannot run: {model.validation_error}")
    total = (dataset or model.task.dataset).cases.count()
    if total == 0:
        raise RunError(f"Task '{model.task.name}' has no cases to run on.")
    settings_ = sampling_settings(
        model, sampling_steps=sampling_steps, scheduler=scheduler, samples_per_case=samples_per_case
    )
    with transaction.atomic():
        run = Run.objects.create(
            name=name or model.name,
            task=model.task,
            model=model,
            kind=RunKind.INFERENCE,
            progress_total=total,
            seed=seed,
            requested_by=user,
            sweep=sweep,
            dataset=dataset,
            probe_of=probe_of,
            **settings_,
        )
        described = ""
        if run.sampling_steps is not None:
            described = f"; {run.scheduler.upper()} {run.sampling_steps} steps, {run.samples_per_case} sample(s)"
        run.append_log(f"created for model '{model.name}' on {total} cases{described}")
        if model.status == ModelStatus.VALID:
            jobs.queue(run)
    return run


def cancel_run(run_id: int) -> Run:
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.is_final:
            raise RunConflict(f"The run has already {run.status}; there is nothing to cancel.")
        run.transition(JobStatus.CANCELLED, error="Cancelled by a user.")
    return run


def execute(run, context):
    """Job handler: run the model over every case of the run's dataset (`Run.cases_dataset`) and store the outputs."""
    model = run.model
    samples = run.samples_per_case
    cases = list(run.cases_dataset.cases.order_by("case_id").prefetch_related("images"))
    done = {
        row["case_id"]
        for row in CaseOutput.objects.filter(run=run).values("case_id").annotate(n=Count("id"))
        if row["n"] >= samples
    }
    todo = [(position, case) for position, case in enumerate(cases) if case.pk not in done]
    context.progress(total=len(cases), done=len(done))

    with contextlib.ExitStack() as stack:
        try:
            loaded = stack.enter_context(open_model(model, log=context.log, sampling=run.sampling()))
        except runner.ModelArtifactError as exc:
            raise RunError(f"the model could not be loaded: {exc}") from None
        context.progress(device=loaded.device)
        context.log(f"model loaded on {loaded.device} in a sandbox process; {len(todo)} of {len(cases)} cases to do")
        if run.sampling_steps is not None:
            context.log(
                f"sampling in the sandbox: {run.scheduler.upper()} with {run.sampling_steps} steps "
                f"(MONAI's scheduler), {samples} sample(s) per case, seed {run.seed}"
            )
        _predict_all(run, context, model, loaded, todo, samples)

    latencies = list(CaseOutput.objects.filter(run=run, sample=0).values_list("latency_ms", flat=True))
    total_seconds = float(np.sum(latencies) / 1000 * samples) if latencies else 0.0
    context.finish(
        JobStatus.SUCCEEDED,
        progress_done=len(cases),
        total_inference_seconds=total_seconds,
        throughput_cases_per_s=(len(cases) / total_seconds) if total_seconds else None,
        latency_ms_p50=float(np.percentile(latencies, 50)) if latencies else None,
        latency_ms_p95=float(np.percentile(latencies, 95)) if latencies else None,
    )


def _predict_all(run, context, model, loaded, todo, samples):
    batch_size = settings.MEDGEN_INFERENCE_BATCH_SIZE
    for start in range(0, len(todo), batch_size):
        context.check()
        chunk = todo[start : start + batch_size]
        arrays = [_case_input(case, model) for _, case in chunk]
        try:
            predictions = runner.predict_cases(
                loaded,
                arrays,
                spatial_dims=model.spatial_dims,
                normalisation=model.normalisation,
                samples=samples,
                seed=run.seed if (model.stochastic or model.is_noise_predictor) else None,
                batch_size=batch_size,
                positions=[position for position, _ in chunk],
            )
        except Exception as exc:
            names = ", ".join(f"'{case.case_id}'" for _, case in chunk)
            raise RunError(f"the model failed on case(s) {names}: {runner.first_line(exc)}") from None
        for (_, case), prediction, array in zip(chunk, predictions, arrays, strict=True):
            expected = (model.out_channels, *array.shape[1:])
            for sample, out in enumerate(prediction.samples):
                if tuple(out.shape) != expected:
                    raise RunCaseError(case, f"the model returned shape {tuple(out.shape)}, expected {expected}")
                store_output(run, case, sample, out, latency_ms=1000 * prediction.seconds_per_sample)
        context.progress(done=CaseOutput.objects.filter(run=run, sample=samples - 1).count())


def _case_input(case, model):
    """The case's inputs concatenated along channels, checked against the model's declaration."""
    inputs = sorted((im for im in case.images.all() if im.role == ImageRole.INPUT), key=lambda im: im.index)
    if not inputs:
        raise RunCaseError(case, "the case has no input image")
    try:
        array = np.concatenate([im.load() for im in inputs], axis=0)
        runner.check_case_shape(array.shape, model.in_channels, model.spatial_shape)
    except (runner.ShapeMismatch, ValueError) as exc:
        raise RunCaseError(case, str(exc)) from None
    return array


def store_output(run, case, sample, array, *, latency_ms=None):
    """Write one output; a second write for the same (run, case, sample) replaces the first."""
    array = np.asarray(array, dtype=np.float32)
    output = CaseOutput.objects.filter(run=run, case=case, sample=sample).first() or CaseOutput(
        run=run, case=case, sample=sample
    )
    save_array(output.array, f"{case.pk}_s{sample}.npy", array)
    output.shape = list(array.shape)
    output.latency_ms = latency_ms
    output.nonfinite_count = int(array.size - np.count_nonzero(np.isfinite(array)))
    output.content_sha256 = content_hash(array)
    output.save()
    return output
