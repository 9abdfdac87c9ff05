"""The run page in headless Chromium: progress moves live while a real worker runs the model."""

import contextlib
import shutil
import time

import pytest

from inference.models import RunStatus
from inference.services import runs
from inference.services.artifacts import register_model
from tests.factories import Slow, make_task, save_torchscript

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


@pytest.fixture
def site(transactional_db):
    """A live server for this test alone, stopped before the test database is dropped."""
    from pytest_django.live_server_helper import LiveServer

    server = LiveServer("localhost")
    yield server
    server.stop()


@contextlib.contextmanager
def chromium_page():
    """Playwright's sync API runs an event loop in this thread: open it only after the test's
    database work, so no query runs in (and no connection is left behind by) that loop's context."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser.new_page()
        finally:
            browser.close()


def test_run_page_shows_live_progress_until_the_run_succeeds(worker_factory, site, tmp_path):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/install-chromium.sh)")
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    task = make_task(n_cases=8)
    model = register_model(save_torchscript(Slow(rounds=1000), tmp_path / "slow.pt"), name="slow", task=task,
                           spatial_shape=[16, 16])  # fmt: skip
    run = runs.create_run(model)

    with chromium_page() as page:
        page.goto(f"{site.url}/runs/{run.pk}/")
        seen = set()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            status = page.locator("#run-status").inner_text()
            seen.add(page.locator("#run-progress").inner_text())
            if status == RunStatus.SUCCEEDED:
                break
            time.sleep(0.2)
        assert page.locator("#run-status").inner_text() == "succeeded"
        # The page was loaded once at the start; every other value came from its own polling.
        intermediate = {value for value in seen if value not in ("0 / 8", "8 / 8")}
        assert intermediate, seen
        page.wait_for_selector("#outputs >> text=case007")  # the final reload lists the outputs
        assert page.locator("#outputs tbody tr").count() == 8
        # Then the evaluation runs on the metrics queue; the page follows it and shows the results.
        page.wait_for_selector('#evaluation-live[data-final="1"]', timeout=90_000)  # rendered after it ended
        assert page.locator("#evaluation-status").inner_text() == "succeeded"
        assert page.locator("#pixel-results tr[data-metric=ssim]").count() == 1
        assert page.locator("#feature-results tr[data-metric=frd]").count() == 1
        assert page.locator("#case-results tbody tr").count() == 8
