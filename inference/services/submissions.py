"""Submissions: precomputed outputs uploaded as a zip, validated, stored as a run.

Layout of the zip: one file (NIfTI, NPY/NPZ, PNG/TIFF, DICOM) or one DICOM series folder
per case, named by the case id (`<case_id>.nii.gz`, `<case_id>.npy`, `<case_id>/…dcm`).
Stochastic submissions name several samples `<case_id>_sample<k>` with k from 0.
Every case of the task must be present, with the reference's spatial shape, and with
finite values; otherwise the run fails with the list of every problem found.
"""

import re
import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction

from core import jobs
from core.models import JobStatus

from .. import importers
from ..models import ImageRole, Run, RunKind
from ..storage import UploadTooLarge, delete_files, local_copy, spool_upload
from .datasets import import_limits
from .runs import RunError, store_output

SAMPLE_SUFFIX = re.compile(r"^(?P<case>.+)_sample(?P<k>\d+)$")
IMAGE_SUFFIXES = (".nii.gz", ".nii", ".npy", ".npz", ".png", ".tif", ".tiff", ".dcm")


def create_submission(task, source, *, name: str, user=None, original_name: str = "", phase=None) -> Run:
    """Store the uploaded zip as a submission run (in the task's `phase`, for a participant) and queue its
    validation."""
    try:
        path = spool_upload(source, settings.MEDGEN_MAX_UPLOAD_BYTES, prefix="medgen-submission-")
    except UploadTooLarge as exc:
        raise RunError(str(exc)) from None
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != b"PK\x03\x04":
                raise RunError("A submission must be a zip archive of outputs named by case id.")
        total = task.dataset.cases.count()
        with transaction.atomic():
            run = Run(
                name=name, task=task, kind=RunKind.SUBMISSION, progress_total=total, requested_by=user, task_phase=phase
            )
            run.save()
            with open(path, "rb") as handle:
                run.submission_file.save(original_name or "submission.zip", File(handle), save=True)
            run.append_log(f"submission uploaded ({original_name or 'submission.zip'})")
            jobs.queue(run)
        return run
    finally:
        path.unlink(missing_ok=True)


def case_key(path):
    """Case id (and sample) from a file or series-folder name."""
    name = path.name
    for suffix in IMAGE_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    match = SAMPLE_SUFFIX.match(name)
    if match:
        return match["case"], int(match["k"])
    return name, 0


def collect_entries(root, case_ids):
    """Map (case_id, sample) → path for every top-level file or folder of the extracted zip."""
    entries = [p for p in sorted(root.iterdir()) if not p.name.startswith(".") and p.name != "__MACOSX"]
    # A zip made by compressing a folder has that folder alone at the top.
    if len(entries) == 1 and entries[0].is_dir() and case_key(entries[0])[0] not in case_ids:
        entries = [p for p in sorted(entries[0].iterdir()) if not p.name.startswith(".")]
    found, problems = {}, []
    for entry in entries:
        key = case_key(entry)
        if key in found:
            problems.append(f"{entry.name}: a second file for case '{key[0]}' sample {key[1]}")
        found[key] = entry
    return found, problems


