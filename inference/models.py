"""Datasets, cases, generative models and runs.

Arrays are stored canonically as float32 `.npy` files of shape `(C, *spatial)`, where
spatial is `(H, W)` for 2D images and `(D, H, W)` for volumes, with the voxel spacing in
the same order (mm) and the orientation as a 3×3 direction matrix (row-major, LPS as in
DICOM) plus the origin. The uploaded original is kept beside it.
"""

import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from core.models import Job

from . import extensions, sampling
from .storage import load_array


class TaskKind(models.TextChoices):
    TRANSLATION = "translation", "Translation (e.g. T1→T2)"
    RECONSTRUCTION = "reconstruction", "Reconstruction (e.g. undersampled MRI)"
    ENHANCEMENT = "enhancement", "Enhancement (denoising, super-resolution)"
    SYNTHESIS = "synthesis", "Synthesis (unconditional or conditioned)"


class Dataset(models.Model):
    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=500, blank=True, help_text="Where the files came from.")
    is_public = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    private_to = models.ForeignKey(
        "Task", related_name="private_datasets", null=True, blank=True, on_delete=models.CASCADE,
        help_text="A dataset derived from this task's test set (a probe set): seen by the task's organisers only, "
        "never offered as a task's dataset; deleted with the task.",
    )  # fmt: skip

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("dataset-detail", args=[self.pk])


class Case(models.Model):
    dataset = models.ForeignKey(Dataset, related_name="cases", on_delete=models.CASCADE)
    case_id = models.CharField(max_length=200, help_text="Identifier unique within the dataset.")
    metadata = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["dataset", "case_id"]
        constraints = [models.UniqueConstraint(fields=["dataset", "case_id"], name="unique_case_id_per_dataset")]

    def __str__(self):
        return f"{self.dataset.name}/{self.case_id}"

    def get_absolute_url(self):
        return reverse("case-detail", args=[self.pk])

    def image(self, role, index=0):
        return self.images.filter(role=role, index=index).first()

    @property
    def inputs(self):
        return [im for im in self.images.all() if im.role == ImageRole.INPUT]


class ImageRole(models.TextChoices):
    INPUT = "input", "Input"
    REFERENCE = "reference", "Reference"
    LABEL = "label", "Label mask"
    MASK = "mask", "ROI/body mask"


def case_image_path(instance, filename):
    return f"datasets/{instance.case.dataset_id}/{instance.case_id}/{filename}"


class CaseImage(models.Model):
    """One image of a case in canonical form, plus the original upload."""

    case = models.ForeignKey(Case, related_name="images", on_delete=models.CASCADE)
    role = models.CharField(max_length=20, choices=ImageRole.choices)
    index = models.PositiveSmallIntegerField(default=0, help_text="Order among several inputs.")
    array = models.FileField(upload_to=case_image_path, max_length=500)
    original = models.FileField(upload_to=case_image_path, max_length=500, blank=True)
    original_name = models.CharField(max_length=500, blank=True)
    source_format = models.CharField(max_length=20)  # dicom, nifti, png, tiff, npy, npz
    shape = models.JSONField(help_text="(C, *spatial) of the canonical float32 array.")
    spacing = models.JSONField(default=list, help_text="Voxel size per spatial axis, mm.")
    direction = models.JSONField(default=list, help_text="3×3 direction cosines, row-major.")
    origin = models.JSONField(default=list)
    intensity_min = models.FloatField(null=True)
    intensity_max = models.FloatField(null=True)
    content_sha256 = models.CharField(
        max_length=64, blank=True, db_index=True,
        help_text="sha256 of the canonical array's bytes: the same pixels anywhere are found by it.",
    )  # fmt: skip

    class Meta:
        ordering = ["case", "role", "index"]
        constraints = [models.UniqueConstraint(fields=["case", "role", "index"], name="unique_case_image_role")]

    def __str__(self):
        return f"{self.case} {self.role}[{self.index}]"

    @property
    def spatial_shape(self):
        return tuple(self.shape[1:])

    def load(self):
        return load_array(self.array)


class JoinPolicy(models.TextChoices):
    AUTO = "auto", "Anyone who joins is accepted"
    APPROVAL = "approval", "An organiser approves each participant"


class LeaderboardEntry(models.TextChoices):
    BEST = "best", "Each participant's best run"
    LATEST = "latest", "Each participant's latest run"


