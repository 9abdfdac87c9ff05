"""The downstream-task tier: declaring it per task, the training job, the real→real reference, the results.

A task whose cases carry label masks can declare a downstream evaluation (`declare_downstream`):
a seeded split of its labelled cases into train and test, a segmentation recipe
(`segmentation.SegmentationConfig`) and seeds. For every run that succeeds (and once for the
real images), a job on the `inference` queue trains the network on the train cases' images —
the run's outputs (sample 0), or the real reference images for the reference — paired with
their labels, and scores it on the real reference images of the test cases. The numbers come
from `evaluation.segmentation`, which has no Django in it.

The job follows the platform's pattern (see `services.execute_evaluation`): it claims the row
under a lock (queued → running, attempt += 1), re-checks after every epoch that it still owns
it (a cancel or the reaper stops it), and writes results and the final state in one
transaction only while it does. A failure — a NaN loss included — fails the job with the
reason and never touches the run or its evaluation.

Results: the run's `MetricResult` rows of the clinical tier (`downstream_dice`,
`downstream_hd95`, `utility_ratio`), each with a CI over test cases and seeds.
"""

import dataclasses
import logging
import time

import numpy as np
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from inference import jobs
from inference.models import CaseOutput, ImageRole, Run, RunStatus

from . import segmentation
from .metrics import catalog
from .models import DownstreamJob, DownstreamSetup, DownstreamStatus, MetricResult

log = logging.getLogger(__name__)


class DownstreamError(Exception):
    """A downstream evaluation cannot be declared, requested or finished; the message says why."""


class Stopped(Exception):
    """The job was cancelled or handed to another attempt while this one trained."""


# ---------------------------------------------------------------------------- declaring


def _case_images(case, role):
    images = sorted((im for im in case.images.all() if im.role == role), key=lambda im: im.index)
    return images


