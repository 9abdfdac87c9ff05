"""Jobs through a real Celery worker process (PostgreSQL + Redis under `make test`)."""

import time

import pytest

from core import jobs
from core.models import JobStatus
from core.tasks import execute_job
from inference.models import CaseOutput, GenerativeModel, ModelStatus, Run
from inference.services import runs
from tests.support.factories import Scale, Slow, WrongShape, make_task, save_torchscript
from tests.support.jobs import wait_for_job, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

FINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


def upload(staff_api, task, path, **fields):
    with open(path, "rb") as handle:
        data = {"name": path.stem, "task": task.slug, "file": handle, "spatial_shape": "[null, null]", **fields}
        response = staff_api.post("/api/models/", data, format="multipart")
    assert response.status_code == 201, response.content
    return response.json()


def test_run_end_to_end_through_the_worker(celery_worker, staff_api, tmp_path):
    task = make_task(n_cases=6, shape=(1, 24, 24))
    model = upload(staff_api, task, save_torchscript(Scale(3.0), tmp_path / "scale.pt"))
    response = staff_api.post("/api/runs/", {"model": model["id"]}, format="json")
    assert response.status_code == 201, response.content
    run_id = response.json()["id"]

    run = wait_for_job(Run, run_id, timeout=60)
    assert run.status == JobStatus.SUCCEEDED, run.error + celery_worker.read_log()[-3000:]
    assert GenerativeModel.objects.get(pk=model["id"]).status == ModelStatus.VALID
    log = run.log
    order = [log.index(step) for step in ("pending → queued", "queued → running", "running → succeeded")]
    assert order == sorted(order)
    outputs = CaseOutput.objects.filter(run=run)
    assert sorted(outputs.values_list("case__case_id", flat=True)) == sorted(
        task.dataset.cases.values_list("case_id", flat=True)
    )
    assert all(o.latency_ms and o.latency_ms > 0 for o in outputs)
    body = staff_api.get(f"/api/runs/{run_id}/").json()
    assert body["status"] == "succeeded" and body["progress_done"] == 6 and body["latency_ms_p95"] > 0
    listed = staff_api.get(f"/api/runs/{run_id}/outputs/").json()
    assert listed["count"] == 6
    array = staff_api.get(listed["results"][0]["download"])
    assert array.status_code == 200 and b"NUMPY" in array.getvalue()[:10]


def test_second_delivery_of_a_finished_run_changes_nothing(celery_worker, tmp_path):
    from inference.services.artifacts import register_model

    task = make_task(n_cases=3)
    model = register_model(save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16])
    run = runs.create_run(model)
    assert wait_for_job(Run, run.pk, timeout=60).status == JobStatus.SUCCEEDED
    execute_job.delay("inference.run", run.pk)
    execute_job.delay("inference.run", run.pk)
    wait_until(
        lambda: celery_worker.read_log().count("core.execute_job") >= 3 and "skipped" in celery_worker.read_log()
    )
    assert CaseOutput.objects.filter(run=run).count() == 3
    assert Run.objects.get(pk=run.pk).attempts == 1


def test_wrong_output_shape_shows_on_the_model_page(celery_worker, staff_api, client, tmp_path):
    task = make_task(n_cases=2)
    model = upload(staff_api, task, save_torchscript(WrongShape(), tmp_path / "wrong.pt"), spatial_shape="[32, 32]")
    wait_until(lambda: GenerativeModel.objects.get(pk=model["id"]).status == ModelStatus.INVALID)
    page = client.get(f"/models/{model['id']}/")
    assert b"Validation failed" in page.content and b"Wrong output shape" in page.content


def test_cancel_during_a_run_stops_it(worker_factory, staff_api, tmp_path):
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    task = make_task(n_cases=12)
    model = upload(staff_api, task, save_torchscript(Slow(rounds=60), tmp_path / "slow.pt"))
    run_id = staff_api.post("/api/runs/", {"model": model["id"]}, format="json").json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).progress_done >= 1, timeout=90)

    response = staff_api.post(f"/api/runs/{run_id}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    time.sleep(2)  # long enough for several more cases had it kept going
    settled = CaseOutput.objects.filter(run_id=run_id).count()
    time.sleep(2)
    run = Run.objects.get(pk=run_id)
    assert run.status == JobStatus.CANCELLED
    assert CaseOutput.objects.filter(run_id=run_id).count() == settled < 12
    assert staff_api.post(f"/api/runs/{run_id}/cancel/").status_code == 409


def test_worker_killed_mid_run_is_requeued_and_finishes_once(worker_factory, staff_api, tmp_path):
    first = worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    task = make_task(n_cases=10)
    model = upload(staff_api, task, save_torchscript(Slow(rounds=60), tmp_path / "slow.pt"))
    run_id = staff_api.post("/api/runs/", {"model": model["id"]}, format="json").json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).progress_done >= 2, timeout=90)

    first.kill()
    time.sleep(1)
    run = Run.objects.get(pk=run_id)
    assert run.status == JobStatus.RUNNING and run.progress_done < 10  # nobody is left to move it

    requeued, failed = jobs.reap(jobs.kind_of(Run), stale_seconds=0)
    assert requeued == [run_id] and failed == []
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    run = wait_for_job(Run, run_id, timeout=120)
    assert run.status == JobStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    per_case = CaseOutput.objects.filter(run_id=run_id).values_list("case_id", flat=True)
    assert len(per_case) == len(set(per_case)) == 10


def test_pool_process_killed_mid_run_is_redelivered_and_taken_over(worker_factory, staff_api, tmp_path):
    """acks_late + reject_on_worker_lost: the message comes back at once and the new pool
    process sees that the run's recorded process is gone, without waiting for the reaper."""
    import os
    import signal

    worker = worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    task = make_task(n_cases=10)
    model = upload(staff_api, task, save_torchscript(Slow(rounds=60), tmp_path / "slow.pt"))
    run_id = staff_api.post("/api/runs/", {"model": model["id"]}, format="json").json()["id"]
    wait_until(lambda: Run.objects.get(pk=run_id).progress_done >= 1, timeout=90)
    pool_pid = int(Run.objects.get(pk=run_id).worker.rpartition(":")[2])
    os.kill(pool_pid, signal.SIGKILL)

    run = wait_for_job(Run, run_id, timeout=120)
    assert run.status == JobStatus.SUCCEEDED, run.error + worker.read_log()[-3000:]
    assert run.attempts == 2 and "is gone; taking over" in run.log
    per_case = CaseOutput.objects.filter(run_id=run_id).values_list("case_id", flat=True)
    assert len(per_case) == len(set(per_case)) == 10
