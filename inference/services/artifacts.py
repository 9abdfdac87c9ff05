"""Registering and validating generative-model artifacts."""

import logging
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from core import jobs
from core.errors import Conflict, InvalidInput
from core.models import JobStatus

from .. import runner, sampling
from ..models import VALIDATED, GenerativeModel, ModelFamily, ModelStatus, ModelValidation, TaskKind
from ..storage import UploadTooLarge, spool_upload
from .sandboxed import open_model

log = logging.getLogger(__name__)


class ModelUploadError(InvalidInput):
    """Refused upload; the message says why (shown to the user, 400)."""


def register_model(
    source,
    *,
    name,
    task,
    in_channels=1,
    out_channels=1,
    spatial_shape,
    normalisation="none",
    stochastic=False,
    samples_per_case=1,
    family=ModelFamily.REGRESSION,
    scheduler=None,
    description="",
    original_name="",
    user=None,
):
    """Store an uploaded TorchScript/ONNX artifact and queue its validation job.

    `scheduler` (a dict, see `inference.sampling.SchedulerSpec`) makes the artifact a diffusion noise
    predictor ε(x_t, t) sampled by the platform. Refuses pickles, unknown formats and an artifact
    already registered (same sha256) before anything is stored.
    """
    try:
        path = spool_upload(source, settings.MEDGEN_MAX_UPLOAD_BYTES, prefix="medgen-model-")
    except UploadTooLarge as exc:
        raise ModelUploadError(str(exc)) from None
    try:
        try:
            info = runner.inspect_artifact(path)
        except runner.ModelArtifactError as exc:
            raise ModelUploadError(str(exc)) from None
        existing = GenerativeModel.objects.filter(sha256=info.sha256).first()
        if existing:
            raise ModelUploadError(
                f"This artifact (sha256 {info.sha256[:12]}…) is already registered as model '{existing.name}' "
                f"(id {existing.pk})."
            )
        model = GenerativeModel(
            name=name,
            description=description,
            task=task,
            format=info.format,
            original_name=original_name or (Path(source).name if isinstance(source, (str, Path)) else ""),
            sha256=info.sha256,
            size_bytes=info.size_bytes,
            in_channels=in_channels,
            out_channels=out_channels,
            spatial_shape=list(spatial_shape),
            normalisation=normalisation,
            stochastic=stochastic,
            samples_per_case=samples_per_case,
            family=family,
            scheduler=scheduler,
            created_by=user,
        )
        try:
            model.full_clean(exclude=["artifact"])
        except ValidationError as exc:
            raise ModelUploadError("; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())) from None
        with transaction.atomic():
            with open(path, "rb") as handle:
                model.artifact.save(model_artifact_name(model), File(handle), save=False)
            try:
                model.save()
                jobs.queue(ModelValidation.objects.create(model=model, requested_by=user))
            except Exception:
                model.artifact.delete(save=False)
                raise
        return model
    finally:
        path.unlink(missing_ok=True)


UPLOAD_FIELDS = (
    "name",
    "task",
    "in_channels",
    "out_channels",
    "spatial_shape",
    "normalisation",
    "stochastic",
    "samples_per_case",
    "family",
    "scheduler",
    "description",
)


def register_upload(data, *, user):
    """`register_model` from a validated upload form or serializer (the pages and the API)."""
    upload = data["file"]
    fields = {k: data[k] for k in UPLOAD_FIELDS if k in data}
    return register_model(upload, original_name=upload.name, user=user, **fields)


def model_artifact_name(model):
    return f"{model.sha256}.onnx" if model.format == "onnx" else f"{model.sha256}.pt"


def validate(validation, context):
    """Job handler of a model's validation: load the artifact in a sandbox process (`inference.sandbox`:
    its operations or tensors checked first, then confined) and run it once on the declared shape. A model
    that fails, is refused or goes past the sandbox's limits is a result (the model becomes invalid, with
    the cause), not a failed job; the job fails only when the validation itself could not finish (see
    `on_validation_finished`).
    """
    GenerativeModel.objects.filter(pk=validation.model_id).update(status=ModelStatus.VALIDATING)
    model = GenerativeModel.objects.get(pk=validation.model_id)
    error = ""
    parameter_count = None
    try:
        with open_model(model, log=context.log, sampling=validation_sampling(model)) as loaded:
            parameter_count = loaded.parameter_count
            runner.dry_run(loaded, model.in_channels, model.out_channels, model.spatial_shape)
    except runner.ModelArtifactError as exc:
        error = str(exc)
    except Exception as exc:  # anything else a broken artifact can raise
        log.exception("validation of model %s crashed", model.pk)
        error = f"Validation failed: {type(exc).__name__}: {exc}"
    context.finish(
        JobStatus.SUCCEEDED,
        effects=lambda _job: _record_validation(model.pk, error=error, parameter_count=parameter_count),
    )


def validation_sampling(model):
    """A noise predictor's dry run: a few DDIM steps of the platform's loop (None for other models)."""
    spec = model.scheduler_spec
    if spec is None:
        return None
    return sampling.Sampling(
        spec=spec,
        kind="ddim",
        steps=min(sampling.VALIDATION_STEPS, spec.num_train_timesteps),
        out_channels=model.out_channels,
        reconstruction=model.task.kind == TaskKind.RECONSTRUCTION,
    )


def _record_validation(model_id, *, error, parameter_count=None):
    """The model's status from a validation; runs waiting for the model are queued, or failed with the reason."""
    model = GenerativeModel.objects.select_for_update().get(pk=model_id)
    model.status = ModelStatus.INVALID if error else ModelStatus.VALID
    model.validation_error = error
    model.parameter_count = parameter_count
    model.validated_at = timezone.now()
    model.save()
    for run in model.runs.select_for_update().filter(status=JobStatus.PENDING):
        if error:
            run.transition(JobStatus.FAILED, error=f"Model '{model.name}' failed validation: {error}")
        else:
            jobs.queue(run)


def on_validation_finished(sender, job_id, status, **kwargs):
    """`job_finished` receiver: a validation that could not finish (its worker died every time, it ran
    past its limits) leaves the model invalid with the job's error, and fails the runs waiting for it."""
    if status == JobStatus.SUCCEEDED:
        return
    validation = ModelValidation.objects.get(pk=job_id)
    with transaction.atomic():
        if GenerativeModel.objects.filter(pk=validation.model_id, status__in=VALIDATED).exists():
            return
        _record_validation(validation.model_id, error=validation.error or f"The validation was {status}.")


def delete_invalid_model(model: GenerativeModel, *, user) -> str:
    """Delete a model that failed validation, with its runs (each failed with the validation's reason);
    its artifact and the runs' files go when the deletion commits (`core.media`). A model that is valid,
    or still being validated, is kept: its runs are results. Returns the deleted model's name."""
    with transaction.atomic():
        model = GenerativeModel.objects.select_for_update().get(pk=model.pk)
        if model.status != ModelStatus.INVALID:
            raise Conflict(f"Model '{model.name}' is {model.status}: only a model that failed validation is deleted.")
        runs = model.runs.all()
        if runs.exclude(status__in=[JobStatus.FAILED, JobStatus.CANCELLED]).exists():
            raise Conflict(f"Model '{model.name}' has runs that did not fail: it is kept.")
        runs.delete()
        name = model.name
        model.delete()
    log.info("model %s (%s) deleted by %s", name, model.sha256, user)
    return name