def declare_downstream(
    task,
    *,
    config=segmentation.DEFAULT_CONFIG,
    seeds=(0, 1, 2),
    test_fraction=0.5,
    split_seed=0,
    auto_run=True,
    queue_existing=True,
    user=None,
):
    """Declare (or, while it has no results, re-declare) the task's downstream evaluation.

    Cases need a label and a reference image; the split puts only cases whose label has
    foreground into the test set (see `segmentation.split_cases`). With `queue_existing`, the
    real→real reference and every succeeded run of the task are queued.
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise DownstreamError("Give at least one seed, each once.")
    case_ids, labelled, unusable = [], [], []
    for case in task.dataset.cases.order_by("case_id").prefetch_related("images"):
        labels = _case_images(case, ImageRole.LABEL)
        if not labels or not _case_images(case, ImageRole.REFERENCE):
            unusable.append(case.case_id)
            continue
        case_ids.append(case.case_id)
        labelled.append(bool((labels[0].intensity_max or 0) > 0.5))
    try:
        train, test = segmentation.split_cases(case_ids, labelled, test_fraction=test_fraction, seed=split_seed)
    except ValueError as exc:
        raise DownstreamError(f"Task '{task.slug}' cannot have a downstream evaluation: {exc}") from None
    fields = {
        "name": config.name,
        "config": config.as_dict(),
        "seeds": seeds,
        "split_seed": split_seed,
        "test_fraction": test_fraction,
        "train_case_ids": train,
        "test_case_ids": test,
        "unlabelled_case_ids": unusable,
        "auto_run": auto_run,
    }
    with transaction.atomic():
        setup = DownstreamSetup.objects.select_for_update().filter(task=task).first()
        if setup is not None and setup.is_frozen:
            changed = [key for key, value in fields.items() if key != "auto_run" and getattr(setup, key) != value]
            if changed:
                raise DownstreamError(
                    f"The downstream evaluation of '{task.slug}' has results; its split, configuration and seeds "
                    f"are frozen (asked to change: {', '.join(changed)})."
                )
            setup.auto_run = auto_run
            setup.save(update_fields=["auto_run"])
        elif setup is None:
            setup = DownstreamSetup.objects.create(task=task, **fields)
        else:
            for key, value in fields.items():
                setattr(setup, key, value)
            setup.save()
    if queue_existing:
        request_reference(task, user=user, quiet=True)
        for run in Run.objects.filter(task=task, status=RunStatus.SUCCEEDED).order_by("pk"):
            try:
                request_downstream(run, user=user)
            except DownstreamError as exc:
                log.info("run %s: downstream not queued: %s", run.pk, exc)
    return setup


def setup_of(task):
    return DownstreamSetup.objects.filter(task=task).first()


# ---------------------------------------------------------------------------- requesting


def request_downstream(run, *, user=None):
    """Queue (or re-queue) the downstream job of a succeeded run; the real→real reference too if it never ran."""
    setup = setup_of(run.task)
    if setup is None:
        raise DownstreamError(f"Task '{run.task.slug}' has no downstream evaluation.")
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status != RunStatus.SUCCEEDED:
            raise DownstreamError(f"Only a succeeded run can be used for training; this run is {run.status}.")
        job, _ = DownstreamJob.objects.select_for_update().get_or_create(setup=setup, run=run)
        _requeue(job, user)
    request_reference(run.task, user=user, quiet=True, only_if_new=True)
    return job


def request_reference(task, *, user=None, quiet=False, only_if_new=False):
    """Queue the real→real reference job of the task (trained on the real reference images)."""
    setup = setup_of(task)
    if setup is None:
        raise DownstreamError(f"Task '{task.slug}' has no downstream evaluation.")
    with transaction.atomic():
        setup = DownstreamSetup.objects.select_for_update().get(pk=setup.pk)  # serialises concurrent get_or_create
        job, created = DownstreamJob.objects.select_for_update().get_or_create(setup=setup, run=None)
        if only_if_new and not created and job.status != DownstreamStatus.PENDING:
            return job
        try:
            _requeue(job, user)
        except DownstreamError:
            if not quiet:
                raise
    return job


def _requeue(job, user):
    if job.is_active:
        raise DownstreamError(f"The downstream job is already {job.status}.")
    job.requested_by = user
    job.progress_done = 0
    job.append_log(f"requested by {user or 'the platform'}", save=False)
    _queue(job)


def _queue(job):
    job.queue(dispatch)


def dispatch(job_id):
    from . import tasks

    tasks.run_downstream.delay(job_id)


def on_run_succeeded(sender, run_id, **kwargs):
    """Signal receiver: a task that declared a downstream evaluation with auto_run trains on each run that succeeds."""
    run = Run.objects.select_related("task").get(pk=run_id)
    setup = setup_of(run.task)
    if setup is None or not setup.auto_run:
        return None
    try:
        return request_downstream(run)
    except DownstreamError as exc:
        log.info("run %s: downstream not queued: %s", run_id, exc)
        return None


def cancel_downstream(job_id):
    with transaction.atomic():
        job = DownstreamJob.objects.select_for_update().get(pk=job_id)
        if job.is_final:
            raise DownstreamError(f"The downstream job has already {job.status}; there is nothing to cancel.")
        job.transition(DownstreamStatus.CANCELLED, error="Cancelled by a user.")
    return job


# ------------------------------------------------------------------------------- the job


def claim(job_id):
    return jobs.claim(DownstreamJob, job_id, queued=DownstreamStatus.QUEUED, running=DownstreamStatus.RUNNING)


def still_ours(job_id, attempt):
    return jobs.still_ours(DownstreamJob, job_id, attempt, DownstreamStatus.RUNNING)


def execute_downstream(job_id):
    """The Celery task's body: train and score every seed, store the results. Safe to run twice."""
    job, attempt = claim(job_id)
    if job is None:
        return "skipped"
    try:
        return _execute(job, attempt)
    except Stopped:
        return "stopped"
    except Exception as exc:
        message = jobs.failure_message(exc, "downstream job", (DownstreamError, segmentation.NonFiniteLoss))
        jobs.finish(DownstreamJob, job_id, attempt, DownstreamStatus.RUNNING, DownstreamStatus.FAILED, error=message)
        return "failed"


