"""Blinded reader studies: a study of a task's runs, its frozen items, readers' sessions and answers.

What a reader's browser may know of an item is one `Assignment.token` (random, per reader and
position) and the blinded arrays behind it (`StudyImage`: renormalised, requantised, stored
under random names, headers computed at freeze time). The truth (real or synthetic, which
run, which case) stays in `StudyImage` and `StudyItem`, which only editors' pages read.
"""

import secrets
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.urls import reverse
from django.utils import timezone

from core.models import IllegalTransition
from inference.models import Case, Run, Task


def new_token():
    """An opaque item token: 128 random bits, URL-safe (22 characters)."""
    return secrets.token_urlsafe(16)


def new_seed():
    return secrets.randbelow(2**31)


class Design(models.TextChoices):
    TURING = "turing", "Visual Turing test (real or synthetic)"
    LIKERT = "likert", "Likert scales"
    PAIRWISE = "pairwise", "Pairwise preference"
    HALLUCINATION = "hallucination", "Hallucination marking"


class Acceptance(models.TextChoices):
    RADIUS = "radius", "Within a radius of the lesion's centre"
    OVERLAP = "overlap", "Inside the lesion's truth mask"


class RealPool(models.TextChoices):
    TEST = "test", "References of the task's test dataset"
    REFERENCE = "reference", "The task's reference dataset"


class StudyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    RUNNING = "running", "Running"
    CLOSED = "closed", "Closed"


#: The three scales Likert studies start from (Khader et al. 2023 use anchored realism levels).
DEFAULT_SCALES = [
    {
        "key": "realism",
        "label": "Realism",
        "anchors": [
            "Clearly artificial",
            "Mostly artificial",
            "Uncertain",
            "Mostly realistic",
            "Indistinguishable from a real acquisition",
        ],
    },
    {
        "key": "diagnostic_quality",
        "label": "Diagnostic quality",
        "anchors": [
            "Non-diagnostic",
            "Poor: major limitations",
            "Adequate: some limitations",
            "Good: minor limitations",
            "Excellent",
        ],
    },
    {
        "key": "anatomy",
        "label": "Anatomical plausibility",
        "anchors": [
            "Implausible anatomy",
            "Major anatomical errors",
            "Some anatomical errors",
            "Minor anatomical errors",
            "Fully plausible anatomy",
        ],
    },
]


def validate_scales(scales):
    """Likert scales: a non-empty list of {key, label, anchors (five strings, 1 … 5)}, unique keys."""
    if not isinstance(scales, list) or not scales:
        raise ValidationError("Give at least one scale.")
    keys = set()
    for scale in scales:
        if not isinstance(scale, dict) or not {"key", "label", "anchors"} <= set(scale):
            raise ValidationError("Each scale needs a key, a label and five anchors.")
        anchors = scale["anchors"]
        if not isinstance(anchors, list) or len(anchors) != 5 or not all(isinstance(a, str) and a for a in anchors):
            raise ValidationError(f"Scale {scale.get('label')!r}: give five anchor texts, for 1 to 5.")
        if not isinstance(scale["key"], str) or not scale["key"] or not isinstance(scale["label"], str):
            raise ValidationError("A scale's key and label are non-empty texts.")
        if scale["key"] in keys:
            raise ValidationError(f"Scale key {scale['key']!r} appears twice.")
        keys.add(scale["key"])


