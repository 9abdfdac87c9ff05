"""Creating, queueing, executing, cancelling and reaping runs.

`execute_run` is written to be safe when a message is delivered twice or a worker dies:
it claims the run under a row lock (queued → running, attempt number += 1), skips cases
whose outputs are already stored, writes each output with update-or-create on the unique
(run, case, sample), and re-reads the run between batches so a cancel, or a reaper that
handed the run to another attempt, stops it.
"""

import logging
import time
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from .. import jobs, runner
from ..models import CaseOutput, GenerativeModel, ImageRole, ModelStatus, Run, RunKind, RunStatus
from ..storage import save_array
from .artifacts import dispatch_validation, local_copy

log = logging.getLogger(__name__)


class RunError(Exception):
    """A run cannot be created or changed as asked; the message says why (400)."""


def create_run(model, *, user=None, name="", seed=0):
    """A run of `model` on its task's dataset; queued now if the model is valid, else when it is."""
    if model.status == ModelStatus.INVALID:
        raise RunError(f"Model '{model.name}' failed validation and cannot run: {model.validation_error}")
    total = model.task.dataset.cases.count()
    if total == 0:
        raise RunError(f"Task '{model.task.name}' has no cases to run on.")
    with transaction.atomic():
        run = Run.objects.create(
            name=name or model.name,
            task=model.task,
            model=model,
            kind=RunKind.INFERENCE,
            progress_total=total,
            seed=seed,
            created_by=user,
        )
        run.append_log(f"created for model '{model.name}' on {total} cases")
        if model.status == ModelStatus.VALID:
            queue_run(run)
    return run


def queue_run(run):
    """pending (or a lost running) → queued, and send the job once the transaction commits."""
    run.transition(RunStatus.QUEUED)
    run_id, kind = run.pk, run.kind
    transaction.on_commit(lambda: dispatch(run_id, kind))


def dispatch(run_id, kind):
    from .. import tasks

    task = tasks.validate_submission if kind == RunKind.SUBMISSION else tasks.run_inference
    task.delay(run_id)


def fail_run(run, error):
    run.transition(RunStatus.FAILED, error=error)


def cancel_run(run_id):
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        if run.is_final:
            raise RunError(f"The run has already {run.status}; there is nothing to cancel.")
        run.transition(RunStatus.CANCELLED, error="Cancelled by a user.")
    return run


def claim(run_id, kinds=(RunKind.INFERENCE,)):
    """queued → running under a row lock; returns (run, attempt) or (None, None) if not ours."""
    return jobs.claim(
        Run, run_id, queued=RunStatus.QUEUED, running=RunStatus.RUNNING, accept=lambda run: run.kind in kinds
    )


def still_ours(run_id, attempt):
    """False once the run was cancelled, failed, or handed to a newer attempt."""
    return jobs.still_ours(Run, run_id, attempt, RunStatus.RUNNING)


def finish(run_id, attempt, status, *, error="", **fields):
    """running → final, only if this attempt still owns the run. Returns True if it moved."""
    return jobs.finish(Run, run_id, attempt, RunStatus.RUNNING, status, error=error, **fields)


def execute_run(run_id):
    """Run the model over every case of the task's dataset and store the outputs."""
    run, attempt = claim(run_id)
    if run is None:
        return "skipped"
    try:
        return _execute(run, attempt)
    except Exception as exc:
        message = jobs.failure_message(exc, "run", RunError)
        finish(run_id, attempt, RunStatus.FAILED, error=message)
        return "failed"


