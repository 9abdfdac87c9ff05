"""Reader-study test data: a task whose succeeded runs have outputs, and studies over them."""

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from core.models import JobStatus
from inference.models import Case, CaseOutput, ImageRole, Run, RunKind
from inference.storage import content_hash, save_array
from readerstudy.models import ReaderStudy
from readerstudy.services import build
from tests.support.factories import make_task


def add_output_run(task, name, make_output, *, status=JobStatus.SUCCEEDED):
    """A succeeded run of `task` with one output per case: `make_output(reference array, rng)`."""
    run = Run.objects.create(task=task, name=name, kind=RunKind.SUBMISSION, status=status, finished_at=timezone.now())
    rng = np.random.default_rng(abs(hash(name)) % 2**32)
    for case in Case.objects.filter(dataset=task.dataset).order_by("case_id"):
        reference = case.image(ImageRole.REFERENCE).load()
        array = np.asarray(make_output(reference, rng), dtype=np.float32)
        output = CaseOutput(run=run, case=case, sample=0, shape=list(array.shape), content_sha256=content_hash(array))
        save_array(output.array, f"{case.case_id}_0.npy", array)
        output.save()
    return run


def smooth_phantom(rng, shape):
    """A smooth random image (a few Gaussian blobs), so blinding's percentile clip has structure."""
    *_, rows, cols = shape
    yy, xx = np.mgrid[:rows, :cols]
    image = np.zeros((rows, cols))
    for _ in range(4):
        cy, cx, s = rng.uniform(0, rows), rng.uniform(0, cols), rng.uniform(2, rows / 3)
        image += rng.uniform(0.5, 2) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * s * s))
    return image.reshape(shape) * 1000  # stored references are in scanner-like units


def make_study_task(n_cases=12, shape=(1, 24, 24), n_runs=2, is_public=True, hidden_references=True):
    """A task with integer-valued references (as DICOM would give) and `n_runs` succeeded runs.

    Its test set is hidden by default: a study cannot start on images anonymous users can fetch."""
    task = make_task(n_cases=n_cases, shape=shape, is_public=is_public, hidden_references=hidden_references)
    rng = np.random.default_rng(7)
    for case in Case.objects.filter(dataset=task.dataset):
        reference = case.image(ImageRole.REFERENCE)
        array = np.round(smooth_phantom(rng, shape)).astype(np.float32)
        save_array(reference.array, "reference_0.npy", array)
        reference.shape = list(array.shape)
        reference.content_sha256 = content_hash(array)
        reference.save()
    makers = [
        lambda ref, rng: ref / 1000 + rng.normal(0, 0.01, ref.shape),  # another scale, continuous values
        lambda ref, rng: 0.5 * ref + 3,
        lambda ref, rng: np.sqrt(np.abs(ref)),
    ]
    runs = [add_output_run(task, f"Model {chr(65 + i)}", makers[i % len(makers)]) for i in range(n_runs)]
    return task, runs


def make_reader(username="reader1", password="reader-pass-123"):
    return get_user_model().objects.create_user(username, password=password)


def make_study(task, runs, *, design="turing", readers=(), start=True, **fields):
    fields.setdefault("items_per_model", 4)
    fields.setdefault("seed", 11)
    if design == "likert":
        from readerstudy.models import DEFAULT_SCALES

        fields.setdefault("scales", DEFAULT_SCALES[:2])
    study = ReaderStudy.objects.create(title=f"{design} study", task=task, design=design, **fields)
    study.runs.set(runs)
    study.readers.set(readers)
    if start:
        study = build.freeze(study)
    return study


def answer_for(design, rng=None, scales=("realism", "diagnostic_quality")):
    """A valid answer of the design (random but reproducible with `rng`)."""
    rng = rng or np.random.default_rng(0)
    if design == "turing":
        return {"call": ["real", "synthetic"][int(rng.integers(2))], "confidence": int(rng.integers(1, 6))}
    if design == "likert":
        return {"scores": {key: int(rng.integers(1, 6)) for key in scales}}
    if design == "pairwise":
        return {"choice": ["left", "right"][int(rng.integers(2))]}
    if int(rng.integers(2)):
        return {"none": True}
    return {"marks": [{"type": "point", "slice": 0, "points": [[3.0, 4.5]]}]}


def form_data(task, runs, **overrides):
    """The study form's POST data for a Turing test of `runs` (overrides replace fields)."""
    data = {
        "title": "Realism of synthetic T2",
        "instructions": "Real or synthetic?",
        "task": task.pk,
        "design": "turing",
        "runs": [run.pk for run in runs],
        "items_per_model": 3,
        "real_pool": "test",
        "real_ratio": 1.0,
        "scales": "",
        "repeated_items": 1,
        "attention_checks": 1,
        "seed": 5,
    }
    data.update(overrides)
    return data