class ReaderStudy(models.Model):
    """A blinded study of some of a task's runs. Draft → running (items frozen) → closed.

    `transition` holds the state machine. Once running, the item list never changes; readers
    may still be invited (their sessions get the same items in their own order).
    """

    TRANSITIONS = {
        StudyStatus.DRAFT: {StudyStatus.RUNNING},
        StudyStatus.RUNNING: {StudyStatus.CLOSED},
        StudyStatus.CLOSED: {StudyStatus.RUNNING},
    }
    #: What editors set on a draft (the study form's fields); the many-to-many ones are `runs`, `readers`, `editors`.
    SETTINGS = (
        "title",
        "instructions",
        "task",
        "design",
        "runs",
        "items_per_model",
        "real_pool",
        "real_ratio",
        "scales",
        "allow_no_preference",
        "repeated_items",
        "attention_checks",
        "probe_mode",
        "acceptance",
        "acceptance_radius_px",
        "readers",
        "editors",
        "seed",
    )

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    title = models.CharField(max_length=200)
    instructions = models.TextField(blank=True, help_text="Shown to readers at the top of the workspace.")
    task = models.ForeignKey(Task, related_name="reader_studies", on_delete=models.PROTECT)
    design = models.CharField(max_length=20, choices=Design.choices)
    runs = models.ManyToManyField(Run, related_name="reader_studies")
    real_pool = models.CharField(max_length=20, choices=RealPool.choices, default=RealPool.TEST)
    paired_cases = models.BooleanField(
        default=False,
        help_text="Turing test with several runs: show every run the same cases (a paired comparison between runs, "
        "but readers meet each anatomy once per run). Off: each run gets cases of its own.",
    )
    items_per_model = models.PositiveIntegerField(default=10, help_text="Cases shown per run (per pair of runs).")
    real_ratio = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0), MaxValueValidator(20)],
        help_text="Real images per synthetic image (Turing test), or real control images per model's count "
        "(Likert, hallucination); 0 for none.",
    )
    scales = models.JSONField(default=list, blank=True, help_text="Likert scales: key, label, five anchors.")
    allow_no_preference = models.BooleanField(default=False, help_text="Pairwise: offer “no preference”.")
    repeated_items = models.PositiveIntegerField(default=0, help_text="Items shown twice (intra-reader agreement).")
    attention_checks = models.PositiveIntegerField(default=0, help_text="Corrupted items with a known answer.")
    probe_mode = models.BooleanField(
        default=False,
        help_text="Hallucination marking: read the runs' probe runs (one item per probe case and run), scored by "
        "FROC/wAFROC against the probes where each run hallucinated. Readers rate each mark 1–5.",
    )
    acceptance = models.CharField(
        max_length=10, choices=Acceptance.choices, default=Acceptance.RADIUS,
        help_text="Probe mode: when a mark localises a lesion.",
    )  # fmt: skip
    acceptance_radius_px = models.FloatField(
        default=8.0,
        validators=[MinValueValidator(0.5), MaxValueValidator(200)],
        help_text="Probe mode, radius acceptance: the largest distance (pixels) from the lesion's centre.",
    )
    seed = models.BigIntegerField(
        default=new_seed,
        validators=[MinValueValidator(0), MaxValueValidator(2**63 - 1)],
        help_text="Seeds case selection and the items' build.",
    )
    readers = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="reader_studies", blank=True)
    editors = models.ManyToManyField(settings.AUTH_USER_MODEL, related_name="edited_studies", blank=True)
    status = models.CharField(max_length=20, choices=StudyStatus.choices, default=StudyStatus.DRAFT)
    build_log = models.TextField(blank=True, help_text="What the freeze chose and left out.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="created_studies"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    sources_released_at = models.DateTimeField(
        null=True, blank=True, editable=False,
        help_text="When results were first published (its readers' blinding ended): kept after a withdrawal.",
    )  # fmt: skip

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "reader studies"

    def __str__(self):
        return self.title

    def get_absolute_url(self):
        return reverse("study-detail", args=[self.pk])

    @property
    def is_frozen(self):
        return self.status != StudyStatus.DRAFT

    def clean(self):
        if self.design == Design.LIKERT:
            validate_scales(self.scales)
        if self.real_ratio < 0:
            raise ValidationError({"real_ratio": "Give 0 or more."})
        if self.items_per_model < 1:
            raise ValidationError({"items_per_model": "Give at least 1."})
        if self.probe_mode and self.design != Design.HALLUCINATION:
            raise ValidationError({"probe_mode": "Probe mode is for hallucination-marking studies."})
        if not self.acceptance_radius_px > 0:
            raise ValidationError({"acceptance_radius_px": "Give a positive radius."})

    def transition(self, new_status, save=True):
        new_status = StudyStatus(new_status)
        if new_status not in self.TRANSITIONS[StudyStatus(self.status)]:
            raise IllegalTransition(f"Study {self.pk}: {self.status} → {new_status} is not allowed")
        now = timezone.now()
        self.status = new_status
        if new_status == StudyStatus.RUNNING:
            self.started_at = self.started_at or now
            self.closed_at = None
        elif new_status == StudyStatus.CLOSED:
            self.closed_at = now
        if save:
            self.save()

    def is_editor(self, user):
        if not (user and user.is_authenticated):
            return False
        if user.is_staff or self.created_by_id == user.pk:
            return True
        return self.editors.filter(pk=user.pk).exists()


def study_image_path(instance, filename):
    # The name is random: it never reaches a reader, and says nothing even if it did.
    return f"readerstudies/{instance.study.uid}/{secrets.token_hex(16)}.npy"


class ImageSource(models.TextChoices):
    REAL = "real", "Real"
    SYNTHETIC = "synthetic", "Synthetic"
    ATTENTION = "attention", "Attention check"


class StudyImage(models.Model):
    """One blinded image: renormalised and requantised at freeze time, whatever its source."""

    study = models.ForeignKey(ReaderStudy, related_name="images", on_delete=models.CASCADE)
    source = models.CharField(max_length=20, choices=ImageSource.choices)
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.PROTECT, related_name="study_images")
    case = models.ForeignKey(Case, on_delete=models.PROTECT, related_name="study_images")
    array = models.FileField(upload_to=study_image_path, max_length=500)
    header = models.JSONField(help_text="The viewer header, computed from the blinded array.")
    source_sha256 = models.CharField(
        max_length=64, blank=True, db_index=True,
        help_text="Content hash of the source array (the reference or the output): nothing with these pixels "
        "reaches the study's readers until its results are published.",
    )  # fmt: skip

    class Meta:
        ordering = ["study", "pk"]

    def __str__(self):
        return f"{self.study} image {self.pk}"

    @property
    def group(self):
        """The analysis group: the run's pk as text, "real", or "attention"."""
        return str(self.run_id) if self.source == ImageSource.SYNTHETIC else self.source


