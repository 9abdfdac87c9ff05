"""The one background-job model of the platform: every job kind (runs, model validations,
evaluations, downstream trainings…) is a concrete subclass of `Job`.

A job moves only through `transition`, which holds the one state machine:

    pending → queued → running → succeeded | failed | cancelled
    running → queued            (its worker was lost: the reaper or a takeover)
    final   → queued            (only kinds with RERUNNABLE: staff run them again)

Queueing clears the last error (and, for a re-run, the previous start and finish); the first
start stamps `started_at` and the heartbeat; a final status stamps `finished_at` and, once the
transaction commits, sends `core.signals.job_finished` (see `core.jobs` for the claim, the
worker's context, the reaper and the lost-message resend).
"""

from django.conf import settings
from django.db import models
from django.utils import timezone

from .signals import send_finished_on_commit


class IllegalTransition(Exception):
    """A status change the job's state machine does not allow."""


class JobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


FINAL = frozenset({JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED})
ACTIVE = frozenset({JobStatus.QUEUED, JobStatus.RUNNING})

_BASE_TRANSITIONS = {
    JobStatus.PENDING: {JobStatus.QUEUED, JobStatus.CANCELLED, JobStatus.FAILED},
    JobStatus.QUEUED: {JobStatus.RUNNING, JobStatus.CANCELLED, JobStatus.FAILED},
    JobStatus.RUNNING: {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.QUEUED},
}


class Job(models.Model):
    """Abstract: status, ownership (attempt, worker, heartbeat), progress, log and error of a job.

    Subclasses set `JOB_NAME` (for messages) and `RERUNNABLE` (may a final job be queued again).
    """

    JOB_NAME = "Job"
    RERUNNABLE = False
    FINAL = FINAL
    ACTIVE = ACTIVE

    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.PENDING, db_index=True)
    attempts = models.PositiveSmallIntegerField(default=0, help_text="Claims by a worker, takeovers included.")
    worker = models.CharField(max_length=200, blank=True, help_text="host:pid of the attempt's worker.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    phase = models.CharField(max_length=200, blank=True, help_text="What the job is doing now.")
    log = models.TextField(blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Set once every receiver of `job_finished` has run without raising; the reaper sends the
    # signal again for final jobs where it is still empty (a receiver failed, or the process died).
    chained_at = models.DateTimeField(null=True, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    @classmethod
    def transitions(cls):
        table = {status: set(allowed) for status, allowed in _BASE_TRANSITIONS.items()}
        for status in FINAL:
            table[status] = {JobStatus.QUEUED} if cls.RERUNNABLE else set()
        return table

    @property
    def is_final(self):
        return self.status in FINAL

    @property
    def is_active(self):
        return self.status in ACTIVE

    @property
    def progress_percent(self):
        return round(100 * self.progress_done / self.progress_total) if self.progress_total else 0

    def can_transition(self, new_status):
        return JobStatus(new_status) in self.transitions()[JobStatus(self.status)]

    def transition(self, new_status, *, error="", save=True):
        """Move to `new_status` if the state machine allows it; stamp times; log it."""
        new_status = JobStatus(new_status)
        if not self.can_transition(new_status):
            raise IllegalTransition(f"{self.JOB_NAME} {self.pk}: {self.status} → {new_status} is not allowed")
        now = timezone.now()
        old = self.status
        self.status = new_status
        if new_status == JobStatus.QUEUED:
            self.queued_at = now
            self.error = ""
            if old in FINAL:  # a re-run: its times are its own
                self.started_at = self.finished_at = None
        elif new_status == JobStatus.RUNNING:
            self.started_at = self.started_at or now
            self.finished_at = None
            self.heartbeat_at = now
        elif new_status in FINAL:
            self.finished_at = now
            self.chained_at = None
        if error:
            self.error = error
        self.append_log(f"{old} → {new_status}" + (f": {error}" if error else ""), save=False)
        if save:
            self.save()
        if new_status in FINAL:
            send_finished_on_commit(type(self), self.pk, new_status)

    def append_log(self, message, save=True):
        stamp = timezone.now().strftime("%Y-%m-%d %H:%M:%S")
        self.log = f"{self.log}[{stamp}] {message}\n"
        if save:
            self.save(update_fields=["log"])
