"""The run page in headless Chromium: progress moves live while a real worker runs the model."""

import shutil
import time

import pytest

from core.models import JobStatus
from inference.services import runs
from inference.services.artifacts import register_model
from tests.support.browser import chromium_page
from tests.support.factories import Slow, make_task, save_torchscript

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


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
            if status == JobStatus.SUCCEEDED:
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
