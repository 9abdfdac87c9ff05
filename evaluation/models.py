"""Evaluations of runs: per-case pixel metrics, per-run metric summaries with bootstrap CIs.

An `Evaluation` belongs to one run and holds the job's state machine; re-evaluating a run
moves the same row back to queued, and results are written with update-or-create on their
unique keys, so a run always has at most one value per (case, metric) and per
(metric, extractor). Each result stores the metric version it was computed with; one whose
version differs from the current code is stale.
"""

import math

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone

from inference.models import Case, Run

from .formatting import decode_value
from .metrics import catalog


class IllegalTransition(Exception):
    pass


class EvaluationStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class JobStateMachine:
    """The state machine and log that evaluation and downstream jobs share, in one place.

    Subclasses declare `STATUS` (their TextChoices), `TRANSITIONS` (status → allowed next
    statuses), `FINAL` and `JOB_NAME`; `transition` is the only way a job's status changes.
    Queueing clears the last error; starting stamps the heartbeat; a final status stamps
    the finish time.
    """

    STATUS = None
    TRANSITIONS = {}
    FINAL = set()
    JOB_NAME = "Job"

    @property
    def is_final(self):
        return self.status in self.FINAL

    @property
    def progress_percent(self):
        return round(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    def can_transition(self, new_status):
        return new_status in self.TRANSITIONS[self.STATUS(self.status)]

    def transition(self, new_status, *, error="", save=True):
        new_status = self.STATUS(new_status)
        if not self.can_transition(new_status):
            raise IllegalTransition(f"{self.JOB_NAME} {self.pk}: {self.status} → {new_status} is not allowed")
        now = timezone.now()
        old = self.status
        self.status = new_status
        if new_status == self.STATUS.QUEUED:
            self.queued_at = now
            self.error = ""
        elif new_status == self.STATUS.RUNNING:
            self.started_at = now
            self.finished_at = None
            self.heartbeat_at = now
        elif new_status in self.FINAL:
            self.finished_at = now
        if error:
            self.error = error
        self.append_log(f"{old} → {new_status}" + (f": {error}" if error else ""), save=False)
        if save:
            self.save()

    def queue(self, send):
        """→ queued, and `send(pk)` the job's message once the transaction commits (never for a rollback)."""
        self.transition(self.STATUS.QUEUED)
        pk = self.pk
        transaction.on_commit(lambda: send(pk))

    def append_log(self, message, save=True):
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
        self.log = f"{self.log}[{stamp}] {message}\n"
        if save:
            self.save(update_fields=["log"])


class Evaluation(JobStateMachine, models.Model):
    """The evaluation job of one run.

    pending → queued → running → succeeded | failed; running → queued when its worker is
    lost (the reaper); succeeded | failed → queued when staff re-run it.
    """

    TRANSITIONS = {
        EvaluationStatus.PENDING: {EvaluationStatus.QUEUED, EvaluationStatus.FAILED},
        EvaluationStatus.QUEUED: {EvaluationStatus.RUNNING, EvaluationStatus.FAILED},
        EvaluationStatus.RUNNING: {EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED, EvaluationStatus.QUEUED},
        EvaluationStatus.SUCCEEDED: {EvaluationStatus.QUEUED},
        EvaluationStatus.FAILED: {EvaluationStatus.QUEUED},
    }
    FINAL = {EvaluationStatus.SUCCEEDED, EvaluationStatus.FAILED}
    STATUS = EvaluationStatus
    JOB_NAME = "Evaluation"

    run = models.OneToOneField(Run, related_name="evaluation", on_delete=models.CASCADE)
    status = models.CharField(
        max_length=20, choices=EvaluationStatus.choices, default=EvaluationStatus.PENDING, db_index=True
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=100, blank=True, help_text="What the job is doing now.")
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    data_range = models.FloatField(null=True, blank=True, help_text="Intensity range used for PSNR/SSIM.")
    data_range_source = models.CharField(max_length=200, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="Metrics, extractors, bootstrap settings used.")
    unavailable = models.JSONField(
        default=dict, blank=True, help_text="Metric or extractor → why it was not computed for this run."
    )
    seconds = models.FloatField(null=True, blank=True)
    cases_per_second = models.FloatField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"Evaluation of {self.run}"


class CaseStatus(models.TextChoices):
    OK = "ok", "Evaluated"
    NONFINITE = "nonfinite", "NaN/Inf in the output"
    WRONG_SHAPE = "wrong_shape", "Wrong output shape"
    MISSING = "missing", "No output or no reference"


def uncertainty_path(instance, filename):
    return f"evaluations/{instance.run.uid}/{filename}"


class CaseResult(models.Model):
    """One case of an evaluated run: its pixel metrics (mean over samples) or why it has none."""

    run = models.ForeignKey(Run, related_name="case_results", on_delete=models.CASCADE)
    case = models.ForeignKey(Case, related_name="results", on_delete=models.CASCADE)
    status = models.CharField(max_length=20, choices=CaseStatus.choices, default=CaseStatus.OK)
    problem = models.TextField(blank=True)
    samples = models.PositiveSmallIntegerField(default=1)
    # metric key → value; +inf is stored as the string "inf" (JSON has no infinity).
    values = models.JSONField(default=dict, blank=True)
    uncertainty_map = models.FileField(upload_to=uncertainty_path, max_length=500, blank=True)
    uncertainty_mean = models.FloatField(null=True, blank=True, help_text="Mean per-voxel SD over samples.")
    uncertainty_p95 = models.FloatField(null=True, blank=True, help_text="95th percentile of the per-voxel SD.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "case__case_id"]
        constraints = [models.UniqueConstraint(fields=["run", "case"], name="unique_case_result_per_run")]

    def __str__(self):
        return f"{self.run} {self.case.case_id}"

    def value(self, key):
        return decode_value(self.values.get(key))


class MetricResult(models.Model):
    """A per-run value of one metric (for feature metrics, per extractor) with its bootstrap CI."""

    run = models.ForeignKey(Run, related_name="metric_results", on_delete=models.CASCADE)
    metric = models.CharField(max_length=50)
    extractor = models.CharField(max_length=50, blank=True, help_text="Feature extractor; empty for pixel metrics.")
    tier = models.CharField(max_length=20)
    value = models.FloatField(null=True, help_text="Per-run mean (pixel) or the set-level value (feature).")
    ci_low = models.FloatField(null=True, blank=True)
    ci_high = models.FloatField(null=True, blank=True)
    confidence = models.FloatField(default=0.95)
    n_resamples = models.PositiveIntegerField(default=0, help_text="Bootstrap resamples (B).")
    bootstrap_seed = models.BigIntegerField(default=0)
    n_cases = models.PositiveIntegerField(default=0, help_text="Cases that entered the value.")
    n_excluded = models.PositiveIntegerField(default=0, help_text="Cases left out: NaN/Inf, wrong shape, missing.")
    data_range = models.FloatField(null=True, blank=True)
    version = models.CharField(max_length=100)
    extra = models.JSONField(default=dict, blank=True, help_text="e.g. KID's SD over subsets.")
    computed_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["run", "tier", "metric", "extractor"]
        constraints = [
            models.UniqueConstraint(fields=["run", "metric", "extractor"], name="unique_metric_result_per_run")
        ]

    def __str__(self):
        return f"{self.run} {self.label} = {self.value}"

    @property
    def label(self):
        return catalog.label(self.metric, self.extractor)

    @property
    def info(self):
        return catalog.get(self.metric)

    @property
    def current_version(self):
        try:
            return catalog.metric_version(self.metric, self.extractor)
        except KeyError:
            return None

    @property
    def is_stale(self):
        return self.version != self.current_version

    @property
    def is_infinite(self):
        return self.value is not None and math.isinf(self.value)


def feature_path(instance, filename):
    return f"features/{filename}"


class FeatureSet(models.Model):
    """Cached features of a dataset's reference images or of a run's outputs, one extractor version.

    The file is an `.npz` (no pickle) with `features` (n, d) float64 and `case_pks`.
    """

    run = models.ForeignKey(Run, related_name="feature_sets", null=True, blank=True, on_delete=models.CASCADE)
    dataset = models.ForeignKey(
        "inference.Dataset", related_name="feature_sets", null=True, blank=True, on_delete=models.CASCADE
    )
    extractor = models.CharField(max_length=50)
    version = models.CharField(max_length=100)
    file = models.FileField(upload_to=feature_path, max_length=500)
    n = models.PositiveIntegerField()
    dim = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["run", "extractor", "version"],
                name="unique_run_features",
                condition=models.Q(run__isnull=False),
            ),
            models.UniqueConstraint(
                fields=["dataset", "extractor", "version"],
                name="unique_dataset_features",
                condition=models.Q(dataset__isnull=False),
            ),
        ]

    def __str__(self):
        owner = f"run {self.run_id}" if self.run_id else f"dataset {self.dataset_id}"
        return f"{self.extractor} {self.version} features of {owner}"


