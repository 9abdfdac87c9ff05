"""Shared fixtures: isolated media storage, users, a demo-sized task, and a real Celery worker.

The worker is a separate `celery worker` process against the same database and broker
the test process uses (PostgreSQL + Redis under `make test`; SQLite + the filesystem
broker for the embedded-default tests), so job tests see real message passing, real
transactions and real process death.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from tests.support.api import token_client
from tests.support.browser import have_chromium

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def isolated_media(tmp_path_factory):
    media = tmp_path_factory.mktemp("media")
    with override_settings(MEDIA_ROOT=str(media)):
        yield media


@pytest.fixture(scope="session", autouse=True)
def static_from_the_finders():
    """Plain static names in the tests: the site's manifest storage answers hashed names from the manifest
    `collectstatic` writes, which may be missing or stale here, and the live server serves the finders' files
    by their plain names. tests/site/test_static.py checks the manifest storage itself."""
    storages = {**settings.STORAGES, "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"}}
    with override_settings(STORAGES=storages):
        yield


@pytest.fixture
def staff_user(django_user_model):
    return django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True)


@pytest.fixture
def reader_user(django_user_model):
    return django_user_model.objects.create_user("reader", password="reader-pass-123")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


@pytest.fixture
def site(transactional_db):
    """A live server for this test alone, stopped before the test database is dropped.

    Static files (the viewer bundle in static/viewer/ included) come from the finders."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost")
    yield server
    server.stop()


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def staff_api(api_client, staff_user):
    """The API client sending the staff user's token."""
    return token_client(api_client, staff_user)


class WorkerProcess:
    """A `celery worker` subprocess in its own process group (so SIGKILL reaches its children)."""

    def __init__(self, log_path, env=None, queues=("inference", "metrics")):
        self.log_path = log_path
        self.extra_env = env or {}
        self.queues = tuple(queues)
        self.process = None

    def start(self, timeout=60):
        db = settings.DATABASES["default"]
        env = dict(os.environ)
        env["MEDIA_ROOT"] = str(settings.MEDIA_ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        env.update(self.extra_env)
        if db["ENGINE"].endswith("sqlite3"):
            env["MEDGEN_SQLITE_PATH"] = str(db["NAME"])
        else:
            env["DATABASE_URL"] = (
                f"postgres://{db['USER']}:{db.get('PASSWORD') or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
            )
        command = [
            sys.executable, "-m", "celery", "-A", "medgen_site", "worker", "-Q", ",".join(self.queues),
            "--concurrency", "1", "--pool", "prefork", "--without-gossip", "--without-mingle",
            "--without-heartbeat", "-n", f"test-{uuid.uuid4().hex[:8]}@%h", "--loglevel", "INFO",
        ]  # fmt: skip
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.read_log()}")
            if " ready." in self.read_log():
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"celery worker did not become ready:\n{self.read_log()}")

    def read_log(self):
        return Path(self.log_path).read_text(errors="replace")

    def kill(self):
        """SIGKILL the whole worker (main process and pool children), as a machine failure would."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        if getattr(self, "log", None):
            self.log.close()


@pytest.fixture
def worker_factory(transactional_db, tmp_path):
    """Start real workers on demand (`queues=` to consume only some queues; other keywords are
    environment variables); all are stopped at the end of the test."""
    workers = []

    def start(queues=("inference", "metrics"), **env):
        log_path = tmp_path / f"worker-{len(workers)}.log"
        worker = WorkerProcess(log_path, env={k: str(v) for k, v in env.items()}, queues=queues).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def celery_worker(worker_factory):
    return worker_factory()


def purge_broker():
    """Drop messages left in the test broker by earlier tests."""
    from medgen_site.celery import app

    with app.connection_for_write() as connection:
        for queue in ("inference", "metrics"):
            try:
                connection.default_channel.queue_purge(queue)
            except Exception:  # the queue may not exist yet
                pass


@pytest.fixture(autouse=True)
def _needs_chromium(request):
    """Tests marked `browser` are skipped where Chromium is not installed."""
    if request.node.get_closest_marker("browser") and not have_chromium():
        pytest.skip("Debian's chromium is not installed (scripts/install-chromium.sh)")


@pytest.fixture(autouse=True)
def _clean_broker(request):
    if "worker_factory" in request.fixturenames or "celery_worker" in request.fixturenames:
        purge_broker()