def _execute(run, attempt):
    model = run.model
    samples = model.samples_per_case if model.stochastic else 1
    cases = list(run.task.dataset.cases.order_by("case_id").prefetch_related("images"))
    done = {
        row["case_id"]
        for row in CaseOutput.objects.filter(run=run).values("case_id").annotate(n=Count("id"))
        if row["n"] >= samples
    }
    todo = [(position, case) for position, case in enumerate(cases) if case.pk not in done]
    Run.objects.filter(pk=run.pk).update(progress_total=len(cases), progress_done=len(done))

    local = local_copy(model.artifact)
    try:
        loaded = runner.load_model(local, model.format, model.sha256)
    finally:
        if local.is_temporary:
            local.path.unlink(missing_ok=True)
    Run.objects.filter(pk=run.pk).update(device=loaded.device)
    with transaction.atomic():
        locked = Run.objects.select_for_update().get(pk=run.pk)
        locked.append_log(f"model loaded on {loaded.device}; {len(todo)} of {len(cases)} cases to do")

    batch_size = settings.MEDGEN_INFERENCE_BATCH_SIZE
    for start in range(0, len(todo), batch_size):
        if not still_ours(run.pk, attempt):
            log.info("run %s: stopped (cancelled or superseded)", run.pk)
            return "stopped"
        chunk = todo[start : start + batch_size]
        arrays = []
        for _, case in chunk:
            inputs = sorted((im for im in case.images.all() if im.role == ImageRole.INPUT), key=lambda im: im.index)
            if not inputs:
                raise RunCaseError(case, "the case has no input image")
            try:
                array = np.concatenate([im.load() for im in inputs], axis=0)
                runner.check_case_shape(array.shape, model.in_channels, model.spatial_shape)
            except (runner.ShapeMismatch, ValueError) as exc:
                raise RunCaseError(case, str(exc)) from None
            arrays.append(array)
        try:
            predictions = runner.predict_cases(
                loaded,
                arrays,
                spatial_dims=model.spatial_dims,
                normalisation=model.normalisation,
                samples=samples,
                seed=run.seed if model.stochastic else None,
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
        Run.objects.filter(pk=run.pk, attempts=attempt).update(
            progress_done=CaseOutput.objects.filter(run=run, sample=samples - 1).count(),
            heartbeat_at=timezone.now(),
        )

    latencies = list(CaseOutput.objects.filter(run=run, sample=0).values_list("latency_ms", flat=True))
    total_seconds = float(np.sum(latencies) / 1000 * samples) if latencies else 0.0
    moved = finish(
        run.pk,
        attempt,
        RunStatus.SUCCEEDED,
        progress_done=len(cases),
        total_inference_seconds=total_seconds,
        throughput_cases_per_s=(len(cases) / total_seconds) if total_seconds else None,
        latency_ms_p50=float(np.percentile(latencies, 50)) if latencies else None,
        latency_ms_p95=float(np.percentile(latencies, 95)) if latencies else None,
    )
    return "succeeded" if moved else "stopped"


class RunCaseError(RunError):
    def __init__(self, case, reason):
        super().__init__(f"case '{case.case_id}': {reason}")


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
    output.save()
    return output


def reap_stale_runs(stale_seconds=None, max_attempts=None):
    """Runs whose worker stopped reporting: requeue them, or fail them after too many attempts.

    Never leaves a run 'running' forever. Returns the ids requeued and failed.
    """
    stale_seconds = settings.MEDGEN_RUN_STALE_SECONDS if stale_seconds is None else stale_seconds
    requeued, failed = jobs.reap_stale(
        Run,
        running=RunStatus.RUNNING,
        stale_seconds=stale_seconds,
        max_attempts=settings.MEDGEN_RUN_MAX_ATTEMPTS if max_attempts is None else max_attempts,
        requeue=queue_run,
        fail=fail_run,
    )
    redispatch_lost_messages(timezone.now() - timedelta(seconds=stale_seconds))
    return requeued, failed


def redispatch_lost_messages(cutoff):
    """Send the job again for runs queued before `cutoff` and still unclaimed.

    Covers a message lost on the way (a broker restarted without persistence, a dispatch
    that failed after the commit). A second message for a run already taken is a no-op.
    """
    stuck = list(Run.objects.filter(status=RunStatus.QUEUED, queued_at__lt=cutoff).values_list("pk", "kind"))
    for run_id, kind in stuck:
        Run.objects.filter(pk=run_id).update(queued_at=timezone.now())
        dispatch(run_id, kind)
    # The same for models whose validation job never reached a worker.
    unvalidated = list(
        GenerativeModel.objects.filter(status=ModelStatus.UPLOADED, validation_requested_at__lt=cutoff).values_list(
            "pk", flat=True
        )
    )
    for model_id in unvalidated:
        dispatch_validation(model_id)
    return [run_id for run_id, _ in stuck] + unvalidated


def wait_for(run_id, statuses, timeout=60.0, poll=0.2):
    """Poll until the run reaches one of `statuses` (used by the demo command and tests)."""
    deadline = time.monotonic() + timeout
    while True:
        run = Run.objects.get(pk=run_id)
        if run.status in statuses or time.monotonic() > deadline:
            return run
        time.sleep(poll)
