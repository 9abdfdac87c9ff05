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


#: PostgreSQL's bigint: a primary key past it is not a row that could exist (and the query would fail).
MAX_PK = 2**63 - 1


class PrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A related row by primary key; a key that is not a whole number in the database's range is a 400
    ("Invalid pk") before any query, never a database error."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not (isinstance(data, int) or (isinstance(data, str) and data.isdigit())):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if not 0 < int(data) <= MAX_PK:
            self.fail("does_not_exist", pk_value=data)
        return super().to_internal_value(int(data))
