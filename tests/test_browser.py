"""The run page in headless Chromium: progress moves live while a real worker runs the model."""

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
def browser_page(monkeypatch):
    if not shutil.which("chromium"):
        pytest.skip("Debian's chromium is not installed (scripts/install-chromium.sh)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls here are still synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page()
        yield page
        browser.close()


def test_run_page_shows_live_progress_until_the_run_succeeds(worker_factory, live_server, browser_page, tmp_path):
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    task = make_task(n_cases=8)
    model = register_model(save_torchscript(Slow(rounds=250), tmp_path / "slow.pt"), name="slow", task=task,
                           spatial_shape=[16, 16])  # fmt: skip
    run = runs.create_run(model)

    page = browser_page
    page.goto(f"{live_server.url}/runs/{run.pk}/")
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
    page.wait_for_selector("table.grid >> text=case007")  # the final reload lists the outputs
    assert page.locator("table.grid tbody tr").count() == 8
