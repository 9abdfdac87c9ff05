"""The embedded default: no configuration, SQLite and the filesystem broker, and `serve`
starting its own worker. `make test` runs these in a second pass with the environment cleared."""

import os
import subprocess
import sys
import time
import urllib.request

import pytest
from django.conf import settings

from core.models import JobStatus
from inference.models import CaseOutput, Run
from inference.services import runs
from inference.services.artifacts import register_model
from tests.conftest import ROOT
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.jobs import wait_for_job
from tests.support.net import free_port

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

FINAL = {JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED}


@pytest.fixture(autouse=True)
def require_embedded_default():
    if os.environ.get("DATABASE_URL") or os.environ.get("CELERY_BROKER_URL"):
        pytest.skip("runs in the embedded pass of `make test` (no DATABASE_URL / CELERY_BROKER_URL)")


def test_settings_fall_back_to_sqlite_wal_and_a_filesystem_broker():
    assert settings.DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert settings.CELERY_BROKER_URL == "filesystem://"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0] == "wal"


def test_run_through_a_worker_on_the_filesystem_broker(celery_worker, tmp_path):
    task = make_task(n_cases=4)
    model = register_model(save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16])
    run = runs.create_run(model)
    run = wait_for_job(Run, run.pk, timeout=90)
    assert run.status == JobStatus.SUCCEEDED, run.error + celery_worker.read_log()[-2000:]
    assert CaseOutput.objects.filter(run=run).count() == 4


def test_serve_starts_the_site_and_its_own_worker(tmp_path):
    task = make_task(n_cases=2)
    model = register_model(save_torchscript(Scale(), tmp_path / "s.pt"), name="s", task=task, spatial_shape=[16, 16])
    port = free_port()
    env = dict(os.environ, MEDGEN_SQLITE_PATH=str(settings.DATABASES["default"]["NAME"]))
    env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
    log = open(tmp_path / "serve.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    assert response.status == 200 and task.name.encode() in response.read()
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
                time.sleep(0.5)
        run = runs.create_run(model)
        run = wait_for_job(Run, run.pk, timeout=90)
        assert run.status == JobStatus.SUCCEEDED, (tmp_path / "serve.log").read_text()[-3000:]
    finally:
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        log.close()
