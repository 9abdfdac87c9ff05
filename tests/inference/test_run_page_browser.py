"""The run page in headless Chromium: progress moves live while a real worker runs the model, and
static/js/job_progress.js follows every job on the page (run, evaluation, downstream) until the
API says it is final."""

import threading
import time

import pytest
from django.db import connection

from core.models import JobStatus
from evaluation.models import DownstreamJob, DownstreamSetup, Evaluation
from inference.models import Run
from inference.services import runs
from inference.services.artifacts import register_model
from tests.support.browser import chromium_page
from tests.support.factories import Slow, make_task, save_torchscript

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.mark.worker
def test_run_page_shows_live_progress_until_the_run_succeeds(worker_factory, site, tmp_path):
    worker_factory(MEDGEN_INFERENCE_BATCH_SIZE=1)
    task = make_task(n_cases=8)
    model = register_model(save_torchscript(Slow(rounds=1000), tmp_path / "slow.pt"), name="slow", task=task,
                           spatial_shape=[16, 16])  # fmt: skip
    run = runs.create_run(model)

    with chromium_page() as page:
        page.goto(f"{site.url}/runs/{run.pk}/")
        seen = set()
        deadline = time.monotonic() + 300  # a guard, not a timing claim: a loaded machine is slow
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


def in_thread(work):
    """Database work while Playwright drives the page: in a thread of its own (Playwright's sync
    API keeps an event loop in this one), on a connection closed afterwards."""
    failures = []

    def target():
        try:
            work()
        except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
            failures.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if failures:
        raise failures[0]


def api_requests(page):
    """The URLs of the page's API requests, as they are made."""
    urls = []
    page.on("request", lambda request: "/api/" in request.url and urls.append(request.url))
    return urls


def wait_text(page, selector, text):
    page.wait_for_function(
        "([selector, text]) => document.querySelector(selector)?.textContent.trim() === text", arg=[selector, text]
    )


def test_one_poller_follows_each_job_on_the_page_and_reloads_when_the_api_says_it_is_final(site):
    task = make_task(n_cases=2)
    setup = DownstreamSetup.objects.create(
        task=task, name="unet-test", config={"epochs": 3}, seeds=[0, 1], train_case_ids=[], test_case_ids=[]
    )
    run = Run.objects.create(task=task, name="followed", status=JobStatus.SUCCEEDED)
    evaluation = Evaluation.objects.create(
        run=run, status=JobStatus.RUNNING, phase="pixel metrics", progress_done=1, progress_total=10
    )
    job = DownstreamJob.objects.create(
        setup=setup, run=run, status=JobStatus.RUNNING, phase="seed 0", progress_done=0, progress_total=6
    )

    with chromium_page() as page:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        requests = api_requests(page)
        page.goto(f"{site.url}/runs/{run.pk}/")
        assert page.locator("#run-live").get_attribute("data-final") == "1"
        assert page.locator("#downstream-loss").inner_text() == "—"

        progress = {"phase": "seed 1", "progress_done": 3, "loss": 0.123456}
        in_thread(lambda: DownstreamJob.objects.filter(pk=job.pk).update(**progress))
        in_thread(lambda: Evaluation.objects.filter(pk=evaluation.pk).update(phase="feature metrics", progress_done=5))
        wait_text(page, "#downstream-progress", "3 / 6")
        wait_text(page, "#downstream-loss", "0.123")
        wait_text(page, "#evaluation-progress", "5 / 10 steps (cases, then feature extractors)")
        assert page.locator("#downstream-phase").inner_text() == "seed 1"
        assert page.locator("#evaluation-phase").inner_text() == "feature metrics"
        assert page.locator("#downstream-bar").evaluate("bar => bar.style.width") == "50%"
        assert page.locator("#evaluation-bar").evaluate("bar => bar.style.width") == "50%"

        # Cancelled is final for a downstream job (not for an evaluation): the server says so.
        in_thread(lambda: DownstreamJob.objects.filter(pk=job.pk).update(status=JobStatus.CANCELLED))
        page.wait_for_selector('#downstream-live[data-final="1"]', timeout=15_000)  # rendered after the reload
        assert page.locator("#downstream-status").inner_text() == "cancelled"
        assert page.locator('#evaluation-live[data-final=""]').count() == 1  # still followed

        in_thread(
            lambda: Evaluation.objects.filter(pk=evaluation.pk).update(
                status=JobStatus.FAILED, error="The extractor ran out of memory."
            )
        )
        page.wait_for_selector('#evaluation-live[data-final="1"]', timeout=15_000)
        assert page.locator("#evaluation-status").inner_text() == "failed"
        assert page.locator("#evaluation-error").inner_text() == "The extractor ran out of memory."
        seen = len(requests)
        page.wait_for_timeout(2500)  # more than a polling interval
        assert len(requests) == seen, requests[seen:]  # nothing final is polled
        assert errors == []

    run_api = f"/api/runs/{run.pk}/"
    assert not [url for url in requests if url.endswith(run_api)]  # the run was final all along
    assert any(url.endswith(run_api + "evaluation/") for url in requests)
    assert any(url.endswith(run_api + "downstream/") for url in requests)


def test_live_progress_stops_with_the_servers_message_when_the_job_is_gone(site):
    task = make_task(n_cases=2)
    run = Run.objects.create(task=task, name="followed", status=JobStatus.SUCCEEDED)
    evaluation = Evaluation.objects.create(run=run, status=JobStatus.QUEUED, progress_total=4)

    with chromium_page() as page:
        requests = api_requests(page)
        page.goto(f"{site.url}/runs/{run.pk}/")
        page.wait_for_function("() => document.querySelector('#evaluation-live').dataset.jobPolling === '1'")
        in_thread(lambda: Evaluation.objects.filter(pk=evaluation.pk).delete())
        page.wait_for_selector("#evaluation-live .error-box[data-error-box]", timeout=15_000)
        message = page.locator("#evaluation-live .error-box[data-error-box]").inner_text()
        assert message.startswith("Live progress stopped: This run has not been evaluated.")  # the API's 404 detail
        assert page.locator("#evaluation-live").get_attribute("data-job-polling") == "stopped"
        seen = len(requests)
        page.wait_for_timeout(2500)
        assert len(requests) == seen  # no more polling, and no reload
        assert page.locator("#evaluation-status").inner_text() == "queued"
