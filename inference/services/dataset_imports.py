"""Dataset imports started from the site: the upload is kept, a worker imports it as a background job
(`core.jobs`, kind `DatasetImport`, on the metrics queue: CPU work), and the page follows its progress.

The name is checked when the job is started (a clear error at once); the import itself checks it again,
as it checks everything else, and on failure the job keeps every problem the importers found, each
naming its file, in `errors`. The uploaded archive is deleted once the job is over, whatever its outcome.
"""

import logging
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from core import jobs
from core.models import JobStatus

from ..models import Dataset, DatasetImport
from .datasets import DatasetImportError, import_dataset

__all__ = ["run_import", "start_import"]

log = logging.getLogger(__name__)


def start_import(*, name: str, upload, description: str = "", is_public: bool = False, user=None) -> DatasetImport:
    """Keep `upload` (an uploaded zip) and queue its import as dataset `name`; raises DatasetImportError
    (its `field`: "name" or "file") for a missing or taken name or an upload over the size limit, storing
    nothing."""
    name = (name or "").strip()
    filename = Path(getattr(upload, "name", "") or "upload.zip").name
    if not name:
        raise _refused("name", "the dataset needs a name")
    if Dataset.objects.filter(name=name).exists():
        raise _refused("name", f"a dataset named '{name}' already exists: choose another name")
    size = getattr(upload, "size", None)
    if size is not None and size > settings.MEDGEN_MAX_UPLOAD_BYTES:
        raise _refused("file", f"{filename}: {size} bytes, over the upload limit of {settings.MEDGEN_MAX_UPLOAD_BYTES}")
    job = DatasetImport(name=name, description=description, is_public=is_public, archive_name=filename)
    job.requested_by = user
    job.archive.save(filename, upload, save=False)
    with transaction.atomic():
        job.save()
        jobs.queue(job)
    return job


def run_import(job: DatasetImport, context) -> None:
    """The job's handler: import the kept archive; on refusal fail with every problem listed."""
    context.progress(done=0, total=2, phase=f"reading {job.archive_name}")

    def progress(done, total, phase):
        context.progress(done=done, total=total, phase=phase)

    try:
        with default_storage.open(job.archive.name, "rb") as handle:
            dataset = import_dataset(
                job.name,
                handle,
                description=job.description,
                source_label=job.archive_name,
                is_public=job.is_public,
                user=job.requested_by,
                progress=progress,
            )
    except DatasetImportError as exc:
        context.finish(JobStatus.FAILED, error=exc.detail, errors=list(exc.errors), progress_done=0)
        _drop_archive(job)
        return
    except BaseException:
        _drop_archive(job)
        raise
    cases = dataset.cases.count()
    if not context.finish(JobStatus.SUCCEEDED, dataset=dataset, progress_done=2, phase=f"imported {cases} case(s)"):
        log.warning("dataset import %s was taken away after storing dataset %s", job.pk, dataset.pk)
    _drop_archive(job)


def _refused(field, problem):
    error = DatasetImportError([problem])
    error.field = field
    return error


def _drop_archive(job):
    name = job.archive.name
    if name:
        try:
            default_storage.delete(name)
        except OSError:
            log.warning("could not delete the archive %s of dataset import %s", name, job.pk, exc_info=True)
        DatasetImport.objects.filter(pk=job.pk).update(archive="")
