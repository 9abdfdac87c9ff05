"""The model page follows its validation: the outcome is shown within seconds of the validation
ending, without a reload by hand, and a run is offered only once the model is valid."""

import time

import pytest

from inference.models import GenerativeModel, ModelStatus
from inference.services.artifacts import register_model
from tests.inference.test_run_page_browser import in_thread
from tests.support.browser import chromium_page
from tests.support.factories import Scale, make_task, save_torchscript
from tests.support.jobs import validate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_model_page_shows_the_validation_outcome_within_seconds(site, django_user_model, tmp_path):
    task = make_task(n_cases=2)
    model = register_model(save_torchscript(Scale(), tmp_path / "m.pt"), name="m", task=task, spatial_shape=[16, 16])
    django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True)
    assert model.status == ModelStatus.UPLOADED  # no worker: the validation waits in the queue

    with chromium_page() as page:
        page.goto(f"{site.url}/accounts/login/?next=/models/{model.pk}/")
        page.fill("#id_username", "boss")
        page.fill("#id_password", "boss-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(f"**/models/{model.pk}/")
        assert page.locator("#validation-status").inner_text() == "queued"
        assert page.get_by_role("button", name="Start a run").count() == 0  # not before it is valid
        time.sleep(2)  # the page is polling meanwhile

        def finish():
            assert validate(GenerativeModel.objects.get(pk=model.pk)) == ModelStatus.VALID

        in_thread(finish)
        finished = time.monotonic()
        page.wait_for_selector("p.ok-box >> text=Validated", timeout=10_000)
        elapsed = time.monotonic() - finished
        print(f"outcome shown {elapsed:.2f} s after the validation finished")
        assert elapsed < 4.0, elapsed  # one poll interval (1.5 s) and a reload, not 30 s
        assert page.get_by_role("button", name="Start a run").count() == 1
