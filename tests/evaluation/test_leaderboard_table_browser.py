"""The leaderboard table in headless Chromium at 1440 × 900 and 1280 × 720: the page never scrolls sideways (the
table scrolls inside its own box), Rank and Run stay at the same x while the table body scrolls, a tier collapses
(its columns hidden, the choice kept on reload) and expands, an organiser hides a run with a reason and unhides it,
and two runs picked on the board are compared."""

import pytest

from tests.support.browser import chromium_page
from tests.support.factories import make_task
from tests.support.leaderboard_data import populate

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZES = [{"width": 1440, "height": 900}, {"width": 1280, "height": 720}]


def log_in(page, site, username, password, path):
    page.goto(f"{site.url}/accounts/login/?next={path}")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{path}")


def box(page, selector):
    return page.locator(selector).first.bounding_box()


@pytest.mark.parametrize("viewport", SIZES, ids=lambda v: f"{v['width']}x{v['height']}")
def test_sticky_rank_and_run_no_page_scroll_and_collapsing_tiers(site, django_user_model, viewport):
    task = make_task(n_cases=6)
    populate(task, 4, 6)
    django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True)
    path = f"/tasks/{task.slug}/leaderboard/"
    with chromium_page(viewport=viewport) as page:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, site, "boss", "boss-pass-123", path)
        page.wait_for_selector('#leaderboard[data-ready="true"]')
        widths = page.evaluate(
            """() => ({page: document.documentElement.scrollWidth, window: window.innerWidth,
                       body: document.body.scrollWidth,
                       box: document.getElementById('leaderboard-scroll').clientWidth,
                       table: document.getElementById('leaderboard-scroll').scrollWidth})"""
        )
        assert widths["page"] <= widths["window"] and widths["body"] <= widths["window"], widths
        assert widths["table"] > widths["box"] + 300, widths  # the table does scroll, inside its box

        first = "#leaderboard tbody tr:first-child"
        rank, run = box(page, f"{first} td.sticky-rank"), box(page, f"{first} td.sticky-run")
        psnr = box(page, f'{first} td[data-column="psnr"]')
        assert run["x"] == pytest.approx(rank["x"] + rank["width"], abs=1.5)  # Run sits right after Rank
        page.evaluate("document.getElementById('leaderboard-scroll').scrollLeft = 600")
        page.wait_for_function("document.getElementById('leaderboard-scroll').scrollLeft >= 600")
        rank_after, run_after = box(page, f"{first} td.sticky-rank"), box(page, f"{first} td.sticky-run")
        assert (rank_after["x"], run_after["x"]) == pytest.approx((rank["x"], run["x"]), abs=0.5)
        assert box(page, f'{first} td[data-column="psnr"]')["x"] == pytest.approx(psnr["x"] - 600, abs=1)
        # The header's Rank and Run stay too, and a scrolled cell passes under (not over) them.
        assert box(page, "#leaderboard thead th.sticky-run")["x"] == pytest.approx(run["x"], abs=0.5)
        hit = page.evaluate(
            f"""() => {{ const r = document.querySelector('{first} td.sticky-run').getBoundingClientRect();
                const el = document.elementFromPoint(r.x + r.width / 2, r.y + 5);
                return Boolean(el.closest('td.sticky-run')); }}"""
        )
        assert hit
        page.evaluate("document.getElementById('leaderboard-scroll').scrollLeft = 0")

        feature_cells = page.locator('#leaderboard [data-tier="feature"]')
        n_feature = feature_cells.count()
        assert n_feature == 8 * 5  # 8 feature columns: the header and four rows
        table_width = widths["table"]
        page.click('#leaderboard button.tier-toggle[data-toggle="feature"]')
        assert all(not feature_cells.nth(i).is_visible() for i in range(n_feature))
        assert page.locator('#leaderboard tbody [data-stub="feature"]').first.is_visible()
        assert page.get_attribute('th[data-tier-head="feature"]', "colspan") == "1"
        assert page.get_attribute('button.tier-toggle[data-toggle="feature"]', "aria-expanded") == "false"
        narrower = page.evaluate("document.getElementById('leaderboard-scroll').scrollWidth")
        assert narrower < table_width - 400
        assert page.locator('#leaderboard [data-tier="pixel"]').first.is_visible()
        # Sorting still lines up with the columns while a tier is collapsed.
        page.click('#leaderboard th[data-column="latency_p50"]')
        latencies = page.locator('#leaderboard tbody td[data-column="latency_p50"]').evaluate_all(
            "cells => cells.map(c => Number(c.dataset.value))"
        )
        assert latencies == sorted(latencies)

        page.reload()
        page.wait_for_selector('#leaderboard[data-ready="true"]')
        assert not page.locator('#leaderboard th[data-column="frd:radiomics"]').is_visible()  # kept on reload
        page.click('#leaderboard button.tier-toggle[data-toggle="feature"]')
        assert page.locator('#leaderboard th[data-column="frd:radiomics"]').is_visible()
        assert page.get_attribute('th[data-tier-head="feature"]', "colspan") == "8"
        assert not page.locator('#leaderboard tbody [data-stub="feature"]').first.is_visible()
        assert errors == []