def validate(run, context):
    """Job handler of submission runs: check every case and store the outputs (all or nothing)."""
    workdir = Path(tempfile.mkdtemp(prefix="medgen-submission-"))
    try:
        problems, outputs = _check(run, workdir)
        if problems:
            count = len(problems)
            context.fail(f"The submission does not validate ({count} problem(s)).", problems=problems)
            return
        written = []

        def store_all(_run):
            for case, sample, array in outputs:
                written.append(store_output(run, case, sample, array).array.name)

        try:
            context.finish(JobStatus.SUCCEEDED, progress_done=run.progress_total, problems=[], effects=store_all)
        except BaseException:
            delete_files(written)  # their rows were rolled back: no file without its row
            raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check(run, workdir):
    problems, outputs = [], []
    limits = import_limits()
    archive = local_copy(run.submission_file)
    try:
        importers.safe_extract_zip(
            archive.path,
            workdir,
            settings.MEDGEN_MAX_ARCHIVE_BYTES,
            settings.MEDGEN_MAX_ARCHIVE_ENTRIES,
            display_name=Path(run.submission_file.name).name,
            limits=limits,
        )
    except importers.ImageImportError as exc:
        return [str(exc)], []
    finally:
        if archive.is_temporary:
            archive.path.unlink(missing_ok=True)

    cases = {case.case_id: case for case in run.task.dataset.cases.prefetch_related("images")}
    found, problems = collect_entries(workdir, cases)
    for case_id, sample in sorted(found):
        if case_id not in cases:
            problems.append(f"{found[(case_id, sample)].name}: no case '{case_id}' in the task's dataset")
    samples, sample_problems = _expected_samples(run, found, cases)
    problems += sample_problems
    for number, (case_id, case) in enumerate(sorted(cases.items())):
        if len(problems) >= limits.max_errors:  # enough to act on: no more outputs are read
            note = f"checking stopped after {limits.max_errors} problems: cases not checked: {len(cases) - number}"
            return _listed(problems, limits, note), []
        keys = sorted(k for k in found if k[0] == case_id)
        if not keys:
            problems.append(f"case '{case_id}': no output in the submission")
            continue
        numbers = [sample for _, sample in keys]
        if numbers != list(range(samples)):
            listed = ", ".join(str(n) for n in numbers)
            problems.append(f"case '{case_id}': samples {listed}; expected samples 0 … {samples - 1} (_sample0 …)")
            continue
        images = {(im.role, im.index): im for im in case.images.all()}  # prefetched: no query per case
        reference = images.get((ImageRole.REFERENCE, 0)) or images[(ImageRole.INPUT, 0)]
        want = tuple(reference.spatial_shape)
        channels = reference.shape[0] if (ImageRole.REFERENCE, 0) in images else None
        for key in keys:
            path = found[key]
            try:
                image = importers.read_image(path, display_name=path.name, limits=limits)
            except importers.ImportStopped as exc:
                return _listed(problems, limits, f"{exc}: checking stopped at case '{case_id}'"), []
            except importers.ImageImportError as exc:
                problems.append(str(exc))
                continue
            array = image.array
            if tuple(array.shape[1:]) != want:
                problems.append(f"{path.name}: shape {tuple(array.shape[1:])} does not match the reference {want}")
                continue
            if channels is not None and array.shape[0] != channels:
                problems.append(f"{path.name}: {array.shape[0]} channel(s); the reference has {channels}")
                continue
            outputs.append((case, key[1], array))
    return _listed(problems, limits), outputs


#: The most samples per case a submission may carry (as a stochastic model may declare).
MAX_SAMPLES = 64


def _expected_samples(run, found, cases):
    """(samples per case, problems): the model's count for a submission of a known model; else the count
    the submission itself uses, which must be one count for every case, at most MAX_SAMPLES."""
    if run.model is not None:
        return (run.model.samples_per_case if run.model.stochastic else 1), []
    counts = {}
    for case_id, _sample in found:
        if case_id in cases:
            counts[case_id] = counts.get(case_id, 0) + 1
    distinct = sorted(set(counts.values()))
    if len(distinct) > 1:
        return max(distinct), [
            f"cases have different numbers of samples ({', '.join(map(str, distinct))}): give every case the same"
        ]
    samples = distinct[0] if distinct else 1
    if samples > MAX_SAMPLES:
        return MAX_SAMPLES, [f"{samples} samples per case; at most {MAX_SAMPLES} are taken"]
    return samples, []


def _listed(problems, limits, note=""):
    """The first `limits.max_errors` problems, how many more there are, and why checking stopped early."""
    listed = problems[: limits.max_errors]
    if len(problems) > len(listed):
        listed.append(f"… and {len(problems) - len(listed):,} more (only the first {len(listed)} are listed)")
    return [*listed, note] if note else listed
