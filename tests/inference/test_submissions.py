"""Submissions of precomputed outputs: validated, listed problems, stored as a run."""

import io

import numpy as np
import pytest
from rest_framework.authtoken.models import Token

from core.models import JobStatus
from inference.models import CaseOutput, Run, RunKind
from inference.services.submissions import create_submission
from tests.support.factories import make_task
from tests.support.files import float32_npy, write_zip
from tests.support.jobs import run_job

pytestmark = pytest.mark.django_db


def submit(task, path, name="sub"):
    with open(path, "rb") as handle:
        run = create_submission(task, handle, name=name, original_name=path.name)
    assert run.status == JobStatus.QUEUED and run.kind == RunKind.SUBMISSION
    run_job(run)
    run.refresh_from_db()
    return run


def test_a_complete_submission_becomes_a_succeeded_run(tmp_path):
    task = make_task(n_cases=3, shape=(1, 8, 8))
    cases = list(task.dataset.cases.order_by("case_id"))
    files = {f"{c.case_id}.npy": float32_npy(np.full((1, 8, 8), i)) for i, c in enumerate(cases)}
    run = submit(task, write_zip(tmp_path / "sub.zip", files))
    assert run.status == JobStatus.SUCCEEDED, (run.error, run.problems)
    assert run.progress_done == 3 and run.model is None
    for i, case in enumerate(cases):
        np.testing.assert_array_equal(CaseOutput.objects.get(run=run, case=case).load(), np.full((1, 8, 8), i))


def test_submission_in_a_wrapping_folder_with_other_formats(tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    a, b = task.dataset.cases.order_by("case_id")
    from PIL import Image

    png = io.BytesIO()
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(png, format="PNG")
    files = {f"outputs/{a.case_id}.png": png.getvalue(), f"outputs/{b.case_id}.npy": float32_npy(np.ones((1, 8, 8)))}
    run = submit(task, write_zip(tmp_path / "sub.zip", files))
    assert run.status == JobStatus.SUCCEEDED, run.problems
    np.testing.assert_array_equal(CaseOutput.objects.get(run=run, case=a).load()[0], np.arange(64).reshape(8, 8))


def test_every_problem_is_listed_and_nothing_is_stored(tmp_path):
    task = make_task(n_cases=4, shape=(1, 8, 8))
    c0, c1, c2, _c3 = task.dataset.cases.order_by("case_id")
    nan = np.ones((1, 8, 8))
    nan[0, 0, 0] = np.nan
    files = {
        f"{c0.case_id}.npy": float32_npy(np.ones((1, 8, 8))),
        f"{c1.case_id}.npy": float32_npy(np.ones((1, 6, 8))),  # wrong shape
        f"{c2.case_id}.npy": float32_npy(nan),  # NaN
        "stranger.npy": float32_npy(np.ones((1, 8, 8))),  # unknown case; case003 missing
        "notes.txt": b"hello",
    }
    run = submit(task, write_zip(tmp_path / "sub.zip", files))
    assert run.status == JobStatus.FAILED
    text = "\n".join(run.problems)
    assert "(6, 8)" in text
    assert "NaN" in text
    assert "no case 'stranger'" in text
    assert "case 'case003': no output" in text
    assert "notes" in text
    assert not CaseOutput.objects.filter(run=run).exists()


def test_malicious_archive_is_reported_not_extracted(tmp_path):
    task = make_task(n_cases=1, shape=(1, 8, 8))
    run = submit(task, write_zip(tmp_path / "evil.zip", {"../../escape.npy": float32_npy(np.ones((1, 8, 8)))}))
    assert run.status == JobStatus.FAILED
    assert ".." in " ".join(run.problems)
    assert not (tmp_path.parent / "escape.npy").exists()


def test_non_zip_upload_is_refused_before_anything_is_stored(api_client, staff_user):
    task = make_task(n_cases=1)
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    response = api_client.post(
        "/api/submissions/", {"task": task.slug, "name": "x", "file": io.BytesIO(b"not a zip")}, format="multipart"
    )
    assert response.status_code == 400 and "zip" in response.json()["detail"]
    assert not Run.objects.exists()


def test_submission_through_the_api_is_queued(api_client, staff_user, tmp_path):
    task = make_task(n_cases=1, shape=(1, 4, 4))
    case = task.dataset.cases.get()
    path = write_zip(tmp_path / "s.zip", {f"{case.case_id}.npy": float32_npy(np.zeros((1, 4, 4)))})
    api_client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff_user).key}")
    with open(path, "rb") as handle:
        response = api_client.post("/api/submissions/", {"task": task.slug, "name": "mine", "file": handle})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["kind"] == "submission" and body["status"] == "queued"
    run_job(Run.objects.get(pk=body["id"]))
    assert api_client.get(f"/api/runs/{body['id']}/").json()["status"] == "succeeded"