class ItemKind(models.TextChoices):
    REGULAR = "regular", "Regular"
    REPEAT = "repeat", "Repeat"
    ATTENTION = "attention", "Attention check"


class StudyItem(models.Model):
    """What a reader answers once: one image, or two (pairwise: `image` is run A's, `image_b` run B's)."""

    study = models.ForeignKey(ReaderStudy, related_name="items", on_delete=models.CASCADE)
    index = models.PositiveIntegerField(help_text="Order of the build (not what readers see).")
    kind = models.CharField(max_length=20, choices=ItemKind.choices, default=ItemKind.REGULAR)
    image = models.ForeignKey(StudyImage, related_name="+", on_delete=models.PROTECT)
    image_b = models.ForeignKey(StudyImage, related_name="+", null=True, blank=True, on_delete=models.PROTECT)
    repeat_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.CASCADE, related_name="repeats")
    expected = models.JSONField(default=dict, blank=True, help_text="Attention checks: the answer that passes.")

    class Meta:
        ordering = ["study", "index"]
        constraints = [models.UniqueConstraint(fields=["study", "index"], name="unique_item_index_per_study")]

    def __str__(self):
        return f"{self.study} item {self.index}"


class ReaderSession(models.Model):
    """One reader's pass through a study: the seeded order (its assignments) and where they are."""

    study = models.ForeignKey(ReaderStudy, related_name="sessions", on_delete=models.CASCADE)
    reader = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="reader_sessions", on_delete=models.CASCADE)
    seed = models.BigIntegerField(default=new_seed)
    answered = models.PositiveIntegerField(default=0, help_text="Items answered; the next position.")
    total = models.PositiveIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    last_activity_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["study", "reader__username"]
        constraints = [models.UniqueConstraint(fields=["study", "reader"], name="one_session_per_reader")]

    def __str__(self):
        return f"{self.reader} in {self.study}"

    @property
    def is_finished(self):
        return self.finished_at is not None


class Assignment(models.Model):
    """An item at a position of one reader's order, known to the browser only by `token`."""

    session = models.ForeignKey(ReaderSession, related_name="assignments", on_delete=models.CASCADE)
    item = models.ForeignKey(StudyItem, related_name="assignments", on_delete=models.CASCADE)
    position = models.PositiveIntegerField()
    token = models.CharField(max_length=32, unique=True, default=new_token)
    swapped = models.BooleanField(default=False, help_text="Pairwise: run B's image shown on the left.")
    shown_at = models.DateTimeField(null=True, blank=True, help_text="When the server first sent it.")
    draft = models.JSONField(null=True, blank=True, help_text="Autosaved, not yet submitted answer.")

    class Meta:
        ordering = ["session", "position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "position"], name="unique_position_per_session"),
            models.UniqueConstraint(fields=["session", "item"], name="unique_item_per_session"),
        ]

    def __str__(self):
        return f"{self.session} #{self.position}"

    def images(self):
        """The images in the order the reader sees them (left, right)."""
        shown = [self.item.image, self.item.image_b] if self.item.image_b_id else [self.item.image]
        return shown[::-1] if self.swapped else shown


class Answer(models.Model):
    """A submitted answer: exactly one per assignment, and one per idempotency key within a session."""

    assignment = models.OneToOneField(Assignment, related_name="answer", on_delete=models.CASCADE)
    session = models.ForeignKey(ReaderSession, related_name="answers", on_delete=models.CASCADE)
    value = models.JSONField(help_text="As the reader gave it; pairwise sides are resolved in the analysis.")
    idempotency_key = models.CharField(max_length=64)
    duration_ms = models.PositiveIntegerField(null=True, help_text="Server time from showing to answering.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "assignment__position"]
        constraints = [
            models.UniqueConstraint(fields=["session", "idempotency_key"], name="unique_idempotency_key_per_session")
        ]

    def __str__(self):
        return f"Answer to {self.assignment}"


def invitation_token():
    return secrets.token_urlsafe(32)


class Invitation(models.Model):
    """A one-time link by which a reader joins a study: it makes their account (with a password they choose)
    or adds the account they are logged in with."""

    study = models.ForeignKey(ReaderStudy, related_name="invitations", on_delete=models.CASCADE)
    token = models.CharField(max_length=64, unique=True, default=invitation_token, editable=False)
    email = models.EmailField(blank=True, help_text="Where the link was sent (when e-mail is configured).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    def __str__(self):
        return f"Invitation to {self.study}"

    def get_absolute_url(self):
        return reverse("study-invitation", args=[self.token])

    def is_open(self, now):
        return self.used_at is None and now < self.expires_at
