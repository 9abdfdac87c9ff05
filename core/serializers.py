"""The one shape every job's API shows its progress in (the pages' one JS poller reads it).

`JobSerializer` is the base of each kind's ModelSerializer; `job_progress(job)` gives the same
fields as a dict for payloads that are not serializers.
"""

from rest_framework import serializers

JOB_FIELDS = [
    "status",
    "is_final",
    "phase",
    "progress_done",
    "progress_total",
    "progress_percent",
    "attempts",
    "error",
    "created_at",
    "queued_at",
    "started_at",
    "finished_at",
    "heartbeat_at",
]


class JobSerializer(serializers.ModelSerializer):
    is_final = serializers.BooleanField(read_only=True)
    progress_percent = serializers.IntegerField(read_only=True)


def job_progress(job):
    return {
        "status": job.status,
        "is_final": job.is_final,
        "phase": job.phase,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "progress_percent": job.progress_percent,
        "attempts": job.attempts,
        "error": job.error,
        "created_at": job.created_at,
        "queued_at": job.queued_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "heartbeat_at": job.heartbeat_at,
    }
