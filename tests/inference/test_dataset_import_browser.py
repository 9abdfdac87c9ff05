"""The import page in Chromium with a real worker: the form's zip goes to the job, the progress bar
follows it (static/js/job_progress.js polling the import's status: the worker starts only once the page
polls) and the page ends on the dataset."""

import numpy as np
import pytest

from inference.models import Dataset, DatasetImport
from inference.services import participation
from tests.support.browser import chromium_page
from tests.support.factories import make_task
from tests.support.files import float32_npy, write_zip

pytestmark = [pytest.mark.browser, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_the_import_page_follows_the_job_to_the_dataset(site, worker_factory, django_user_model, tmp_path):
    user = django_user_model.objects.create_user("olga", password="olga-pass-123")
    participation.add_organiser(make_task(n_cases=1, slug="existing", is_public=False), user=user)
    archive = write_zip(
        tmp_path / "knees.zip",
        {
            f"knee{i}/{role}.npy": float32_npy(np.full((1, 8, 8), i))
            for i in range(4)
            for role in ("input", "reference")
        },
    )

    with chromium_page(viewport={"width": 1280, "height": 720}) as page:
        page.goto(f"{site.url}/accounts/login/?next=/datasets/import/")
        page.fill("#id_username", "olga")
        page.fill("#id_password", "olga-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url("**/datasets/import/")
        page.fill("#id_name", "Knees")
        page.set_input_files("#id_file", str(archive))
        page.click("#dataset-import-form button[type=submit]")
        page.wait_for_url("**/datasets/imports/*/")
        # No worker yet: the page is queued and polling; the worker starts only now.
        assert page.locator("#import-status").inner_text() == "queued"
        page.wait_for_selector("#import-live[data-job-polling='1']")
        worker_factory()
        page.wait_for_selector("#import-done", timeout=60_000)  # reloaded by the progress script once final
        assert page.locator("#import-status").inner_text() == "succeeded"
        assert page.locator("#import-bar").evaluate("bar => bar.style.width") == "100%"
        assert "(4 cases)" in page.locator("#import-done").inner_text()

    job = DatasetImport.objects.get()
    assert job.status == "succeeded" and job.dataset == Dataset.objects.get(name="Knees")
    assert job.dataset.cases.count() == 4