def _device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def job_config(setup):
    """The setup's recipe, on this worker's thread count (a setting: it does not change what is trained)."""
    config = segmentation.SegmentationConfig.from_dict(setup.config)
    return dataclasses.replace(config, threads=settings.MEDGEN_DOWNSTREAM_THREADS)


def _execute(job, attempt):
    started = time.monotonic()
    setup = job.setup
    config = job_config(setup)
    device = _device()
    train_images, train_labels, train_ids, skipped = _training_data(job, setup)
    test_images, test_labels, spacing = _test_data(setup)
    seeds = list(setup.seeds)
    total = config.epochs * len(seeds)
    DownstreamJob.objects.filter(pk=job.pk, attempts=attempt).update(
        device=device, progress_total=total, progress_done=0, curves={}, epoch=0, loss=None
    )
    _progress(job.pk, attempt, done=0, epoch=0, phase="data loaded")  # a heartbeat: loading volumes takes a while
    with transaction.atomic():
        locked = DownstreamJob.objects.select_for_update().get(pk=job.pk)
        locked.append_log(
            f"{config.name} on {device}: {len(train_ids)} training cases"
            + (f" ({len(skipped)} left out: {'; '.join(skipped)})" if skipped else "")
            + f", {len(setup.test_case_ids)} test cases, seeds {seeds}"
        )
    curves = {}
    dice, hd95 = [], []
    for position, seed in enumerate(seeds):
        curves[str(seed)] = {"loss": []}

        def on_epoch(epoch, loss, seed=seed, position=position):
            curves[str(seed)]["loss"].append(loss)
            _progress(
                job.pk,
                attempt,
                done=position * config.epochs + epoch,
                epoch=epoch,
                loss=loss,
                phase=f"seed {seed} ({position + 1}/{len(seeds)}), epoch {epoch}/{config.epochs}",
                curves=curves,
            )

        trained = segmentation.train_segmenter(
            train_images, train_labels, config, seed, on_epoch=on_epoch, device=device
        )
        masks = segmentation.predict(trained.network, test_images, config, device=device)
        dice.append(segmentation.dice_per_case(masks, test_labels).tolist())
        hd95.append(segmentation.hd95_per_case(masks, test_labels, spacing).tolist())
        _progress(  # a heartbeat after the (unreported) prediction and HD95 of this seed
            job.pk,
            attempt,
            done=(position + 1) * config.epochs,
            epoch=config.epochs,
            phase=f"seed {seed} scored on the test cases",
        )

    results = {
        "config": setup.name,
        "seeds": seeds,
        "train_case_ids": train_ids,
        "train_left_out": skipped,
        "test_case_ids": list(setup.test_case_ids),
        "spacing": list(spacing),
        "dice": dice,
        "hd95": hd95,
        "final_loss": [curves[str(s)]["loss"][-1] for s in seeds],
    }
    results["summary"] = _summary(dice, hd95)
    moved = _finish(job.pk, attempt, results, seconds=time.monotonic() - started)
    return "succeeded" if moved else "stopped"


def _progress(job_id, attempt, **fields):
    if not still_ours(job_id, attempt):
        raise Stopped
    DownstreamJob.objects.filter(pk=job_id, attempts=attempt).update(
        heartbeat_at=timezone.now(), progress_done=fields["done"], **{k: v for k, v in fields.items() if k != "done"}
    )


def _load(image):
    return image.load().astype(np.float32, copy=False)


