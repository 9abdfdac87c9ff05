"""Importing a dataset from the site: the page keeps the upload, a real worker imports it as a job, the
job's page follows its progress and ends on the dataset, or on every problem listed with its file."""

import numpy as np
import pytest
from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage

from core.models import JobStatus
from inference.models import Case, CaseImage, Dataset, DatasetImport
from inference.services import participation
from tests.support.factories import make_task
from tests.support.files import float32_npy, npy_bytes, zip_bytes
from tests.support.jobs import run_job, wait_for_job


def organiser_client(client):
    user = get_user_model().objects.create_user("olga")
    participation.add_organiser(make_task(n_cases=1, slug="existing", is_public=False), user=user)
    client.force_login(user)
    return user


def cases_zip(name="brains.zip"):
    rng = np.random.default_rng(7)
    arrays = {
        f"case{i}/{role}.npy": rng.random((1, 12, 10)).astype(np.float32)
        for i in range(3)
        for role in ("input", "reference")
    }
    return arrays, zip_bytes({path: float32_npy(array) for path, array in arrays.items()}, name=name)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_organiser_imports_a_zip_through_the_page_and_a_worker(celery_worker, client):
    user = organiser_client(client)
    page = client.get("/datasets/import/")
    assert page.status_code == 200 and b'type="file" name="file"' in page.content
    arrays, upload = cases_zip()
    response = client.post("/datasets/import/", {"name": "Brains", "description": "Three cases", "file": upload})
    assert response.status_code == 302
    job = DatasetImport.objects.get()
    assert response["Location"] == f"/datasets/imports/{job.uid}/"
    assert job.requested_by == user and job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.SUCCEEDED)

    job = wait_for_job(DatasetImport, job.pk, timeout=60)
    assert job.status == JobStatus.SUCCEEDED, job.error + str(job.errors) + celery_worker.read_log()[-3000:]
    dataset = Dataset.objects.get(name="Brains")
    assert job.dataset == dataset and dataset.created_by == user and dataset.description == "Three cases"
    assert sorted(dataset.cases.values_list("case_id", flat=True)) == ["case0", "case1", "case2"]
    for path, array in arrays.items():
        case_id, role = path.removesuffix(".npy").split("/")
        stored = CaseImage.objects.get(case__dataset=dataset, case__case_id=case_id, role=role).load()
        np.testing.assert_array_equal(stored, array)
    assert not job.archive and not default_storage.exists(f"imports/{job.uid}/brains.zip")
    status = client.get(f"/datasets/imports/{job.uid}/status/").json()
    assert status["is_final"] is True and status["status"] == "succeeded"
    assert (status["progress_done"], status["progress_total"], status["progress_percent"]) == (2, 2, 100)
    page = client.get(f"/datasets/imports/{job.uid}/").content.decode()
    assert f'href="/datasets/{dataset.pk}/">Brains</a>' in page and "(3 cases)" in page
    assert f"/tasks/new/?dataset={dataset.pk}" in page
    # The organiser sees their own import before any task uses it, and may choose it for a new task.
    assert client.get(f"/datasets/{dataset.pk}/").status_code == 200
    assert f'<option value="{dataset.pk}">Brains</option>' in client.get(
        f"/tasks/new/?dataset={dataset.pk}"
    ).content.decode().replace(" selected", "")


@pytest.mark.django_db
def test_a_broken_zip_lists_every_problem_with_its_file_and_stores_nothing(client):
    organiser_client(client)
    upload = zip_bytes(
        {
            "good/input.npy": float32_npy(np.ones((1, 8, 8))),
            "bad/input.npy": b"this is not a NumPy file",
            "worse/input.npy": npy_bytes(np.array(["text"])),
        },
        name="mixed.zip",
    )
    response = client.post("/datasets/import/", {"name": "Mixed", "file": upload})
    job = DatasetImport.objects.get()
    assert response.status_code == 302 and job.status == JobStatus.QUEUED
    page = client.get(f"/datasets/imports/{job.uid}/").content.decode()
    assert 'data-job-progress="/datasets/imports/' in page and "js/job_progress.js" in page  # the live bar

    assert run_job(job) == "failed"  # as the worker runs it (the worker path is the test above)
    job.refresh_from_db()
    assert "nothing was stored" in job.error
    assert len(job.errors) == 2
    assert any("bad/input.npy" in error for error in job.errors)
    assert any("worse/input.npy" in error for error in job.errors)
    assert not Dataset.objects.filter(name="Mixed").exists() and not Case.objects.filter(case_id="good").exists()
    assert not job.archive
    page = client.get(f"/datasets/imports/{job.uid}/").content.decode()
    listed = page.split('id="import-errors">')[1].split("</ul>")[0]
    assert listed.count("<li>") == 2 and "bad/input.npy" in listed and "worse/input.npy" in listed
    assert "js/job_progress.js" not in page  # over: nothing to poll
    status = client.get(f"/datasets/imports/{job.uid}/status/").json()
    assert status["status"] == "failed" and status["is_final"] is True and len(status["errors"]) == 2
    client.force_login(get_user_model().objects.create_user("boss", is_staff=True, is_superuser=True))
    listing = client.get("/admin/inference/datasetimport/")
    assert listing.status_code == 200 and "Mixed" in listing.content.decode()
    assert client.get(f"/admin/inference/datasetimport/{job.pk}/change/").status_code == 200


@pytest.mark.django_db
def test_a_taken_name_is_refused_in_the_page_before_any_job(client):
    organiser_client(client)
    Dataset.objects.create(name="Taken")
    _, upload = cases_zip()
    response = client.post("/datasets/import/", {"name": "Taken", "file": upload})
    assert response.status_code == 400
    assert "a dataset named &#x27;Taken&#x27; already exists" in response.content.decode()
    assert not DatasetImport.objects.exists()


@pytest.mark.django_db
def test_another_users_import_is_hidden(client, django_user_model):
    organiser_client(client)
    _, upload = cases_zip()
    client.post("/datasets/import/", {"name": "Mine", "file": upload})
    job = DatasetImport.objects.get()
    client.force_login(django_user_model.objects.create_user("someone"))
    assert client.get(f"/datasets/imports/{job.uid}/").status_code == 404
    assert client.get(f"/datasets/imports/{job.uid}/status/").status_code == 404
    client.logout()
    assert client.get(f"/datasets/imports/{job.uid}/status/").status_code == 404
