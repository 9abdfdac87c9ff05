"""What every job kind's admin shares: its job fields, read-only (a status moves only through its
state machine), and a progress column."""

from django.contrib import admin

JOB_FIELDS = (
    "status",
    "phase",
    "progress_done",
    "progress_total",
    "attempts",
    "worker",
    "error",
    "log",
    "requested_by",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
    "chained_at",
)


class JobAdmin(admin.ModelAdmin):
    """Subclasses list their own `fields` before `JOB_FIELDS`; every job field is read-only."""

    list_filter = ("status",)

    def get_readonly_fields(self, request, obj=None):
        return tuple(dict.fromkeys((*super().get_readonly_fields(request, obj), *JOB_FIELDS)))

    @admin.display(description="Progress")
    def progress(self, job):
        return f"{job.progress_done}/{job.progress_total} ({job.progress_percent}%)"