def test_an_organiser_hides_a_run_with_a_reason_then_unhides_it_and_compares_two_runs(site, django_user_model):
    task = make_task(n_cases=6)
    runs = populate(task, 3, 6, features=False)
    django_user_model.objects.create_user("boss", password="boss-pass-123", is_staff=True)
    path = f"/tasks/{task.slug}/leaderboard/"
    victim = runs[1]
    names = "#leaderboard tbody tr .run-link"
    with chromium_page(viewport=SIZES[1]) as page:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        log_in(page, site, "boss", "boss-pass-123", path)
        assert sorted(page.locator(names).all_inner_texts()) == ["run-000", "run-001", "run-002"]
        assert page.locator("#hidden-runs summary").inner_text().startswith("Hidden runs (0)")

        page.click(f'button[data-hide-run="{victim.pk}"]')
        assert page.locator("#hide-dialog").is_visible()
        assert page.locator("#hide-run-name").inner_text() == "run-001"
        page.fill("#hide-reason", "   ")
        page.click("#hide-confirm")
        assert page.locator("#hide-error").inner_text() == "Say why the run is hidden: participants see the reason."
        page.fill("#hide-reason", "trained on the test cases")
        with page.expect_navigation():
            page.click("#hide-confirm")
        assert sorted(page.locator(names).all_inner_texts()) == ["run-000", "run-002"]
        hidden = page.locator("#hidden-runs")
        assert not page.locator("#hidden-runs-table").is_visible()  # collapsed until opened
        page.click("#hidden-runs summary")
        assert hidden.locator("summary").inner_text().startswith("Hidden runs (1)")
        assert hidden.locator(f'tr[data-run="{victim.pk}"] .hidden-reason').inner_text() == "trained on the test cases"
        assert "boss" in hidden.locator(f'tr[data-run="{victim.pk}"]').inner_text()

        with page.expect_navigation():
            page.click(f'tr[data-run="{victim.pk}"] button.unhide-run')
        assert sorted(page.locator(names).all_inner_texts()) == ["run-000", "run-001", "run-002"]
        assert page.locator("#hidden-runs summary").inner_text().startswith("Hidden runs (0)")

        page.select_option("#compare-a", str(runs[2].pk))
        page.select_option("#compare-b", str(runs[0].pk))
        with page.expect_navigation():
            page.click("#compare-form button[type=submit]")
        assert page.locator("#compare-text").inner_text().startswith("run-002 (A) − run-000 (B)")
        metrics = page.locator("#compare-table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.metric)")
        assert sorted(metrics) == sorted(["psnr", "ssim", "ms_ssim", "nmse", "mae", "mse"])
        assert page.locator("#plots .main-svg").first.is_visible(timeout=30_000)  # the plots still read the board
        assert errors == []
