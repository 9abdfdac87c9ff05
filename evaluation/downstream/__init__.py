"""The downstream-task tier (clinical): train a segmenter on a run's outputs, test it on real images.

Its rooms: `services` (declaring a task's setup, requesting and cancelling jobs: the writes),
`training` (the job's handler), `results` (the run's clinical-tier results from a finished job) and
`selectors` (the reads: a task's setup and real→real reference, a run's job, the run page's block).
The JSON shapes of the API are `evaluation.serializers.downstream_job_payload` and
`downstream_setup_payload`. What other apps and the app's views use is named here.
"""

from .selectors import curves_url, job_of, reference_curves_url, reference_job, setup_of, task_reference
from .services import (
    DownstreamConflict,
    DownstreamError,
    cancel_downstream,
    declare_downstream,
    request_downstream,
    request_reference,
)

__all__ = [
    "DownstreamConflict",
    "DownstreamError",
    "cancel_downstream",
    "curves_url",
    "declare_downstream",
    "job_of",
    "reference_curves_url",
    "reference_job",
    "request_downstream",
    "request_reference",
    "setup_of",
    "task_reference",
]