def _training_data(job, setup):
    """(images, labels, case ids used, reasons for those left out) of the train cases."""
    cases = {
        case.case_id: case
        for case in setup.task.dataset.cases.filter(case_id__in=setup.train_case_ids).prefetch_related("images")
    }
    outputs = {}
    if not job.is_reference:
        query = CaseOutput.objects.filter(run=job.run, sample=0, case__case_id__in=setup.train_case_ids)
        outputs = {output.case.case_id: output for output in query.select_related("case")}
    images, labels, used, skipped = [], [], [], []
    for case_id in setup.train_case_ids:
        case = cases.get(case_id)
        if case is None:
            skipped.append(f"{case_id}: no longer in the dataset")
            continue
        label = _case_images(case, ImageRole.LABEL)
        if job.is_reference:
            image = np.concatenate([_load(im) for im in _case_images(case, ImageRole.REFERENCE)])
        else:
            output = outputs.get(case_id)
            if output is None:
                skipped.append(f"{case_id}: no output")
                continue
            if output.nonfinite_count:
                skipped.append(f"{case_id}: NaN/Inf in the output")
                continue
            image = output.load().astype(np.float32, copy=False)
        label_array = _load(label[0])[:1]
        if image.shape[1:] != label_array.shape[1:]:
            skipped.append(f"{case_id}: image shape {image.shape} does not match the label {label_array.shape}")
            continue
        images.append(image)
        labels.append(label_array)
        used.append(case_id)
    if not used:
        raise DownstreamError("No training case has a usable image: " + "; ".join(skipped))
    shapes = {array.shape for array in images}
    if len(shapes) > 1:
        raise DownstreamError(f"Training images differ in shape ({sorted(shapes)}); the network needs one shape.")
    return np.stack(images), np.stack(labels), used, skipped


def _test_data(setup):
    """(real reference images, labels, spacing) of the test cases, in the setup's order."""
    cases = {
        case.case_id: case
        for case in setup.task.dataset.cases.filter(case_id__in=setup.test_case_ids).prefetch_related("images")
    }
    missing = [case_id for case_id in setup.test_case_ids if case_id not in cases]
    if missing:
        raise DownstreamError(f"Test case(s) no longer in the dataset: {', '.join(missing)}.")
    images, labels, spacing = [], [], None
    for case_id in setup.test_case_ids:
        case = cases[case_id]
        references = _case_images(case, ImageRole.REFERENCE)
        images.append(np.concatenate([_load(im) for im in references]))
        labels.append(_load(_case_images(case, ImageRole.LABEL)[0])[:1])
        spacing = spacing or references[0].spacing
    if len({array.shape for array in images}) > 1:
        raise DownstreamError("Test images differ in shape; the network needs one shape.")
    return np.stack(images), np.stack(labels), [float(s) for s in spacing]


def _bootstrap_settings():
    return {"n_resamples": settings.MEDGEN_BOOTSTRAP_RESAMPLES, "seed": settings.MEDGEN_BOOTSTRAP_SEED}


def _scored(per_seed):
    """(S, n) values with the cases that have no value (NaN in any seed) dropped, and how many were."""
    values = np.asarray(per_seed, dtype=np.float64)
    keep = ~np.isnan(values).any(axis=0)
    return values[:, keep], int((~keep).sum())


def _summary(dice, hd95):
    out = {}
    for key, per_seed in (("dice", dice), ("hd95", hd95)):
        values, excluded = _scored(per_seed)
        if not values.size:
            out[key] = None
            continue
        ci = segmentation.summarise(values, **_bootstrap_settings())
        out[key] = {
            "value": ci.estimate,
            "ci": [ci.low, ci.high],
            "n_cases": int(values.shape[1]),
            "n_excluded": excluded,
            "per_seed": [float(v) for v in values.mean(axis=1)],
            "n_resamples": ci.n_resamples,
            "confidence": ci.confidence,
        }
    return out


def _finish(job_id, attempt, results, *, seconds):
    """running → succeeded with the results, and the run's MetricResults, in one transaction, if still ours."""
    with transaction.atomic():
        # The setup's row first: a run job and the reference finishing at the same moment take turns,
        # so whichever commits second sees the other's results and the utility ratio is written.
        setup_id = DownstreamJob.objects.filter(pk=job_id).values_list("setup_id", flat=True).first()
        setup = DownstreamSetup.objects.select_for_update().get(pk=setup_id)
        job = DownstreamJob.objects.select_for_update().get(pk=job_id)
        if job.status != DownstreamStatus.RUNNING or job.attempts != attempt:
            return False
        changed = _setup_changed(setup, results)
        if changed:
            job.transition(
                DownstreamStatus.FAILED, error=f"The downstream setup changed while this job ran ({changed})."
            )
            return False
        job.results = results
        job.seconds = seconds
        job.phase = ""
        job.progress_done = job.progress_total
        job.transition(DownstreamStatus.SUCCEEDED)
        DownstreamSetup.objects.filter(pk=job.setup_id, frozen_at__isnull=True).update(frozen_at=timezone.now())
        if job.is_reference:
            for other in job.setup.jobs.filter(run__isnull=False, status=DownstreamStatus.SUCCEEDED):
                write_results(other, reference=job)
        else:
            write_results(job)
    return True


