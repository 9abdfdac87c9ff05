"""The leaderboard in headless Chromium: rows, sorting by a column, and plotly plots drawn from
our own static plotly.js."""

import numpy as np
import pytest

from tests.support.browser import chromium_page
from tests.support.factories import make_task
from tests.support.leaderboard_data import add_scored_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_leaderboard_renders_rows_sorts_by_a_column_and_draws_its_plots(site):
    task = make_task(n_cases=8, primary_metric="ssim", metrics=["psnr", "ssim"])
    rng = np.random.default_rng(0)
    for name, quality, latency in (("alpha", 0.9, 30.0), ("bravo", 0.7, 3.0), ("charlie", 0.5, 10.0)):
        ssim = quality + 0.02 * rng.standard_normal(8)
        # PSNR deliberately disagrees with SSIM, so sorting by it reorders the rows.
        add_scored_run(task, name, {"ssim": ssim, "psnr": 40 - 20 * ssim}, latency_ms=latency)

    with chromium_page(viewport={"width": 1400, "height": 1000}) as page:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{site.url}/tasks/{task.slug}/leaderboard/")
        names = page.locator("#leaderboard tbody tr a.run-link")
        assert names.all_inner_texts() == ["alpha", "bravo", "charlie"]
        assert page.locator("#leaderboard tbody tr.leader a.run-link").inner_text() == "alpha"
        page.click('#leaderboard th[data-column="psnr"]')  # higher is better: best first
        assert names.all_inner_texts() == ["charlie", "bravo", "alpha"]
        page.click('#leaderboard th[data-column="psnr"]')
        assert names.all_inner_texts() == ["alpha", "bravo", "charlie"]

        page.wait_for_selector('#plots[data-ready*="cases"]', timeout=30_000)
        for plot in ("plot-stability", "plot-scatter", "plot-pareto", "plot-distribution"):
            assert page.locator(f"#{plot} .main-svg").count() >= 1, plot
        assert page.locator("#plot-distribution .box").count() == 3  # one box per run
        assert page.locator("#plot-pareto .scatterlayer .trace").count() == 2  # runs and the front
        assert errors == []


def test_a_visitor_of_a_hidden_test_set_is_told_why_the_per_case_plot_is_empty(site):
    task = make_task(n_cases=6, primary_metric="ssim", metrics=["psnr", "ssim"], hidden_references=True)
    rng = np.random.default_rng(1)
    for name, quality in (("alpha", 0.9), ("bravo", 0.6)):
        ssim = quality + 0.02 * rng.standard_normal(6)
        add_scored_run(task, name, {"ssim": ssim, "psnr": 40 * ssim}, latency_ms=5.0)

    with chromium_page(viewport={"width": 1400, "height": 1000}) as page:
        page.goto(f"{site.url}/tasks/{task.slug}/leaderboard/")
        assert page.locator("#leaderboard tbody tr .run-cell").count() == 2  # ranked, not linked for a visitor
        page.wait_for_selector('#plots[data-ready*="cases"]', timeout=30_000)
        assert page.locator("#plot-distribution .box").count() == 0
        assert "No per-case results to show" in page.locator("#plot-distribution").inner_text()
        assert page.locator("#distribution-metric").is_hidden()
