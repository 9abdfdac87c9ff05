"""Stored files follow their rows: deleting runs (the admin's action, a queryset, a cascade) deletes
their output arrays, feature caches, uncertainty maps and submission zips once the deletion commits;
`purge_orphan_media` removes what no row refers to."""

import io
import os
import time

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import transaction

from core.models import JobStatus
from evaluation.models import CaseResult, FeatureSet
from inference.models import Run, RunKind
from tests.support.evaluation import near_reference, succeeded_run
from tests.support.factories import make_task

pytestmark = pytest.mark.django_db(transaction=True)


def run_with_files(task, name="r"):
    """A run with two output arrays, a feature cache, an uncertainty map and a submission zip on disk."""
    run = succeeded_run(task, near_reference, name=name)
    run.submission_file.save("sub.zip", ContentFile(b"PK\x05\x06" + b"\0" * 18), save=True)
    buffer = io.BytesIO()
    np.savez(buffer, features=np.zeros((2, 3)), case_pks=np.arange(2))
    features = FeatureSet(run=run, extractor="x", version="1", n=2, dim=3)
    features.file.save(f"run{run.pk}-x.npz", ContentFile(buffer.getvalue()), save=True)
    result = CaseResult.objects.create(run=run, case=task.dataset.cases.first())
    result.uncertainty_map.save("sd.npy", ContentFile(b"\x93NUMPY"), save=True)
    names = [o.array.name for o in run.outputs.all()]
    names += [run.submission_file.name, features.file.name, result.uncertainty_map.name]
    assert len(names) == task.dataset.cases.count() + 3 and all(default_storage.exists(n) for n in names)
    return run, names


def test_the_admins_delete_action_deletes_the_runs_files(admin_client):
    task = make_task(n_cases=2)
    run, names = run_with_files(task)
    kept, kept_names = run_with_files(task, name="kept")
    response = admin_client.post(
        "/admin/inference/run/", {"action": "delete_selected", "_selected_action": [run.pk], "post": "yes"}
    )
    assert response.status_code == 302, response.content[:500]
    assert not Run.objects.filter(pk=run.pk).exists()
    assert [n for n in names if default_storage.exists(n)] == []
    # The run's folder goes with its last file; the other run's files stay.
    assert not os.path.exists(default_storage.path(f"runs/{run.uid}"))
    assert all(default_storage.exists(n) for n in kept_names)


def test_files_are_deleted_only_when_the_deletion_commits():
    task = make_task(n_cases=2)
    run, names = run_with_files(task)
    with pytest.raises(RuntimeError), transaction.atomic():
        Run.objects.filter(pk=run.pk).delete()
        assert all(default_storage.exists(n) for n in names)  # not before the commit
        raise RuntimeError("roll back")
    assert Run.objects.filter(pk=run.pk).exists()
    assert all(default_storage.exists(n) for n in names)
    Run.objects.filter(pk=run.pk).delete()  # a queryset's delete, outside the admin
    assert [n for n in names if default_storage.exists(n)] == []


def test_a_name_written_again_in_the_same_transaction_is_kept():
    task = make_task(n_cases=2)
    run, _ = run_with_files(task)
    result = CaseResult.objects.get(run=run)
    name = result.uncertainty_map.name
    with transaction.atomic():  # as a re-evaluation does: the row replaced, the same name written
        result.delete()
        again = CaseResult.objects.create(run=run, case=result.case)
        again.uncertainty_map.name = name
        again.save()
    assert default_storage.exists(name)


def test_deleting_a_task_cascades_to_its_dataset_images():
    task = make_task(n_cases=2)
    dataset = task.dataset
    images = [im.array.name for case in dataset.cases.all() for im in case.images.all()]
    assert len(images) == 4 and all(default_storage.exists(n) for n in images)
    task.delete()
    dataset.delete()
    assert [n for n in images if default_storage.exists(n)] == []


def test_purge_orphan_media_removes_old_unreferenced_files_only(capsys):
    task = make_task(n_cases=1)
    run, names = run_with_files(task)
    old = default_storage.save("runs/gone-run/0_s0.npy", ContentFile(b"x" * 1000))
    recent = default_storage.save("runs/writing-now/0_s0.npy", ContentFile(b"y"))
    hour_ago = time.time() - 2 * 3600
    os.utime(default_storage.path(old), (hour_ago, hour_ago))
    for name in names:  # referenced files are kept, however old
        os.utime(default_storage.path(name), (hour_ago, hour_ago))

    call_command("purge_orphan_media", "--dry-run")
    out = capsys.readouterr().out
    assert old in out and recent not in out and "1 orphaned file(s), 1000\xa0bytes, would be deleted." in out
    assert default_storage.exists(old)

    call_command("purge_orphan_media")
    assert not default_storage.exists(old) and not os.path.exists(default_storage.path("runs/gone-run"))
    assert default_storage.exists(recent)
    assert all(default_storage.exists(n) for n in names)
    assert Run.objects.get(pk=run.pk).status == JobStatus.SUCCEEDED and run.kind == RunKind.SUBMISSION