# ------------------------------------------------------------------ downstream-task tier


class DownstreamSetup(models.Model):
    """A task's declared downstream evaluation (train a segmenter on synthetic images, test on real ones).

    Holds the split of the task's labelled cases into train and test (test cases never enter
    training), the network recipe (`evaluation.segmentation.SegmentationConfig`, stored as a
    dict with its name) and the seeds. Once a downstream result exists it is frozen: the split,
    the recipe and the seeds no longer change, so every run and the real→real reference are
    scored on the same test cases the same way.
    """

    task = models.OneToOneField("inference.Task", related_name="downstream_setup", on_delete=models.CASCADE)
    name = models.CharField(max_length=100, help_text="The configuration's name.")
    config = models.JSONField(default=dict, help_text="SegmentationConfig fields.")
    seeds = models.JSONField(default=list, help_text="Training seeds; each gives one trained network.")
    split_seed = models.BigIntegerField(default=0)
    test_fraction = models.FloatField(default=0.5)
    train_case_ids = models.JSONField(default=list)
    test_case_ids = models.JSONField(default=list)
    unlabelled_case_ids = models.JSONField(default=list, help_text="Cases without a label or reference: unused.")
    auto_run = models.BooleanField(default=True, help_text="Queue a downstream job for every run that succeeds.")
    frozen_at = models.DateTimeField(null=True, blank=True, help_text="When the first result froze the split.")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"Downstream {self.name} on {self.task}"

    @property
    def is_frozen(self):
        return self.frozen_at is not None


class DownstreamStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class DownstreamJob(JobStateMachine, models.Model):
    """One downstream training job: on a run's outputs, or (run empty) on the real reference images.

    pending → queued → running → succeeded | failed | cancelled; running → queued when its worker
    is lost (the reaper); queued → cancelled; a final job → queued when staff run it again.
    """

    TRANSITIONS = {
        DownstreamStatus.PENDING: {DownstreamStatus.QUEUED, DownstreamStatus.FAILED, DownstreamStatus.CANCELLED},
        DownstreamStatus.QUEUED: {DownstreamStatus.RUNNING, DownstreamStatus.FAILED, DownstreamStatus.CANCELLED},
        DownstreamStatus.RUNNING: {
            DownstreamStatus.SUCCEEDED,
            DownstreamStatus.FAILED,
            DownstreamStatus.CANCELLED,
            DownstreamStatus.QUEUED,
        },
        DownstreamStatus.SUCCEEDED: {DownstreamStatus.QUEUED},
        DownstreamStatus.FAILED: {DownstreamStatus.QUEUED},
        DownstreamStatus.CANCELLED: {DownstreamStatus.QUEUED},
    }
    FINAL = {DownstreamStatus.SUCCEEDED, DownstreamStatus.FAILED, DownstreamStatus.CANCELLED}
    ACTIVE = {DownstreamStatus.QUEUED, DownstreamStatus.RUNNING}
    STATUS = DownstreamStatus
    JOB_NAME = "Downstream job"

    setup = models.ForeignKey(DownstreamSetup, related_name="jobs", on_delete=models.CASCADE)
    run = models.ForeignKey(
        Run, related_name="downstream_jobs", null=True, blank=True, on_delete=models.CASCADE,
        help_text="Empty for the real→real reference.",
    )  # fmt: skip
    status = models.CharField(
        max_length=20, choices=DownstreamStatus.choices, default=DownstreamStatus.PENDING, db_index=True
    )
    phase = models.CharField(max_length=200, blank=True)
    progress_done = models.PositiveIntegerField(default=0, help_text="Epochs done over all seeds.")
    progress_total = models.PositiveIntegerField(default=0)
    epoch = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True, help_text="Mean training loss of the last epoch.")
    attempts = models.PositiveSmallIntegerField(default=0)
    worker = models.CharField(max_length=200, blank=True)
    device = models.CharField(max_length=50, blank=True)
    error = models.TextField(blank=True)
    log = models.TextField(blank=True)
    curves = models.JSONField(default=dict, blank=True, help_text="seed → {'loss': [per epoch]}.")
    results = models.JSONField(
        default=dict, blank=True, help_text="Per seed and test case Dice/HD95, the summary, the cases used."
    )
    seconds = models.FloatField(null=True, blank=True)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["setup", "run"], name="unique_downstream_job_per_run", condition=models.Q(run__isnull=False)
            ),
            models.UniqueConstraint(
                fields=["setup"], name="unique_downstream_reference", condition=models.Q(run__isnull=True)
            ),
        ]

    def __str__(self):
        return f"Downstream of {self.run or 'the real images (reference)'}"

    @property
    def is_reference(self):
        return self.run_id is None

    @property
    def is_active(self):
        return self.status in self.ACTIVE
