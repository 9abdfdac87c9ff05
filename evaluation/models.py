"""Evaluations of runs: per-case pixel metrics, per-run metric summaries with bootstrap CIs.

An `Evaluation` belongs to one run and holds the job's state machine; re-evaluating a run
moves the same row back to queued, and results are written with update-or-create on their
unique keys, so a run always has at most one value per (case, metric) and per
(metric, extractor). Each result stores the metric version it was computed with; one whose
version differs from the current code is stale.
"""

import math

from django.db import models

from core.models import Job
from inference.models import Case, Run
from inference.storage import load_array

from .formatting import decode_value
from .metrics import catalog
from .task_settings import computed_in, region_name


class Evaluation(Job):
    """The evaluation job of one run (a kind of `core.models.Job`); staff may run it again, which moves
    the same row back to queued."""

    JOB_NAME = "Evaluation"
    RERUNNABLE = True

    run = models.OneToOneField(Run, related_name="evaluation", on_delete=models.CASCADE)
    data_range = models.FloatField(null=True, blank=True, help_text="Intensity range used for PSNR/SSIM.")
    data_range_source = models.CharField(max_length=200, blank=True)
    config = models.JSONField(default=dict, blank=True, help_text="Metrics, extractors, bootstrap settings used.")
    unavailable = models.JSONField(
        default=dict, blank=True, help_text="Metric or extractor → why it was not computed for this run."
    )
    seconds = models.FloatField(null=True, blank=True)
    cases_per_second = models.FloatField(null=True, blank=True)

    def __str__(self):
        return f"Evaluation of {self.run}"


class CaseStatus(models.TextChoices):
    OK = "ok", "Evaluated"
    NONFINITE = "nonfinite", "NaN/Inf in the output"
    WRONG_SHAPE = "wrong_shape", "Wrong output shape"
    MISSING = "missing", "No output or no reference"
    EXTREME = "extreme", "Output values out of any image's range"
    REFUSED = "refused", "Not scorable under the task's profile or region"


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
    region_fraction = models.FloatField(
        null=True, blank=True, help_text="Share of the case's voxels inside the region of its pixel metrics."
    )
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
    region = models.CharField(
        max_length=200, blank=True, help_text="Pixel metrics: the region they were computed in (see task_settings)."
    )
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
    def version_is_stale(self):
        return self.version != self.current_version

    @property
    def is_stale(self):
        """Computed with another metric version, or (a pixel result) in another region than the task's now
        (reads the run's task: callers over many runs compare the region themselves, as the board does)."""
        if self.version_is_stale:
            return True
        return self.tier == catalog.PIXEL and computed_in(self.region) != region_name(self.run.task)

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


class DownstreamJob(Job):
    """One downstream training job (a kind of `core.models.Job`): on a run's outputs, or (run empty) on
    the real reference images. Staff may run it again."""

    JOB_NAME = "Downstream job"
    RERUNNABLE = True

    setup = models.ForeignKey(DownstreamSetup, related_name="jobs", on_delete=models.CASCADE)
    run = models.ForeignKey(
        Run, related_name="downstream_jobs", null=True, blank=True, on_delete=models.CASCADE,
        help_text="Empty for the real→real reference.",
    )  # fmt: skip
    epoch = models.PositiveIntegerField(default=0)
    loss = models.FloatField(null=True, blank=True, help_text="Mean training loss of the last epoch.")
    device = models.CharField(max_length=50, blank=True)
    curves = models.JSONField(default=dict, blank=True, help_text="seed → {'loss': [per epoch]}.")
    results = models.JSONField(
        default=dict, blank=True, help_text="Per seed and test case Dice/HD95, the summary, the cases used."
    )
    seconds = models.FloatField(null=True, blank=True)

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


# --------------------------------------------------------------------------- hallucination probes


def probe_path(instance, filename):
    return f"probes/{instance.probe_set_id}/{filename}"


class ProbeSet(Job):
    """A task's probe set and its build job (a kind of `core.models.Job`): seeded probe cases made from the task's
    test cases (`evaluation.probes.construct`), stored as a dataset of their own with one `ProbeCase` per case."""

    JOB_NAME = "Probe set"

    task = models.ForeignKey("inference.Task", related_name="probe_sets", on_delete=models.CASCADE)
    dataset = models.OneToOneField(
        "inference.Dataset", related_name="probe_set", null=True, blank=True, on_delete=models.RESTRICT
    )  # RESTRICT, not PROTECT: the dataset is not deleted under its probe set, but both go with their task
    seed = models.BigIntegerField(default=0)
    kinds = models.JSONField(default=list, help_text="Probe kinds made per test case (construct.KINDS).")
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text="Tissue label codes (plausible_labels, csf_labels, background_labels, lesion_labels) when the "
        "cases' mask images are tissue maps; radius_px; the lesion levels used (filled in by the job).",
    )
    skipped = models.JSONField(default=dict, blank=True, help_text="Test case → probe kind → why none was made.")

    def __str__(self):
        return f"Probe set {self.pk} of {self.task}"


class ProbeCase(models.Model):
    """One probe: a case of the probe set's dataset, the test case it was made from, and its truth."""

    probe_set = models.ForeignKey(ProbeSet, related_name="probe_cases", on_delete=models.CASCADE)
    case = models.OneToOneField(Case, related_name="probe", on_delete=models.CASCADE)
    source = models.ForeignKey(Case, related_name="probes_made", on_delete=models.CASCADE)
    kind = models.CharField(max_length=30)
    expected = models.CharField(max_length=10, help_text="present | absent: what a faithful output shows.")
    truth = models.JSONField(help_text="construct.Truth: centre, extent, angle, area, contrast, site.")
    truth_mask = models.FileField(upload_to=probe_path, max_length=500, help_text="(1, H, W): 1 on the region.")

    class Meta:
        ordering = ["probe_set", "case__case_id"]

    def __str__(self):
        return f"{self.case.case_id} ({self.kind})"

    def truth_mask_array(self):
        """(H, W) bool: the probe's truth region."""
        return load_array(self.truth_mask)[0] > 0


class ProbeScore(models.Model):
    """The hallucination scores of one probe run (`evaluation.probes.scoring`)."""

    run = models.OneToOneField(Run, related_name="probe_score", on_delete=models.CASCADE)
    probe_set = models.ForeignKey(ProbeSet, related_name="scores", on_delete=models.CASCADE)
    outcomes = models.JSONField(default=list, help_text="Per probe and sample: contrast fraction, outcome.")
    index = models.JSONField(default=dict, help_text="Hallucination index (overall and per kind) with its CI.")
    detector_marks = models.JSONField(default=dict, help_text="Detector → marks (case, sample, row, col, rating).")
    config = models.JSONField(default=dict, blank=True, help_text="The rule's thresholds, bootstrap settings.")
    uncertainty = models.JSONField(
        default=dict,
        blank=True,
        help_text="Stochastic runs: the SD map's AUC for hallucinated pixels, P(hallucination | SD > tau) "
        "(evaluation.probes.uncertainty); empty for one sample per probe.",
    )
    computed_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Probe scores of {self.run}"