class EvaluationProfile(models.TextChoices):
    """The convention a task's pixel tier follows. Written out here (inference does not import evaluation);
    tests/evaluation/test_regions_profiles.py checks that it names exactly `evaluation.metrics.profiles.PROFILES`."""

    MEDGEN = "medgen", "MedGen Eval (Wang et al. SSIM, MONAI MS-SSIM, the task's data range)"
    FASTMRI = "fastmri", "fastMRI (evaluate.py: NMSE, PSNR, SSIM)"
    SYNTHRAD2025 = "synthrad2025", "SynthRAD2025 (image_metrics.py: MAE, PSNR, MS-SSIM in the mask)"


class EvaluationRegion(models.TextChoices):
    """The voxels a task's pixel metrics are computed over."""

    WHOLE = "whole", "Whole image"
    CASE_MASK = "case_mask", "The mask that comes with each case (its ROI/body mask image)"
    REFERENCE_THRESHOLD = "reference_threshold", "From the reference: threshold, largest component, holes filled"


def _known(choices):
    return ", ".join(choices.values)


class Task(models.Model):
    """A benchmark: a kind of generation problem on a test dataset."""

    slug = models.SlugField(unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=TaskKind.choices)
    description = models.TextField(blank=True)
    dataset = models.ForeignKey(Dataset, related_name="tasks", on_delete=models.PROTECT)
    reference_dataset = models.ForeignKey(
        Dataset,
        related_name="reference_for_tasks",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        help_text="Real images for the feature tier; the test dataset's references when empty.",
    )
    data_range = models.FloatField(
        null=True, blank=True, help_text="Intensity range for PSNR/SSIM; from the references when empty."
    )
    metrics = models.JSONField(default=list, blank=True, help_text="Metric names evaluated on this task.")
    primary_metric = models.CharField(max_length=50, blank=True)
    ranking = models.CharField(
        max_length=20, choices=[("primary", "Primary metric"), ("mean_rank", "Mean rank")], default="primary"
    )
    profile = models.CharField(
        max_length=30,
        choices=EvaluationProfile.choices,
        default=EvaluationProfile.MEDGEN,
        help_text="The convention the pixel tier scores by; its metrics are keyed by it (e.g. fastmri:ssim).",
        error_messages={"invalid_choice": f"Unknown profile %(value)r. Known: {_known(EvaluationProfile)}."},
    )
    region = models.CharField(
        max_length=30,
        choices=EvaluationRegion.choices,
        default=EvaluationRegion.WHOLE,
        help_text="The voxels every pixel metric is computed over.",
        error_messages={"invalid_choice": f"Unknown region %(value)r. Known: {_known(EvaluationRegion)}."},
    )
    region_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="For a region computed from the reference: the intensity above which a voxel is inside "
        "(reference units, e.g. -500 HU for a CT body).",
    )
    is_public = models.BooleanField(default=False, help_text="Readable without login (demo tasks).")
    hidden_references = models.BooleanField(
        default=False,
        help_text="A hidden test set: its reference images and label masks (and any image with the same pixels) "
        "reach the task's organisers only; participants see the inputs, their own runs and the leaderboard.",
    )
    join_policy = models.CharField(max_length=20, choices=JoinPolicy.choices, default=JoinPolicy.AUTO)
    participant_models = models.BooleanField(
        default=False, help_text="Participants may upload a model to run on the platform (not only outputs)."
    )
    leaderboard_entry = models.CharField(
        max_length=20,
        choices=LeaderboardEntry.choices,
        default=LeaderboardEntry.BEST,
        help_text="Which of a participant's runs the leaderboard shows.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("task-detail", args=[self.slug])

    #: What the task checks (`extensions.check_task_settings`) are given.
    SETTINGS_FIELDS = ("metrics", "primary_metric", "ranking", "profile", "region", "region_threshold", "dataset")

    def settings_for_checks(self):
        return {field: getattr(self, field, None) for field in self.SETTINGS_FIELDS}

    def clean(self):
        """The metric, profile and region settings as the apps above check them (the metric catalogue):
        an unknown name is refused with the known ones, whichever form, API or script saves the task."""
        if not isinstance(self.metrics, list) or not all(isinstance(key, str) and key for key in self.metrics):
            raise ValidationError({"metrics": 'Give a list of metric names, e.g. ["psnr", "ssim"].'})
        for field in ("dataset", "reference_dataset"):
            dataset = getattr(self, field, None) if getattr(self, f"{field}_id") else None
            if dataset is not None and dataset.private_to_id is not None:
                raise ValidationError({field: f"'{dataset}' is derived from a task's test set (a probe set): it "
                                       "cannot be a task's dataset."})  # fmt: skip
        errors = extensions.check_task_settings(self.settings_for_checks())
        if errors:
            raise ValidationError(errors)


class MemberRole(models.TextChoices):
    ORGANISER = "organiser", "Organiser"
    PARTICIPANT = "participant", "Participant"


class MemberStatus(models.TextChoices):
    PENDING = "pending", "Waiting for an organiser"
    ACCEPTED = "accepted", "Accepted"
    REJECTED = "rejected", "Rejected"


class Membership(models.Model):
    """A user's role in one task: an organiser manages it and sees its hidden data; a participant submits."""

    task = models.ForeignKey(Task, related_name="memberships", on_delete=models.CASCADE)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="task_memberships", on_delete=models.CASCADE)
    role = models.CharField(max_length=20, choices=MemberRole.choices)
    status = models.CharField(max_length=20, choices=MemberStatus.choices, default=MemberStatus.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["task", "role", "user__username"]
        constraints = [models.UniqueConstraint(fields=["task", "user"], name="one_membership_per_task_and_user")]

    def __str__(self):
        return f"{self.user} · {self.role} of {self.task} ({self.status})"


class Phase(models.Model):
    """A period in which participants submit (e.g. "validation", then "test"), with its submission limits."""

    task = models.ForeignKey(Task, related_name="phases", on_delete=models.CASCADE)
    name = models.CharField(max_length=100)
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField(null=True, blank=True, help_text="Empty: open until further notice.")
    limit_per_period = models.PositiveIntegerField(
        null=True, blank=True, help_text="Submissions per participant per period; empty for no limit."
    )
    period_hours = models.PositiveIntegerField(default=24)
    limit_total = models.PositiveIntegerField(null=True, blank=True, help_text="Per participant, in the phase.")
    private_leaderboard = models.BooleanField(
        default=False, help_text="Participants see this phase's leaderboard only once the phase has ended."
    )

    class Meta:
        ordering = ["task", "starts_at"]
        constraints = [models.UniqueConstraint(fields=["task", "name"], name="unique_phase_name_per_task")]

    def __str__(self):
        return f"{self.task}: {self.name}"

    def is_open(self, now):
        return self.starts_at <= now and (self.ends_at is None or now < self.ends_at)

    def has_ended(self, now):
        return self.ends_at is not None and self.ends_at <= now


class ModelFormat(models.TextChoices):
    TORCHSCRIPT = "torchscript", "TorchScript"
    ONNX = "onnx", "ONNX"


class Normalisation(models.TextChoices):
    NONE = "none", "None (model takes stored intensities)"
    MINMAX = "minmax", "Per-case min-max to [0, 1], output mapped back"
    ZSCORE = "zscore", "Per-case z-score, output mapped back"


class ModelFamily(models.TextChoices):
    """What kind of generative model it is (the leaderboard filters by it)."""

    BASELINE = "baseline", "Baseline (identity, zero-filled, fixed transform)"
    REGRESSION = "regression", "Regression network (e.g. U-Net trained with L1)"
    GAN = "gan", "GAN (Pix2Pix, CycleGAN, …)"
    VAE = "vae", "VAE"
    DIFFUSION = "diffusion", "Diffusion model"
    FLOW = "flow", "Normalising flow / flow matching"
    FOUNDATION = "foundation", "Foundation model"


class SamplerKind(models.TextChoices):
    DDPM = "ddpm", "DDPM"
    DDIM = "ddim", "DDIM"


class ModelStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    VALIDATING = "validating", "Validating"
    VALID = "valid", "Valid"
    INVALID = "invalid", "Invalid"


#: A validation has decided these; the others wait for it.
VALIDATED = (ModelStatus.VALID, ModelStatus.INVALID)


def model_artifact_path(instance, filename):
    suffix = ".onnx" if instance.format == ModelFormat.ONNX else ".pt"
    return f"models/{instance.sha256}{suffix}"


class GenerativeModel(models.Model):
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    task = models.ForeignKey(Task, related_name="models", on_delete=models.PROTECT)
    format = models.CharField(max_length=20, choices=ModelFormat.choices)
    artifact = models.FileField(upload_to=model_artifact_path, max_length=500)
    original_name = models.CharField(max_length=500, blank=True)
    sha256 = models.CharField(max_length=64, unique=True)
    size_bytes = models.BigIntegerField()
    parameter_count = models.BigIntegerField(null=True, blank=True)
    in_channels = models.PositiveSmallIntegerField(default=1)
    out_channels = models.PositiveSmallIntegerField(default=1)
    spatial_shape = models.JSONField(
        help_text="Expected spatial size, e.g. [128, 128] (2D) or [64, 64, 64] (3D); null for any size on an axis."
    )
    normalisation = models.CharField(max_length=20, choices=Normalisation.choices, default=Normalisation.NONE)
    stochastic = models.BooleanField(default=False)
    samples_per_case = models.PositiveSmallIntegerField(default=1)
    family = models.CharField(max_length=20, choices=ModelFamily.choices, default=ModelFamily.REGRESSION)
    scheduler = models.JSONField(
        null=True, blank=True,
        help_text="Set for a diffusion noise predictor ε(x_t, t): the scheduler it was trained with "
        "(`inference.sampling.SchedulerSpec`); the platform runs the sampling loop.",
    )  # fmt: skip
    status = models.CharField(max_length=20, choices=ModelStatus.choices, default=ModelStatus.UPLOADED)
    validation_error = models.TextField(blank=True)
    validated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["task", "name"]

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return reverse("model-detail", args=[self.pk])

    @property
    def spatial_dims(self):
        return len(self.spatial_shape)

    @property
    def is_noise_predictor(self):
        return self.scheduler is not None

    @property
    def scheduler_spec(self):
        return sampling.SchedulerSpec.from_dict(self.scheduler) if self.scheduler is not None else None

    @property
    def samples_by_default(self):
        """Samples per case of a run that does not say: the declared count of a stochastic model or a noise
        predictor, else 1."""
        return self.samples_per_case if (self.stochastic or self.is_noise_predictor) else 1

    def clean(self):
        if self.spatial_shape is None or len(self.spatial_shape) not in (2, 3):
            raise ValidationError({"spatial_shape": "Give 2 (H, W) or 3 (D, H, W) spatial sizes."})
        if self.scheduler is not None:
            self._clean_noise_predictor()
            return
        if self.stochastic and self.samples_per_case < 2:
            raise ValidationError({"samples_per_case": "A stochastic model needs at least 2 samples per case."})
        if not self.stochastic and self.samples_per_case != 1:
            raise ValidationError({"samples_per_case": "A deterministic model takes 1 sample per case."})

    def _clean_noise_predictor(self):
        try:
            self.scheduler = self.scheduler_spec.as_dict()
        except (ValueError, TypeError) as exc:
            raise ValidationError({"scheduler": str(exc)}) from None
        if self.family != ModelFamily.DIFFUSION:
            raise ValidationError({"family": "A noise predictor with a scheduler is of the diffusion family."})
        if self.samples_per_case < 1:
            raise ValidationError({"samples_per_case": "At least 1 sample per case."})
        if self.task_id and self.task.kind == TaskKind.RECONSTRUCTION:
            if self.in_channels != 2 or len(self.spatial_shape) != 2:
                raise ValidationError(
                    {"in_channels": "A reconstruction sampler takes the case's 2-channel (real, imaginary) 2D k-space."}
                )
            if self.normalisation != Normalisation.NONE:
                raise ValidationError(
                    {"normalisation": "Data consistency works on the stored k-space: use normalisation 'none'."}
                )


class ModelValidation(Job):
    """The validation job of an uploaded model (a kind of `core.models.Job`): load the artifact and run it
    once on the declared shape. Its outcome is the model's status (valid or invalid, with the reason)."""

    JOB_NAME = "Validation"

    model = models.OneToOneField(GenerativeModel, related_name="validation", on_delete=models.CASCADE)

    def __str__(self):
        return f"Validation of {self.model}"


class RunKind(models.TextChoices):
    INFERENCE = "inference", "Inference on the platform"
    SUBMISSION = "submission", "Submission of precomputed outputs"


def submission_path(instance, filename):
    return f"submissions/{instance.uid}/{filename}"


class Run(Job):
    """A model on a task's dataset, or a submission of precomputed outputs: a kind of `core.models.Job`.

    Its status moves only through the job state machine (pending → queued → running →
    succeeded | failed | cancelled); a run is never re-run (a new run is made instead), and a
    pending run waits for its model's validation.
    """

    JOB_NAME = "Run"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, blank=True)
    task = models.ForeignKey(Task, related_name="runs", on_delete=models.PROTECT)
    model = models.ForeignKey(GenerativeModel, related_name="runs", null=True, blank=True, on_delete=models.PROTECT)
    kind = models.CharField(max_length=20, choices=RunKind.choices, default=RunKind.INFERENCE)
    submission_file = models.FileField(upload_to=submission_path, max_length=500, blank=True)
    device = models.CharField(max_length=100, blank=True)
    seed = models.BigIntegerField(default=0, help_text="Seed for stochastic models' samples.")
    samples_per_case = models.PositiveSmallIntegerField(default=1)
    sampling_steps = models.PositiveIntegerField(null=True, blank=True, help_text="A noise predictor's steps.")
    scheduler = models.CharField(max_length=10, choices=SamplerKind.choices, blank=True)
    sweep = models.CharField(
        max_length=100, blank=True, db_index=True, help_text="The sampling sweep this run is a setting of."
    )
    problems = models.JSONField(default=list, blank=True, help_text="Per-case problems found while validating.")
    total_inference_seconds = models.FloatField(null=True, blank=True)
    throughput_cases_per_s = models.FloatField(null=True, blank=True)
    latency_ms_p50 = models.FloatField(null=True, blank=True)
    latency_ms_p95 = models.FloatField(null=True, blank=True)
    task_phase = models.ForeignKey(
        "Phase", related_name="runs", null=True, blank=True, on_delete=models.PROTECT,
        help_text="The task's phase a participant's run was submitted in.",
    )  # fmt: skip
    hidden_at = models.DateTimeField(null=True, blank=True, help_text="Hidden from the leaderboard (kept).")
    dataset = models.ForeignKey(
        Dataset, related_name="runs", null=True, blank=True, on_delete=models.PROTECT,
        help_text="The dataset the run runs on: its task's test set when empty (a probe set's, for a probe run).",
    )  # fmt: skip
    probe_of = models.ForeignKey(
        "self", related_name="probe_runs", null=True, blank=True, on_delete=models.CASCADE,
        help_text="A probe run: the same model on a probe set, for the hallucination scores of this main run.",
    )  # fmt: skip
    hidden_reason = models.TextField(blank=True)
    hidden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return self.name or f"Run {self.pk}"

    def get_absolute_url(self):
        return reverse("run-detail", args=[self.pk])

    @property
    def cases_dataset(self):
        """The dataset whose cases the run runs on."""
        return self.dataset if self.dataset_id else self.task.dataset

    def sampling(self):
        """The `sampling.Sampling` this run's noise predictor samples with (None for other runs)."""
        model = self.model
        if model is None or not model.is_noise_predictor:
            return None
        return sampling.Sampling(
            spec=model.scheduler_spec,
            kind=self.scheduler or model.scheduler_spec.kind,
            steps=self.sampling_steps,
            out_channels=model.out_channels,
            reconstruction=self.task.kind == TaskKind.RECONSTRUCTION,
        )