def _setup_changed(setup, results):
    """What differs between the setup now and the one the job trained under ('' when nothing)."""
    differences = []
    if results.get("config") != setup.name:
        differences.append("recipe")
    if list(results.get("seeds", [])) != list(setup.seeds):
        differences.append("seeds")
    if list(results.get("test_case_ids", [])) != list(setup.test_case_ids):
        differences.append("test cases")
    return ", ".join(differences)


# ------------------------------------------------------------------------------ results


def reference_job(setup):
    return DownstreamJob.objects.filter(setup=setup, run__isnull=True).first()


def write_results(job, *, reference=None):
    """The run's clinical-tier MetricResults from a succeeded job (utility ratio once the reference exists)."""
    setup = job.setup
    reference = reference or reference_job(setup)
    summary = job.results.get("summary", {})
    base_extra = {
        "seeds": job.results.get("seeds", []),
        "config": job.results.get("config", setup.name),
        "curves_url": curves_url(job.run),
        "test_cases": len(job.results.get("test_case_ids", [])),
        "train_cases": len(job.results.get("train_case_ids", [])),
    }
    for key, metric in (("dice", "downstream_dice"), ("hd95", "downstream_hd95")):
        part = summary.get(key)
        if part:
            per_seed = dict(zip(map(str, base_extra["seeds"]), part["per_seed"], strict=True))
            _store(job.run, metric, part, {**base_extra, "per_seed": per_seed})
    comparable = (
        reference is not None
        and reference.status == DownstreamStatus.SUCCEEDED
        and reference.results.get("test_case_ids") == job.results.get("test_case_ids")
        and reference.results.get("config") == job.results.get("config")
        and reference.results.get("seeds") == job.results.get("seeds")
    )
    if not comparable:
        MetricResult.objects.filter(run=job.run, metric="utility_ratio").delete()
        return
    run_dice = np.asarray(job.results["dice"], dtype=np.float64)
    ref_dice = np.asarray(reference.results["dice"], dtype=np.float64)
    keep = ~(np.isnan(run_dice).any(axis=0) | np.isnan(ref_dice).any(axis=0))
    try:
        ci = segmentation.utility_ratio(run_dice[:, keep], ref_dice[:, keep], **_bootstrap_settings())
    except ValueError as exc:
        log.info("run %s: no utility ratio: %s", job.run_id, exc)
        MetricResult.objects.filter(run=job.run, metric="utility_ratio").delete()
        return
    per_seed = run_dice[:, keep].mean(axis=1) / ref_dice[:, keep].mean()
    part = {
        "value": ci.estimate,
        "ci": [ci.low, ci.high],
        "n_cases": int(keep.sum()),
        "n_excluded": int((~keep).sum()),
        "n_resamples": ci.n_resamples,
        "confidence": ci.confidence,
    }
    extra = {
        **base_extra,
        "per_seed": dict(zip(map(str, base_extra["seeds"]), per_seed.tolist(), strict=True)),
        "reference_dice": float(ref_dice[:, keep].mean()),
    }
    _store(job.run, "utility_ratio", part, extra)


def _store(run, metric, part, extra):
    MetricResult.objects.update_or_create(
        run=run,
        metric=metric,
        extractor="",
        defaults={
            "tier": catalog.CLINICAL,
            "value": part["value"],
            "ci_low": part["ci"][0],
            "ci_high": part["ci"][1],
            "confidence": part["confidence"],
            "n_resamples": part["n_resamples"],
            "bootstrap_seed": settings.MEDGEN_BOOTSTRAP_SEED,
            "n_cases": part["n_cases"],
            "n_excluded": part["n_excluded"],
            "data_range": None,
            "version": catalog.metric_version(metric),
            "extra": extra,
        },
    )


