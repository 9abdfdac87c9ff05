"""A probe set built, and a probe run scored, through a real Celery worker (PostgreSQL + Redis under `make test`)."""

import pytest

from core.models import JobStatus
from evaluation.models import ProbeScore, ProbeSet
from evaluation.probes import services
from inference.models import Run
from inference.services import artifacts, runs
from tests.evaluation.probe_support import TISSUE_CONFIG, phantom_task
from tests.support.factories import Scale, save_torchscript
from tests.support.jobs import wait_for_job, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_probe_set_job_and_probe_run_through_the_worker(celery_worker, tmp_path):
    task = phantom_task(n_cases=3)
    probe_set = services.request_probe_set(task, seed=1, kinds=["inserted_plausible", "removed"], config=TISSUE_CONFIG)
    built = wait_for_job(ProbeSet, probe_set.pk, timeout=120)
    assert built.status == JobStatus.SUCCEEDED, built.error + celery_worker.read_log()[-3000:]
    assert "probe cases stored" in built.log and built.probe_cases.count() >= 3

    path = save_torchscript(Scale(1.0), tmp_path / "copy.pt")
    model = artifacts.register_model(path, name="copy", task=task, spatial_shape=[None, None])
    main = runs.create_run(model)
    assert wait_for_job(Run, main.pk, timeout=120).status == JobStatus.SUCCEEDED
    probe_run = services.start_probe_run(Run.objects.get(pk=main.pk), built)
    assert wait_for_job(Run, probe_run.pk, timeout=120).status == JobStatus.SUCCEEDED
    # the worker scores a probe run once it succeeds (the job_finished receiver)
    score = wait_until(lambda: ProbeScore.objects.filter(run=probe_run).first(), timeout=60, what="the probe score")
    assert score.index["index"]["estimate"] == 0.0
    assert score.index["probe_cases"] == built.probe_cases.count()
