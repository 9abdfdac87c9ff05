"""The probe analysis page in headless Chromium at 1280 × 720: the uncertainty plot draws one line per stochastic
run (and its base rate), and the page does not scroll sideways."""

import pytest

from tests.readerstudy.test_probe_page import world  # noqa: F401  (the fixture)
from tests.support.browser import chromium_page

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_the_probe_page_draws_the_sd_threshold_plot(site, world):  # noqa: F811
    task, _, _ = world
    with chromium_page(viewport={"width": 1280, "height": 720}) as page:
        page.goto(f"{site.url}/tasks/{task.slug}/probes/")
        page.wait_for_selector("#plot-sd-threshold .main-svg", timeout=20_000)
        traces = page.evaluate("() => document.getElementById('plot-sd-threshold').data.length")
        assert traces == 2  # the stochastic run's curve and its base rate
        assert page.locator("#probe-index tbody tr").count() == 2
        assert page.locator("#probe-detectors tbody tr").count() == 5  # error, OOD; error, OOD, SD
        widths = page.evaluate("() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert widths[0] <= widths[1], widths
