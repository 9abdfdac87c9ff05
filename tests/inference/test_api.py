"""Dataset import and reading through the REST API."""

from pathlib import Path

import numpy as np
import pydicom
import pytest

from inference.models import Case, CaseImage, Dataset, Task
from tests.support.api import assert_refused
from tests.support.factories import make_task
from tests.support.files import float32_npy, zip_bytes

pytestmark = pytest.mark.django_db

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"


def test_dataset_upload_with_real_dicom_and_npy_cases(staff_api):
    upload = zip_bytes(
        {
            "mr/input.dcm": (PYDICOM_FILES / "MR_small.dcm").read_bytes(),
            "mr/reference.npy": float32_npy(np.ones((1, 64, 64))),
            "ct/input.dcm": (PYDICOM_FILES / "CT_small.dcm").read_bytes(),
        }
    )
    response = staff_api.post("/api/datasets/", {"name": "real", "file": upload, "is_public": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["case_count"] == 2
    cases = staff_api.get(f"/api/cases/?dataset={body['id']}").json()["results"]
    mr = next(c for c in cases if c["case_id"] == "mr")
    roles = {im["role"]: im for im in mr["images"]}
    assert roles["input"]["shape"] == [1, 64, 64] and roles["input"]["source_format"] == "dicom"
    assert roles["input"]["spacing"] == pytest.approx([0.3125, 0.3125])
    stored = CaseImage.objects.get(case__case_id="ct", role="input").load()
    reference = pydicom.dcmread(PYDICOM_FILES / "CT_small.dcm")
    expected = reference.pixel_array * float(reference.RescaleSlope) + float(reference.RescaleIntercept)
    np.testing.assert_allclose(stored[0], expected)


def test_dataset_upload_with_a_truncated_dicom_stores_nothing_and_lists_the_error(staff_api):
    upload = zip_bytes(
        {
            "good/input.npy": float32_npy(np.ones((1, 8, 8))),
            "bad/input.dcm": (PYDICOM_FILES / "MR_truncated.dcm").read_bytes(),
        }
    )
    response = staff_api.post("/api/datasets/", {"name": "broken", "file": upload})
    assert response.status_code == 400
    body = response.json()
    assert "nothing was stored" in body["detail"]
    assert any("truncated" in error and "input.dcm" in error for error in body["errors"])
    assert not Dataset.objects.exists() and not Case.objects.exists()


def test_dataset_upload_of_a_zip_with_a_path_escape_is_refused(staff_api):
    response = staff_api.post("/api/datasets/", {"name": "evil", "file": zip_bytes({"../x/input.npy": b"x"})})
    assert response.status_code == 400 and ".." in " ".join(response.json()["errors"])
    assert not Dataset.objects.exists()


def test_tasks_and_cases_are_listed_for_anonymous_users_on_public_tasks(api_client):
    task = make_task(n_cases=2)
    tasks = api_client.get("/api/tasks/").json()["results"]
    assert [t["slug"] for t in tasks] == [task.slug]
    cases = api_client.get(f"/api/cases/?dataset={task.dataset_id}").json()
    assert cases["count"] == 2
    assert_refused(api_client.post("/api/tasks/", {"slug": "x", "name": "x", "kind": "synthesis"}), "anonymous")
    assert not Task.objects.filter(slug="x").exists()
