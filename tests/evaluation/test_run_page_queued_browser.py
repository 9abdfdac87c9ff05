"""The run page's live polling while the evaluation waits in the queue keeps saying "queued"
(job_progress.js: data-job-waiting while progress_total is 0), never "0 / 0"."""

import time

import pytest

from core.models import JobStatus
from evaluation.models import Evaluation
from tests.support.browser import chromium_page
from tests.support.evaluation import near_reference, succeeded_run
from tests.support.factories import make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_polling_a_queued_evaluation_keeps_saying_queued(site, django_user_model):
    task = make_task(n_cases=2)
    run = succeeded_run(task, near_reference)
    Evaluation.objects.create(run=run, status=JobStatus.QUEUED)
    django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True)
    with chromium_page() as page:
        polled = []
        page.on("response", lambda r: "/evaluation/" in r.url and "/api/" in r.url and polled.append(r.status))
        page.goto(f"{site.url}/accounts/login/?next=/runs/{run.pk}/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "boss-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/runs/{run.pk}/")
        deadline = time.monotonic() + 10
        while len(polled) < 2 and time.monotonic() < deadline:
            page.wait_for_timeout(200)
        assert polled[:2] == [200, 200]  # the page polled (and rewrote the fields) twice
        assert (
            page.locator("#evaluation-progress").inner_text()
            == "Queued: the steps are counted when a metrics worker starts it."
        )
        assert page.locator("#evaluation-status").inner_text() == "queued"