def curves_url(run):
    """The run's training-curves page (plotly), or, for None, nothing."""
    return reverse("run-downstream-curves", args=[run.pk]) if run is not None else None


def reference_curves_url(task):
    return reverse("task-downstream-curves", args=[task.slug])


def task_reference(task):
    """The task's real→real reference, or None when the task has no downstream evaluation.

    {"status", "config", "seeds", "n_test_cases", "dice", "dice_ci" (lo, hi), "hd95", "hd95_ci",
    "error", "curves_url"}; the numbers are None until the reference job has succeeded.
    """
    setup = setup_of(task)
    if setup is None:
        return None
    job = reference_job(setup)
    summary = (job.results.get("summary") or {}) if job and job.status == DownstreamStatus.SUCCEEDED else {}
    dice, hd95 = summary.get("dice") or {}, summary.get("hd95") or {}
    return {
        "status": job.status if job else DownstreamStatus.PENDING.value,
        "config": setup.name,
        "seeds": list(setup.seeds),
        "n_test_cases": len(setup.test_case_ids),
        "dice": dice.get("value"),
        "dice_ci": tuple(dice["ci"]) if dice else None,
        "hd95": hd95.get("value"),
        "hd95_ci": tuple(hd95["ci"]) if hd95 else None,
        "error": job.error if job else "",
        "curves_url": reference_curves_url(task),
    }


def job_of(run):
    """The run's downstream job under its task's current setup, or None."""
    return DownstreamJob.objects.filter(run=run, setup__task_id=run.task_id).select_related("setup").first()


def job_payload(job):
    """What the API serves for a job: status, live progress, the run's clinical results, the reference."""
    from .serializers import MetricResultSerializer

    results = []
    if job.run_id:
        rows = MetricResult.objects.filter(run=job.run, tier=catalog.CLINICAL).order_by("metric")
        results = MetricResultSerializer(rows, many=True).data
    setup = job.setup
    return {
        "status": job.status,
        "is_final": job.is_final,
        "reference": job.is_reference,
        "phase": job.phase,
        "epoch": job.epoch,
        "epochs": setup.config.get("epochs"),
        "loss": job.loss,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "progress_percent": job.progress_percent,
        "attempts": job.attempts,
        "device": job.device,
        "error": job.error,
        "seconds": job.seconds,
        "queued_at": job.queued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "config": {"name": setup.name, **setup.config},
        "seeds": list(setup.seeds),
        "n_train_cases": len(setup.train_case_ids),
        "n_test_cases": len(setup.test_case_ids),
        "summary": job.results.get("summary") if job.status == DownstreamStatus.SUCCEEDED else None,
        "results": results,
        "real_reference": task_reference(setup.task),
        "curves_url": curves_url(job.run) if job.run_id else reference_curves_url(setup.task),
    }


def setup_payload(setup):
    return {
        "task": setup.task.slug,
        "config": {"name": setup.name, **setup.config},
        "seeds": list(setup.seeds),
        "split_seed": setup.split_seed,
        "test_fraction": setup.test_fraction,
        "train_case_ids": list(setup.train_case_ids),
        "test_case_ids": list(setup.test_case_ids),
        "unused_case_ids": list(setup.unlabelled_case_ids),
        "frozen": setup.is_frozen,
        "auto_run": setup.auto_run,
        "real_reference": task_reference(setup.task),
    }


# ----------------------------------------------------------------------------- reaping


def reap_stale_downstream(stale_seconds=None, max_attempts=None):
    """Requeue running downstream jobs whose worker went silent, or fail them after N attempts; resend lost jobs."""
    return jobs.reap(
        DownstreamJob, requeue=_queue, dispatch=dispatch, stale_seconds=stale_seconds, max_attempts=max_attempts
    )


def wait_for(job_ids, timeout=300.0, poll=0.5):
    """Poll until every job is final or the time is up (demo command and tests); returns the jobs."""
    deadline = time.monotonic() + timeout
    while True:
        found = list(DownstreamJob.objects.filter(pk__in=job_ids))
        if all(job.is_final for job in found) or time.monotonic() > deadline:
            return found
        time.sleep(poll)