def output_files(isolated_media, run):
    folder = isolated_media / "runs" / str(run.uid)
    return sorted(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        (["{a}_sample99999.npy", "{b}.npy"], "samples 99999; expected samples 0 … 0"),
        (["{a}_sample1.npy", "{b}_sample1.npy"], "samples 1; expected samples 0 … 0"),
        (["{a}_sample0.npy", "{a}_sample1.npy", "{b}.npy"], "different numbers of samples (1, 2)"),
    ],
)
def test_sample_numbers_must_run_from_zero_alike_in_every_case(tmp_path, isolated_media, names, problem):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    a, b = (case.case_id for case in task.dataset.cases.order_by("case_id"))
    files = {name.format(a=a, b=b): float32_npy(np.ones((1, 8, 8))) for name in names}
    run = submit(task, write_zip(tmp_path / "sub.zip", files))
    assert run.status == JobStatus.FAILED
    assert any(problem in line for line in run.problems), run.problems
    assert not CaseOutput.objects.filter(run=run).exists() and output_files(isolated_media, run) == []


def test_two_samples_per_case_make_a_stochastic_submission(tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    names = [f"{case.case_id}_sample{k}.npy" for case in task.dataset.cases.all() for k in (0, 1)]
    run = submit(task, write_zip(tmp_path / "sub.zip", {name: float32_npy(np.ones((1, 8, 8))) for name in names}))
    assert run.status == JobStatus.SUCCEEDED, run.problems
    assert sorted(CaseOutput.objects.filter(run=run).values_list("sample", flat=True)) == [0, 0, 1, 1]


def test_outputs_with_more_channels_than_the_reference_are_refused(tmp_path):
    task = make_task(n_cases=2, shape=(1, 8, 8))
    files = {f"{case.case_id}.npy": float32_npy(np.ones((3, 8, 8))) for case in task.dataset.cases.all()}
    run = submit(task, write_zip(tmp_path / "sub.zip", files))
    assert run.status == JobStatus.FAILED
    assert all("3 channel(s); the reference has 1" in line for line in run.problems), run.problems


def test_a_failure_while_storing_outputs_leaves_no_rows_and_no_files(tmp_path, isolated_media, monkeypatch):
    from inference.services import submissions

    task = make_task(n_cases=3, shape=(1, 8, 8))
    files = {f"{case.case_id}.npy": float32_npy(np.ones((1, 8, 8))) for case in task.dataset.cases.all()}
    real_store = submissions.store_output
    stored = []

    def store_then_fail(run, case, sample, array):
        if len(stored) == 2:
            raise OSError("disk full")
        stored.append(real_store(run, case, sample, array))
        return stored[-1]

    monkeypatch.setattr(submissions, "store_output", store_then_fail)
    run = submit(task, write_zip(tmp_path / "sub.zip", files))
    assert run.status == JobStatus.FAILED and "disk full" in run.error
    assert len(stored) == 2 and not CaseOutput.objects.filter(run=run).exists()
    assert output_files(isolated_media, run) == []