def output_path(instance, filename):
    return f"runs/{instance.run.uid}/{filename}"


class CaseOutput(models.Model):
    """One model output (one sample, for stochastic models) for one case of a run."""

    run = models.ForeignKey(Run, related_name="outputs", on_delete=models.CASCADE)
    case = models.ForeignKey(Case, related_name="outputs", on_delete=models.CASCADE)
    sample = models.PositiveSmallIntegerField(default=0)
    array = models.FileField(upload_to=output_path, max_length=500)
    shape = models.JSONField()
    latency_ms = models.FloatField(null=True, blank=True, help_text="Model time for this case (per sample).")
    nonfinite_count = models.BigIntegerField(default=0, help_text="NaN/Inf voxels in the output.")
    content_sha256 = models.CharField(max_length=64, blank=True, db_index=True, help_text="See CaseImage.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "case", "sample"]
        constraints = [
            models.UniqueConstraint(fields=["run", "case", "sample"], name="unique_output_per_run_case_sample")
        ]

    def __str__(self):
        return f"{self.run} {self.case.case_id}#{self.sample}"

    def load(self):
        return load_array(self.array)


def dataset_import_path(instance, filename):
    return f"imports/{instance.uid}/{filename}"


class DatasetImport(Job):
    """A dataset import started from the site (a kind of `core.models.Job`): the uploaded archive is read
    and stored by `services.datasets.import_dataset` on a worker. On failure `errors` lists every problem,
    each naming its file, as the importers report them; the archive is deleted once the job is over."""

    JOB_NAME = "Dataset import"

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(max_length=200, help_text="The new dataset's name.")
    description = models.TextField(blank=True)
    is_public = models.BooleanField(default=False)
    archive = models.FileField(upload_to=dataset_import_path, max_length=500, blank=True)
    archive_name = models.CharField(max_length=500, blank=True)
    dataset = models.ForeignKey(Dataset, null=True, blank=True, related_name="imports", on_delete=models.SET_NULL)
    errors = models.JSONField(default=list, blank=True, help_text="Every problem found, one message each.")

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Import of {self.name}"

    def get_absolute_url(self):
        return reverse("dataset-import-detail", args=[self.uid])
